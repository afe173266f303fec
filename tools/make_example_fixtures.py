#!/usr/bin/python3
"""Write tests/fixtures/examples.json: PyTorch's SiLU forward and gradient, the
reference of the worked example op in examples/silu.cpp.
Run: /usr/bin/python3 tools/make_example_fixtures.py
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "examples.json")
torch.manual_seed(11)
x = (torch.rand(4, 7) * 8 - 4).requires_grad_()
y = torch.nn.functional.silu(x)
g = torch.rand(4, 7) * 2 - 1
(gx,) = torch.autograd.grad(y, x, g)
with open(OUT, "w") as f:
    json.dump({"silu": {"shape": [4, 7], "x": x.detach().flatten().tolist(), "y": y.detach().flatten().tolist(),
                        "upstream": g.flatten().tolist(), "grad": gx.flatten().tolist()}}, f)
print("wrote", os.path.relpath(OUT))
