#!/usr/bin/python3
"""Write tests/fixtures/random.json: PyTorch CPU random streams that
core/random.cpp must reproduce bit for bit (float32 values as their uint32 bits).
Run: /usr/bin/python3 tools/make_random_fixtures.py
"""
import json
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "random.json")


def bits(t):
    return t.detach().contiguous().numpy().astype(np.float32).view(np.uint32).flatten().tolist()


fx = {"torch_version": torch.__version__}

torch.manual_seed(123)
fx["uniform_f32"] = {"seed": 123, "n": 1000, "from": -0.5, "to": 2.0,
                     "bits": bits(torch.empty(1000).uniform_(-0.5, 2.0))}

normal = []
torch.manual_seed(7)
for n in list(range(1, 101)) + [1000, 4099]:
    normal.append({"n": n, "bits": bits(torch.empty(n).normal_(0.0, 0.02))})
fx["normal_f32"] = {"seed": 7, "mean": 0.0, "std": 0.02, "sizes": normal}

torch.manual_seed(11)
fx["bernoulli"] = {"seed": 11, "p": 0.9, "n": 2000,
                   "values": torch.empty(2000).bernoulli_(0.9).int().tolist()}

torch.manual_seed(5)
fx["randperm"] = {"seed": 5, "sizes": [{"n": n, "perm": torch.randperm(n).tolist()} for n in [1, 2, 9, 100, 1000]]}

torch.manual_seed(5)
fx["random_int64"] = {"seed": 5, "values": [str(int(torch.empty((), dtype=torch.int64).random_().item()))
                                            for _ in range(8)]}

# Kaiming-uniform as nn.Linear initialises its weight, then its bias.
torch.manual_seed(123)
lin = torch.nn.Linear(24, 10)
fx["linear_init"] = {"seed": 123, "in": 24, "out": 10, "weight": bits(lin.weight), "bias": bits(lin.bias)}

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(fx, f)
print("wrote", os.path.relpath(OUT))
