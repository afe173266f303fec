#!/usr/bin/python3
"""Write tests/fixtures/loader.json: how torch.utils.data.DataLoader consumes the
global generator. After manual_seed(123), iterate a shuffled loader (9 windows,
batch 2, drop_last) for an epoch, then twice partially (as evaluate_model does,
reading 2 batches), then a non-shuffled loader once; record every batch order
and one torch.rand afterwards (which shows the generator's final position).
Run: /usr/bin/python3 tools/make_loader_fixture.py
"""
import json
import os

import torch
from torch.utils.data import DataLoader

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "loader.json")

torch.manual_seed(123)
data = list(range(9))
shuffled = DataLoader(data, batch_size=2, shuffle=True, drop_last=True, num_workers=0)
plain = DataLoader(data, batch_size=2, shuffle=False, drop_last=False, num_workers=0)
events = []
for epoch in range(2):
    events.append({"kind": "epoch", "batches": [b.tolist() for b in shuffled]})
    for _ in range(2):
        got = []
        for i, b in enumerate(shuffled):
            if i < 2:
                got.append(b.tolist())
            else:
                break
        events.append({"kind": "eval_shuffled", "batches": got})
    events.append({"kind": "eval_plain", "batches": [b.tolist() for b in plain]})
after = torch.rand(4)
fx = {"seed": 123, "n": 9, "batch_size": 2, "events": events,
      "rand_after_bits": after.numpy().view("uint32").tolist()}
with open(OUT, "w") as f:
    json.dump(fx, f)
print("wrote", os.path.relpath(OUT))
