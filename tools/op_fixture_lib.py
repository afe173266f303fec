"""What tools/make_op_fixtures.py and tools/make_edge_fixtures.py share: seeded
inputs, the book's composites, and one case record: inputs, out = fn(inputs), an
upstream gradient G of out's shape and d(sum(out * G))/d(input) for every input
that requires grad (tests/fixture_check.h reads it back).
"""
import json
import math
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")


def t(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(shape) * (hi - lo) + lo).requires_grad_()


def gelu_book(x):  # the book's GELU (tanh approximation)
    return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


def layer_norm_book(x, scale, shift, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return scale * ((x - mean) / torch.sqrt(var + eps)) + shift


def causal(T):
    return torch.triu(torch.ones(T, T), diagonal=1)


def flat(x):
    """A tensor's values as a JSON list; non-finite values as strings ("nan", "inf")."""
    return [v if math.isfinite(v) else str(v) for v in x.detach().flatten().tolist()]


def input_record(x):
    return {"shape": list(x.shape), "data": flat(x)}


def record(fn, inputs, ints=None):
    """The case dict for out = fn(*inputs); gradients for the inputs that require grad."""
    out = fn(*inputs)
    g = torch.rand(out.shape) * 2 - 1
    wrt = [x for x in inputs if x.requires_grad]
    grads = torch.autograd.grad(out, wrt, g, allow_unused=True) if wrt and out.requires_grad else []
    grads = [torch.zeros_like(x) if gr is None else gr for x, gr in zip(wrt, grads)]
    return {
        "inputs": [input_record(x) for x in inputs],
        "ints": ints or [],
        "out": {"shape": list(out.shape), "data": flat(out)},
        "upstream": flat(g),
        "grads": [flat(gr) for gr in grads],
    }


def write(name, cases):
    path = os.path.join(FIXTURES, name)
    os.makedirs(FIXTURES, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": cases}, f)
    print(f"wrote {len(cases)} cases to {os.path.relpath(path)}")
