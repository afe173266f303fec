#!/usr/bin/python3
"""The benchmark's PyTorch side (Debian python3-torch, --threads, default 2): one training
step of the book's GPT (zero_grad + forward + cross_entropy + backward + AdamW),
best of 3 after a warm-up, and a no_grad forward; prints "step_s eval_s peak_rss_mb".
usage: /usr/bin/python3 tools/torch_bench.py --preset gpt2-124m --attention mha
"""
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT_CONFIG_124M, GPTModel  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--preset", default="gpt2-124m")
ap.add_argument("--attention", default="mha")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)  # the bench passes its own count
args = ap.parse_args()

torch.set_num_threads(args.threads)
cfg = dict(GPT_CONFIG_124M, attention=args.attention)
if args.preset == "tiny":
    cfg.update(context_length=64, emb_dim=64, n_heads=4, n_layers=2)
torch.manual_seed(123)
model = GPTModel(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
T = cfg["context_length"]
n = 2 * T
ids = (torch.arange(n) * 7919 % cfg["vocab_size"]).view(2, T)
tgt = ((torch.arange(n) * 104729 + 1) % cfg["vocab_size"]).view(2, T)


def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), tgt.flatten())
    loss.backward()
    opt.step()


def best(f):
    f()
    b = 1e300
    for _ in range(args.reps):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b


model.train()
s = best(step)
model.eval()


def ev():
    with torch.no_grad():
        torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), tgt.flatten())


e = best(ev)
print(f"{s:.4f} {e:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
