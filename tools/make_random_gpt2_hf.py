#!/usr/bin/python3
"""A random GPT-2 of one of OpenAI's sizes in the Hugging Face model.safetensors
layout (names without prefix, Conv1D weights [in, out], no mask buffers), for
checking that loading, generation and fine-tuning fit this machine when the real
weights cannot be downloaded. Weights ~ N(0, 0.02) as GPT-2's init, LayerNorm
weights 1, biases 0. Streams tensor by tensor (memory ~ one layer).
usage: /usr/bin/python3 tools/make_random_gpt2_hf.py gpt2-large OUT.safetensors
"""
import argparse
import json
import os
import struct

import torch

SIZES = {"gpt2": (768, 12), "gpt2-medium": (1024, 24), "gpt2-large": (1280, 36), "gpt2-xl": (1600, 48)}
V, N = 50257, 1024


def shapes(C, L):
    yield "wte.weight", (V, C)
    yield "wpe.weight", (N, C)
    for i in range(L):
        h = f"h.{i}."
        for name, shape in (("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("attn.c_attn.weight", (C, 3 * C)),
                            ("attn.c_attn.bias", (3 * C,)), ("attn.c_proj.weight", (C, C)),
                            ("attn.c_proj.bias", (C,)), ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
                            ("mlp.c_fc.weight", (C, 4 * C)), ("mlp.c_fc.bias", (4 * C,)),
                            ("mlp.c_proj.weight", (4 * C, C)), ("mlp.c_proj.bias", (C,))):
            yield h + name, shape
    yield "ln_f.weight", (C,)
    yield "ln_f.bias", (C,)


def value(name, shape, gen):
    if name.endswith(".bias") or name.startswith("ln_f.bias"):
        return torch.zeros(shape)
    if "ln_" in name:
        return torch.ones(shape)
    return torch.randn(shape, generator=gen) * 0.02


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("size", choices=sorted(SIZES))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    C, L = SIZES[args.size]
    header, off = {"__metadata__": {"format": "pt"}}, 0
    items = list(shapes(C, L))
    for name, shape in items:
        n = 4 * int(torch.tensor(shape).prod())
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    gen = torch.Generator().manual_seed(args.seed)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape in items:
            f.write(value(name, shape, gen).numpy().tobytes())
    os.replace(tmp, args.out)
    print(f"{args.out}: {args.size}, {off / 1e6:.0f} MB of weights, {len(items)} tensors")


if __name__ == "__main__":
    main()
