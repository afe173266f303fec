#!/usr/bin/python3
"""Load a tapegrad checkpoint into the book's PyTorch GPTModel and compare logits.

usage: /usr/bin/python3 tools/check_torch_interop.py CHECKPOINT [IDS...]
The checkpoint's "optimizer." entries are dropped; the config comes from its
tapegrad.config metadata. Prints the max |logit| difference against tapegrad's
own logits when given (--logits FILE, a safetensors with 'logits').
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from torch_gpt import GPTModel  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
ap.add_argument("--logits", help="safetensors file with tapegrad's 'logits' and 'ids'")
args = ap.parse_args()

tensors, meta = st_io.load(args.checkpoint)
cfg = json.loads(meta["tapegrad.config"])
model = GPTModel(cfg)
sd = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
model.load_state_dict(sd, strict=True)
model.eval()
print(f"loaded {len(sd)} tensors into PyTorch GPTModel ({cfg['attention']}), strict=True")
if args.logits:
    ref, _ = st_io.load(args.logits)
    with torch.no_grad():
        logits = model(ref["ids"])
    diff = (logits - ref["logits"]).abs().max().item()
    print(f"max |logits difference| = {diff:.3g}")
    sys.exit(0 if diff < 1e-4 else 1)
