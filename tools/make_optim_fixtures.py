#!/usr/bin/python3
"""Write tests/fixtures/optim.json: torch.optim.SGD (momentum, weight decay) over 3
steps, clip_grad_norm_ on three tensors, and the book's appendix-D schedule.
Run: /usr/bin/python3 tools/make_optim_fixtures.py
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "optim.json")
torch.manual_seed(3)
fx = {}

p = torch.nn.Parameter(torch.randn(32))
grads = [torch.randn(32) for _ in range(3)]
sgd = torch.optim.SGD([p], lr=0.05, momentum=0.9, weight_decay=0.01)
fx["sgd"] = {"p0": p.detach().tolist(), "grads": [g.tolist() for g in grads], "after": []}
for g in grads:
    p.grad = g.clone()
    sgd.step()
    fx["sgd"]["after"].append(p.detach().tolist())

ps = [torch.nn.Parameter(torch.zeros(s)) for s in (5, 7, 3)]
for q in ps:
    q.grad = torch.randn(q.shape) * 3
before = [q.grad.tolist() for q in ps]
total = torch.nn.utils.clip_grad_norm_(ps, max_norm=1.0)
fx["clip"] = {"grads": before, "max_norm": 1.0, "total": float(total), "after": [q.grad.tolist() for q in ps]}

# Appendix D: linear warmup then cosine decay (train_model in appendix D).
peak, initial, min_lr, warmup, total_steps = 5e-4, 1e-5, 1e-5, 10, 50
lrs = []
for step in range(total_steps):
    if step < warmup:
        lr = initial + step * (peak - initial) / warmup
    else:
        progress = (step - warmup) / (total_steps - warmup)
        lr = min_lr + (peak - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    lrs.append(lr)
fx["schedule"] = {"peak": peak, "initial": initial, "min": min_lr, "warmup": warmup, "total": total_steps, "lrs": lrs}

with open(OUT, "w") as f:
    json.dump(fx, f)
print("wrote", os.path.relpath(OUT))
