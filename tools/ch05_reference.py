#!/usr/bin/python3
"""The book's Chapter 5 pretraining run in PyTorch (Debian python3-torch), as the
notebook runs it: GPT_CONFIG_124M (context 256, drop 0.1), the-verdict.txt split
90/10, loaders of batch 2 (train shuffled, drop_last), manual_seed(123) right
before GPTModel, AdamW lr 4e-4 wd 0.1, 10 epochs, eval_freq 5, eval_iter 5, a
greedy 50-token sample from "Every effort moves you" after each epoch.
--attention alt1 runs MHA_alt1 from the discussion instead of MultiHeadAttention.
Token ids come from tests/fixtures/tokenizer.json (tiktoken's gpt2 encoding).
Writes the printed lines to --out (docs/reference/ch05_<attention>_torch.txt).
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_dropout_fixture import book_loaders, loss_batch, loss_loader  # noqa: E402
from torch_gpt import GPT_CONFIG_124M, GPTModel  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--attention", default="mha")
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--out", default=None)
args = ap.parse_args()
torch.set_num_threads(2)

with open(os.path.join(HERE, "..", "data", "encoder.json")) as f:
    encoder = json.load(f)
decoder = {v: k for k, v in encoder.items()}
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
byte_decoder = {chr(c): b for b, c in zip(bs, cs)}


def decode(ids):
    return bytearray(byte_decoder[c] for i in ids for c in decoder[i]).decode("utf-8", errors="replace")


cfg = dict(GPT_CONFIG_124M, attention=args.attention)
T = cfg["context_length"]
train_loader, val_loader = book_loaders(T)
torch.manual_seed(123)
model = GPTModel(cfg)
optimizer = torch.optim.AdamW(model.parameters(), lr=0.0004, weight_decay=0.1)
start = [6109, 3626, 6100, 345]  # "Every effort moves you"
lines = []


def emit(s):
    print(s, flush=True)
    lines.append(s)


tokens_seen, global_step = 0, -1
for epoch in range(args.epochs):
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = loss_batch(model, x, y)
        loss.backward()
        optimizer.step()
        tokens_seen += x.numel()
        global_step += 1
        if global_step % 5 == 0:
            model.eval()
            with torch.no_grad():
                tl, vl = loss_loader(train_loader, model, 5), loss_loader(val_loader, model, 5)
            model.train()
            emit(f"Ep {epoch + 1} (Step {global_step:06d}): Train loss {tl:.3f}, Val loss {vl:.3f}")
    model.eval()
    idx = torch.tensor([start])
    with torch.no_grad():
        for _ in range(50):
            logits = model(idx[:, -T:])[:, -1, :]
            idx = torch.cat([idx, logits.argmax(dim=-1, keepdim=True)], dim=1)
    emit(decode(idx[0].tolist()).replace("\n", " "))
    model.train()

if args.out:
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
