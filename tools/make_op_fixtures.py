#!/usr/bin/python3
"""Write tests/fixtures/ops.json: inputs, outputs and gradients of every tapegrad
op computed by PyTorch (Debian's python3-torch), for tests/test_ops_torch.cpp.

Each case: float32 inputs (seeded), out = op(inputs), an upstream gradient G of
out's shape, and d(sum(out * G))/d(input) for every float input.
Run: /usr/bin/python3 tools/make_op_fixtures.py
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_fixture_lib import causal, gelu_book, layer_norm_book, record, t, write  # noqa: E402

torch.manual_seed(20261127)
cases = {}


def case(name, fn, inputs, ints=None):
    cases[name] = record(fn, inputs, ints)


case("add_broadcast", lambda a, b: a + b, [t(2, 3, 4), t(3, 1)])
case("mul_broadcast", lambda a, b: a * b, [t(2, 3, 4), t(4)])
case("sub", lambda a, b: a - b, [t(3, 4), t(3, 4)])
case("div", lambda a, b: a / b, [t(3, 4), t(3, 4, lo=0.5, hi=2.0)])
case("neg", lambda a: -a, [t(5)])
case("exp", torch.exp, [t(3, 4)])
case("log", torch.log, [t(3, 4, lo=0.1, hi=3.0)])
case("sqrt", torch.sqrt, [t(3, 4, lo=0.1, hi=3.0)])
case("pow3", lambda a: a ** 3, [t(3, 4)])
case("tanh", torch.tanh, [t(3, 4, lo=-3, hi=3)])
case("gelu", gelu_book, [t(4, 8, lo=-4, hi=4)])
case("scalar_ops", lambda a: (a + 2.5) * 0.75 / 8.0 - 1.0, [t(3, 4)])
case("matmul_2d", torch.matmul, [t(5, 7), t(7, 3)])
case("matmul_batched_broadcast", torch.matmul, [t(2, 1, 4, 5), t(3, 5, 6)])
case("matmul_nt", lambda a, b: a @ b.transpose(-1, -2), [t(2, 4, 5), t(2, 6, 5)])
case("matmul_tn", lambda a, b: a.transpose(-1, -2) @ b, [t(2, 5, 4), t(2, 5, 6)])
case("attention_heads", lambda q, k: (q.view(2, 3, 2, 4).transpose(1, 2) @
                                      k.view(2, 3, 2, 4).transpose(1, 2).transpose(2, 3)), [t(2, 3, 8), t(2, 3, 8)])
case("linear", torch.nn.functional.linear, [t(2, 3, 6), t(4, 6), t(4)])
case("linear_nobias", lambda x, w: torch.nn.functional.linear(x, w), [t(5, 6), t(4, 6)])
case("sum_all", torch.sum, [t(3, 4)])
case("sum_dim1_keep", lambda a: a.sum(dim=1, keepdim=True), [t(2, 3, 4)])
case("mean_dim0", lambda a: a.mean(dim=0), [t(2, 3, 4)])
case("var_last_biased", lambda a: a.var(dim=-1, keepdim=True, unbiased=False), [t(3, 7)])
case("max_dim1", lambda a: a.max(dim=1).values, [t(3, 5)])
case("softmax", lambda a: torch.softmax(a, dim=-1), [t(3, 6, lo=-3, hi=3)])
case("log_softmax", lambda a: torch.log_softmax(a, dim=-1), [t(3, 6, lo=-3, hi=3)])
case("masked_softmax", lambda s: torch.softmax(s.masked_fill(causal(5).bool(), -torch.inf) / math.sqrt(4), dim=-1),
     [t(2, 5, 5)])
case("layer_norm", layer_norm_book, [t(2, 3, 16, lo=-2, hi=2), t(16, lo=0.5, hi=1.5), t(16)])
emb_ids = [3, 1, 3, 0, 3, 6]
case("embedding_repeated", lambda w: torch.nn.functional.embedding(torch.tensor(emb_ids).view(2, 3), w),
     [t(7, 5)], ints=emb_ids)
ce_tg = [2, -100, 9, 0, 9, -100, 4, 1]
case("cross_entropy_ignore", lambda x: torch.nn.functional.cross_entropy(x.flatten(0, 1), torch.tensor(ce_tg)),
     [t(2, 4, 10, lo=-3, hi=3)], ints=ce_tg)
mask = (torch.rand(3, 4) > 0.3).float()
case("dropout_mask", lambda a: a * (mask / (1 - 0.1)), [t(3, 4)], ints=[int(v) for v in mask.flatten().tolist()])
case("cat_dim1", lambda a, b: torch.cat([a, b], dim=1), [t(2, 3), t(2, 2)])
case("slice_permute", lambda a: a.permute(2, 0, 1)[1:3].reshape(2, 6), [t(2, 3, 4)])

write("ops.json", cases)
