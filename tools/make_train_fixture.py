#!/usr/bin/python3
"""Reference training trajectory: the book's loop in PyTorch from given weights,
dropout 0, no shuffle, AdamW (lr 4e-4, weight decay 0.1), batch 2, on the train
split of the-verdict.txt (ids from tiktoken, tests/fixtures/tokenizer.json).

Default (the test fixture): a small GPT (context 16, emb 16, 2 heads, 1 layer),
20 steps, writes tests/fixtures/train_small_init.safetensors and
tests/fixtures/train_small_losses.json.
With --config gpt2-124m --steps 20 --out DIR it writes DIR/init.safetensors and
DIR/torch_losses.json for the full-size comparison (tools/compare_training.sh).
Run: /usr/bin/python3 tools/make_train_fixture.py
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
from torch_gpt import GPT_CONFIG_124M, GPTModel  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--config", default="small")
ap.add_argument("--attention", default="mha")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--out", default=None)
args = ap.parse_args()

cfg = dict(GPT_CONFIG_124M, drop_rate=0.0, attention=args.attention)
if args.config == "small":
    cfg.update(context_length=16, emb_dim=16, n_heads=2, n_layers=1)
cfg["out_proj"] = args.attention == "mha"

with open(os.path.join(HERE, "..", "tests", "fixtures", "tokenizer.json")) as f:
    ids = json.load(f)["verdict_train_ids"]
T = cfg["context_length"]
windows = [(ids[i:i + T], ids[i + 1:i + T + 1]) for i in range(0, len(ids) - T, T)]
batches = [windows[k:k + 2] for k in range(0, len(windows) - 1, 2)]  # drop_last

torch.manual_seed(7)
model = GPTModel(cfg)
init = {k: v.clone() for k, v in model.state_dict().items()}
opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
losses = []
step = 0
while step < args.steps:
    for b in batches:
        if step >= args.steps:
            break
        x = torch.tensor([w[0] for w in b])
        y = torch.tensor([w[1] for w in b])
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1

if args.out:
    os.makedirs(args.out, exist_ok=True)
    init_path, loss_path = os.path.join(args.out, "init.safetensors"), os.path.join(args.out, "torch_losses.json")
else:
    init_path = os.path.join(HERE, "..", "tests", "fixtures", "train_small_init.safetensors")
    loss_path = os.path.join(HERE, "..", "tests", "fixtures", "train_small_losses.json")
st_io.save(init_path, init, {"config": json.dumps(cfg)})
with open(loss_path, "w") as f:
    json.dump({"config": cfg, "losses": losses}, f)
print("losses:", " ".join(f"{v:.4f}" for v in losses))
