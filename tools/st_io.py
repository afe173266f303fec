"""Minimal safetensors read/write for the fixture scripts (F32 and I64), so the
tools need only Debian's python3-torch and python3-numpy."""
import json
import struct

import numpy as np
import torch

_DT = {"F32": (np.float32, 4), "I64": (np.int64, 8)}


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        dt = "F32" if a.dtype == np.float32 else "I64"
        a = a.astype(_DT[dt][0])
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt, _ = _DT[e["dtype"]]
        out[name] = torch.from_numpy(np.frombuffer(data[base + b:base + end], dtype=dt).reshape(e["shape"]).copy())
    return out, meta
