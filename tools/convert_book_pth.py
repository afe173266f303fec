#!/usr/bin/python3
"""Convert one of the book's PyTorch state dicts (e.g. gpt2-small-124M.pth, the
GPTModel of Chapter 5 with OpenAI's weights loaded, as the book's repository
offers them) to a tapegrad checkpoint: safetensors with the book's own names plus
the "tapegrad.config" metadata, so `tapegrad generate --checkpoint OUT` and
`tapegrad train --init-from OUT` read it without further flags.

The config comes from the tensors: vocab and emb_dim from tok_emb.weight, context
from pos_emb.weight, n_layers by counting trf_blocks, qkv_bias from
W_query.bias, n_heads from OpenAI's sizes (768: 12, 1024: 16, 1280: 20, 1600:
25) unless --n-heads is given. The attention mask buffers are left out (tapegrad
rebuilds them). The output is written to a temporary file and renamed.
usage: /usr/bin/python3 tools/convert_book_pth.py gpt2-small-124M.pth gpt2-small-124M.safetensors
"""
import argparse
import json
import os
import struct
import sys

import torch

HEADS = {768: 12, 1024: 16, 1280: 20, 1600: 25}


def config_of(sd, n_heads):
    V, C = sd["tok_emb.weight"].shape
    layers = 0
    while f"trf_blocks.{layers}.norm1.scale" in sd:
        layers += 1
    if n_heads is None:
        if C not in HEADS:
            sys.exit(f"convert_book_pth: emb_dim {C} is none of GPT-2's sizes: give --n-heads")
        n_heads = HEADS[C]
    return {"vocab_size": V, "context_length": sd["pos_emb.weight"].shape[0], "emb_dim": C,
            "n_heads": n_heads, "n_layers": layers, "drop_rate": 0.1,
            "qkv_bias": "trf_blocks.0.att.W_query.bias" in sd, "attention": "mha", "out_proj": True}


def write_safetensors(path, tensors, metadata):
    """Stream the tensors (F32) after the header; atomic via rename."""
    header, off = {"__metadata__": metadata}, 0
    for name, t in tensors:
        n = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, t in tensors:
            f.write(t.detach().to(torch.float32).contiguous().numpy().tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pth")
    ap.add_argument("out")
    ap.add_argument("--n-heads", type=int, default=None)
    args = ap.parse_args()
    sd = torch.load(args.pth, map_location="cpu")
    if "model_state_dict" in sd:  # the book's training checkpoints wrap it
        sd = sd["model_state_dict"]
    if "tok_emb.weight" not in sd:
        sys.exit(f"convert_book_pth: {args.pth} has no tok_emb.weight: not the book's GPTModel state dict")
    cfg = config_of(sd, args.n_heads)
    tensors = [(k, v) for k, v in sd.items() if not k.endswith(".mask")]
    write_safetensors(args.out, tensors, {"format": "pt", "tapegrad.config": json.dumps(cfg)})
    print(f"{args.out}: {len(tensors)} tensors, config {json.dumps(cfg)}")


if __name__ == "__main__":
    main()
