#!/usr/bin/python3
"""Write tests/fixtures/edge_cases.json: every public op of core/ops.h and the
layers of nn/layers.h on edge shapes (0-d tensors, a zero-size dim in each
position, size-1 broadcasts, non-contiguous views), for tests/test_ops_edge.cpp.

A case names an op of the C++ table (tests/edge_ops.h), its inputs (each leaf
with an optional view the op reads instead: "T" = transpose(-1, -2), "S" =
[..., 1:-1], and whether it takes a gradient), ints (dims, ids, targets, as the
table says per op), and either PyTorch's out and input gradients (as in
tools/make_op_fixtures.py) or "raises": PyTorch's message.
Run: /usr/bin/python3 tools/make_edge_fixtures.py
"""
import math
import os
import sys
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from op_fixture_lib import gelu_book, input_record, record, t, write  # noqa: E402

warnings.filterwarnings("ignore")  # "var(): degrees of freedom is <= 0" and the like
torch.manual_seed(20261207)
cases = {}


def view(x, v):
    if v == "T":
        return x.transpose(-1, -2)
    if v == "S":
        return x[..., 1:-1]
    return x


def case(name, op, specs, ints=None, fn=None):
    """specs: (shape, view, lo, hi, grad) per input (lo "mask": a 0/1 mask); fn(*viewed inputs, ints) is
    PyTorch's op."""
    assert name not in cases, name
    leaves = [mask(s[0]) if s[2] == "mask" else t(*s[0], lo=s[2], hi=s[3]).requires_grad_(s[4]) for s in specs]
    ints = ints or []
    base = {"op": op}
    try:
        c = record(lambda *xs: fn(*[view(x, s[1]) for x, s in zip(xs, specs)], ints), leaves, ints)
    except (RuntimeError, IndexError, ValueError, TypeError) as e:
        c = {"inputs": [input_record(x) for x in leaves], "ints": ints, "raises": str(e).splitlines()[0]}
    for rec, s in zip(c["inputs"], specs):
        rec["view"] = s[1]
        rec["grad"] = s[4]
    cases[name] = {**base, **c}


def mask(shape):
    """A 0/1 mask, no gradient."""
    return (torch.rand(shape) > 0.5).float()


def inp(shape, v="", lo=-1.0, hi=1.0, grad=True):
    """A leaf whose view v has `shape`: T stores the last two dims swapped, S two more columns."""
    s = list(shape)
    if v == "T":
        s[-1], s[-2] = s[-2], s[-1]
    if v == "S":
        s[-1] += 2
    return (tuple(s), v, lo, hi, grad)


def tag(shape, v):
    return ("[" + ",".join(map(str, shape)) + "]") + (f"{v}" if v else "")


# Shapes every elementwise op meets: 0-d, a zero-size dim in each position,
# size-1 dims, and the two non-contiguous views.
UNARY_SHAPES = [([], ""), ([0], ""), ([0, 3], ""), ([3, 0], ""), ([2, 0, 3], ""), ([1], ""), ([3, 1], ""),
                ([3, 4], "T"), ([3, 4], "S")]

UNARY = {
    "neg": (lambda a, i: -a, -1.0, 1.0),
    "exp": (lambda a, i: torch.exp(a), -1.0, 1.0),
    "log": (lambda a, i: torch.log(a), 0.5, 2.0),
    "tanh": (lambda a, i: torch.tanh(a), -2.0, 2.0),
    "sqrt": (lambda a, i: torch.sqrt(a), 0.5, 2.0),
    "pow0": (lambda a, i: a ** 0.0, -1.0, 1.0),
    "pow3": (lambda a, i: a ** 3.0, -1.0, 1.0),
    "pow_half": (lambda a, i: a ** 0.5, 0.5, 2.0),
    "gelu": (lambda a, i: gelu_book(a), -3.0, 3.0),
    "add_scalar": (lambda a, i: a + 2.5, -1.0, 1.0),
    "sub_scalar": (lambda a, i: a - 2.5, -1.0, 1.0),
    "mul_scalar": (lambda a, i: a * 0.75, -1.0, 1.0),
    "div_scalar": (lambda a, i: a / 8.0, -1.0, 1.0),
    "softmax": (lambda a, i: torch.softmax(a, dim=-1), -3.0, 3.0),
    "log_softmax": (lambda a, i: torch.log_softmax(a, dim=-1), -3.0, 3.0),
    "contiguous": (lambda a, i: a.contiguous(), -1.0, 1.0),
    "GELU": (lambda a, i: gelu_book(a), -3.0, 3.0),
    "Dropout_eval": (lambda a, i: a, -1.0, 1.0),
}
for op, (fn, lo, hi) in UNARY.items():
    for shape, v in UNARY_SHAPES:
        case(f"{op}{tag(shape, v)}", op, [inp(shape, v, lo, hi)], fn=fn)
# pow(x, 0) at x = 0: PyTorch's gradient is 0 (issue 36)
for op, (fn, lo, hi) in {"pow0": UNARY["pow0"], "pow3": UNARY["pow3"]}.items():
    case(f"{op}_at_zero", op, [inp([3], "", 0.0, 0.0)], fn=fn)

BINARY_SHAPES = [([], []), ([], [2, 3]), ([2, 3], []), ([0], [0]), ([0], [1]), ([0, 3], [3]), ([0, 3], [1, 3]),
                 ([3, 0], [3, 1]), ([2, 0, 3], [0, 1]), ([3, 1], [1, 4]), ([2, 1, 4], [3, 1]), ([2, 3], [4]),
                 ([0], [2])]
BINARY = {"add": lambda a, b, i: a + b, "sub": lambda a, b, i: a - b, "mul": lambda a, b, i: a * b,
          "div": lambda a, b, i: a / b}
for op, fn in BINARY.items():
    lo_b = 0.5 if op == "div" else -1.0
    for sa, sb in BINARY_SHAPES:
        case(f"{op}{tag(sa, '')}{tag(sb, '')}", op, [inp(sa), inp(sb, "", lo_b, 2.0)], fn=fn)
    case(f"{op}[3,4]T[3,4]S", op, [inp([3, 4], "T"), inp([3, 4], "S", lo_b, 2.0)], fn=fn)
    case(f"{op}[3,4]S[4]", op, [inp([3, 4], "S"), inp([4], "", lo_b, 2.0)], fn=fn)

# Reductions. ints: the dim, keepdim (and unbiased for var).
RED_SHAPES = [([], ""), ([0], ""), ([0, 3], ""), ([3, 0], ""), ([2, 0, 3], ""), ([1], ""), ([3, 1], ""),
              ([3, 4], "T"), ([3, 4], "S")]
for shape, v in RED_SHAPES:
    case(f"sum_all{tag(shape, v)}", "sum_all", [inp(shape, v)], fn=lambda a, i: a.sum())
    case(f"mean_all{tag(shape, v)}", "mean_all", [inp(shape, v)], fn=lambda a, i: a.mean())
    for d in list(range(max(len(shape), 1))) + [-1]:
        for keep in (0, 1):
            nm = f"{tag(shape, v)}_dim{d}_keep{keep}"
            case("sum_dim" + nm, "sum_dim", [inp(shape, v)], [d, keep],
                 fn=lambda a, i: a.sum(dim=i[0], keepdim=bool(i[1])))
            case("mean_dim" + nm, "mean_dim", [inp(shape, v)], [d, keep],
                 fn=lambda a, i: a.mean(dim=i[0], keepdim=bool(i[1])))
            case("max_dim" + nm, "max_dim", [inp(shape, v)], [d, keep],
                 fn=lambda a, i: a.max(dim=i[0], keepdim=bool(i[1])).values)
            for unb in (0, 1):
                case(f"var_dim{nm}_unbiased{unb}", "var_dim", [inp(shape, v)], [d, keep, unb],
                     fn=lambda a, i: a.var(dim=i[0], keepdim=bool(i[1]), unbiased=bool(i[2])))
    case(f"sum_dim{tag(shape, v)}_dim{len(shape) + 1}", "sum_dim", [inp(shape, v)], [len(shape) + 1, 0],
         fn=lambda a, i: a.sum(dim=i[0], keepdim=bool(i[1])))

# Matrix products, with batch broadcasts, empty M, K, N and batch, transposed and sliced operands.
MATMUL = [(([2, 3], ""), ([3, 4], "")), (([0, 3], ""), ([3, 4], "")), (([2, 0], ""), ([0, 4], "")),
          (([2, 3], ""), ([3, 0], "")), (([0, 2, 3], ""), ([3, 2], "")), (([2, 3], ""), ([0, 3, 2], "")),
          (([1, 2, 3], ""), ([4, 3, 2], "")), (([2, 1, 2, 3], ""), ([3, 3, 2], "")),
          (([2, 0, 2, 3], ""), ([1, 3, 2], "")), (([], ""), ([], "")), (([2, 3], ""), ([4, 2], "")),
          (([2, 3], "T"), ([3, 4], "T")), (([2, 3], "S"), ([3, 4], "S")), (([2, 0], "T"), ([0, 4], "T")),
          (([3], ""), ([3], "")), (([3], ""), ([3, 2], "")), (([2, 3], ""), ([3], "")), (([4], ""), ([2, 4, 3], "")),
          (([2, 2, 3], ""), ([3], "")), (([0], ""), ([0], "")), (([0], ""), ([0, 2], "")), (([3], ""), ([4], "")),
          (([3], "S"), ([3, 2], "T")), (([2, 3], "T"), ([3], "S")), (([], ""), ([3], "")), (([3], ""), ([2, 4], ""))]
for (sa, va), (sb, vb) in MATMUL:
    case(f"matmul{tag(sa, va)}{tag(sb, vb)}", "matmul", [inp(sa, va), inp(sb, vb)], fn=lambda a, b, i: a @ b)

# linear and nn.Linear: x, weight [OUT, IN], bias [OUT] (or none).
LINEAR = [([2, 4], [3, 4], [3]), ([2, 0], [3, 0], [3]), ([0, 4], [3, 4], [3]), ([2, 4], [0, 4], [0]),
          ([2, 3, 4], [5, 4], [5]), ([0, 3, 4], [5, 4], [5]), ([4], [3, 4], [3]), ([], [3, 1], [3]),
          ([2, 4], [3, 5], [3]), ([2, 4], [3, 4], [2])]
for op in ("linear", "Linear"):
    for sx, sw, sb in LINEAR:
        case(f"{op}{tag(sx, '')}{tag(sw, '')}{tag(sb, '')}", op, [inp(sx), inp(sw), inp(sb)],
             fn=lambda x, w, b, i: F.linear(x, w, b))
        if sb == sw[:1]:  # the bias-free form once per (x, weight)
            case(f"{op}_nobias{tag(sx, '')}{tag(sw, '')}", op + "_nobias", [inp(sx), inp(sw)],
                 fn=lambda x, w, i: F.linear(x, w))
    case(f"{op}[2,4]T[3,4]T[3]", op, [inp([2, 4], "T"), inp([3, 4], "T"), inp([3])],
         fn=lambda x, w, b, i: F.linear(x, w, b))
    case(f"{op}[2,4]S[3,4]S[3]", op, [inp([2, 4], "S"), inp([3, 4], "S"), inp([3])],
         fn=lambda x, w, b, i: F.linear(x, w, b))

# layer_norm and nn.LayerNorm over the last dim: x, scale [C], shift [C].
LN = [([2, 3, 4], ""), ([0, 4], ""), ([2, 0], ""), ([], ""), ([1], ""), ([3, 1], ""), ([3, 4], "T"), ([3, 4], "S")]
for op in ("layer_norm", "LayerNorm"):
    for shape, v in LN:
        C = shape[-1] if shape else 1
        case(f"{op}{tag(shape, v)}", op, [inp(shape, v, -2.0, 2.0), inp([C], "", 0.5, 1.5), inp([C])],
             fn=lambda x, s, b, i: F.layer_norm(x, s.shape, s, b, 1e-5))
    case(f"{op}[2,4][3]", op, [inp([2, 4]), inp([3]), inp([3])],
         fn=lambda x, s, b, i: F.layer_norm(x, s.shape, s, b, 1e-5))

# masked_fill: a, mask (no gradient; nonzero = fill). ints: [1] fills -inf, [0] fills 0.25.
MF = [(([2, 3], ""), [2, 3]), (([], ""), []), (([0, 3], ""), [3]), (([2, 3], ""), []), (([2, 3], ""), [1, 3]),
      (([3], ""), [2, 3]), (([3, 0], ""), [3, 1]), (([3, 4], "T"), [4]), (([3, 4], "S"), [3, 1])]
for (sa, va), sm in MF:
    for inf in (0, 1):
        case(f"masked_fill{tag(sa, va)}{tag(sm, '')}_inf{inf}", "masked_fill",
             [inp(sa, va), (tuple(sm), "", "mask", None, False)], [inf],
             fn=lambda a, m, i: a.masked_fill(m != 0, -math.inf if i[0] else 0.25))

# dropout with a fixed mask (the mask input takes no gradient), p = 0.25
for shape, v in UNARY_SHAPES:
    case(f"dropout_mask{tag(shape, v)}", "dropout_mask", [inp(shape, v), (tuple(shape), "", "mask", None, False)],
         fn=lambda a, m, i: a * (m / (1 - 0.25)))

# dropout drawn from a seeded generator (tapegrad's draws PyTorch's numbers), p = 0.25; ints: the seed.
# The op with its own Generator(seed), nn.Dropout in training from the default generator.
def dropout_seeded(a, i):
    with torch.random.fork_rng():
        torch.manual_seed(i[0])
        return F.dropout(a, 0.25, training=True)


for op in ("dropout", "Dropout_train"):
    for shape, v in UNARY_SHAPES + [([70], ""), ([3, 50], "")]:
        case(f"{op}{tag(shape, v)}", op, [inp(shape, v)], [11], fn=dropout_seeded)

# embedding and nn.Embedding: weight; ints: rank of the ids, their shape, the ids.
EMB = [([5, 3], "", [], [2]), ([5, 3], "", [0], []), ([5, 3], "", [2, 0], []), ([0, 3], "", [0], []),
       ([5, 0], "", [2], [1, 4]), ([5, 3], "", [2, 2], [4, 0, 4, 1]), ([5, 3], "", [2], [5, 0]),
       ([5, 3], "", [1], [-1]), ([3, 5], "T", [3], [1, 1, 2]), ([5, 3], "S", [2], [0, 3])]
for op in ("embedding", "Embedding"):
    for sw, v, ids_shape, ids in EMB:
        ints = [len(ids_shape)] + ids_shape + ids
        case(f"{op}{tag(sw, v)}_ids{tag(ids_shape, '')}_{'_'.join(map(str, ids))}", op, [inp(sw, v)], ints,
             fn=lambda w, i: F.embedding(torch.tensor(i[1 + i[0]:], dtype=torch.long).view(i[1:1 + i[0]]), w))


# cross_entropy: logits [N, V] or [B, T, V] (flattened), [V] with one target; ints: the targets.
def ce(x, i):
    tg = torch.tensor(i, dtype=torch.long)
    if x.dim() >= 3:
        return F.cross_entropy(x.flatten(0, -2), tg)
    if x.dim() == 1:
        return F.cross_entropy(x, tg.view([]))
    return F.cross_entropy(x, tg.view(-1) if x.dim() else tg)


CE = [([2, 4], "", [1, 3]), ([0, 4], "", []), ([2, 0], "", [0, 0]), ([4], "", [2]), ([], "", [0]),
      ([2, 3, 4], "", [0, 1, 2, 3, -100, 1]), ([2, 4], "", [-100, -100]), ([2, 4], "", [1, 4]),
      ([2, 4], "", [1, -1]), ([1, 1], "", [0]), ([4, 3], "T", [0, 1, 2, 1]), ([3, 4], "S", [0, 1, 3])]
for shape, v, tgs in CE:
    case(f"cross_entropy{tag(shape, v)}_{'_'.join(map(str, tgs))}", "cross_entropy", [inp(shape, v, -3.0, 3.0)],
         tgs, fn=ce)

# cat: two parts; ints: the dim.
CAT = [(([2, 3], ""), ([2, 2], ""), 1), (([0, 3], ""), ([2, 3], ""), 0), (([2, 0], ""), ([2, 0], ""), 1),
       (([2, 0], ""), ([2, 3], ""), 1), (([], ""), ([], ""), 0), (([2, 3], ""), ([2, 4], ""), 0),
       (([2, 3], ""), ([2, 3, 1], ""), 0), (([1], ""), ([0], ""), 0), (([2, 3], "T"), ([2, 3], "S"), -1),
       (([3, 2], "T"), ([3, 2], "T"), 0)]
for (sa, va), (sb, vb), d in CAT:
    case(f"cat{tag(sa, va)}{tag(sb, vb)}_dim{d}", "cat", [inp(sa, va), inp(sb, vb)], [d],
         fn=lambda a, b, i: torch.cat([a, b], dim=i[0]))


# Views. transpose: ints d0, d1; permute: the order; slice: dim, start, end; view and reshape: the shape.
def py_slice(a, i):
    if a.dim() == 0:
        return a[i[1]:i[2]]  # PyTorch's own message for a 0-d tensor
    d = i[0] + a.dim() if i[0] < 0 else i[0]  # past the last dim: PyTorch's "too many indices"
    return a[(slice(None),) * d + (slice(i[1], i[2]),)]


VIEWS = [("transpose", [], "", [0, 0]), ("transpose", [], "", [-1, 0]), ("transpose", [], "", [0, 1]),
         ("transpose", [0, 3], "", [0, 1]), ("transpose", [2, 0, 3], "", [0, 2]), ("transpose", [3, 4], "T", [0, 1]),
         ("permute", [], "", []), ("permute", [0, 3], "", [1, 0]), ("permute", [2, 0, 3], "", [2, 0, 1]),
         ("permute", [3, 4], "S", [1, 0]), ("permute", [2, 3], "", [0, 0]),
         ("slice", [], "", [0, 0, 1]), ("slice", [0, 3], "", [0, 0, 1]), ("slice", [3, 0], "", [1, 0, 1]),
         ("slice", [4, 3], "", [0, 1, 3]), ("slice", [4, 3], "", [-1, 1, -1]), ("slice", [4, 3], "", [0, 3, 1]),
         ("slice", [3, 4], "T", [1, 1, 3]), ("slice", [2, 3], "", [2, 0, 1]),
         ("view", [], "", [1, 1]), ("view", [], "", [1, -1]), ("view", [0, 3], "", [2, 3, 0]),
         ("view", [0, 3], "", [2, -1]), ("view", [0, 3], "", [2, -1, 0]), ("view", [2, 3], "", [2, 3, 6]),
         ("view", [3, 4], "T", [2, 6]),
         ("reshape", [], "", [1, 1]), ("reshape", [0, 3], "", [2, 0, -1]), ("reshape", [0, 3], "", [2, -1, 0]),
         ("reshape", [3, 4], "T", [2, 6]), ("reshape", [3, 4], "S", [2, -1])]
VIEW_FN = {
    "transpose": lambda a, i: a.transpose(i[0], i[1]),
    "permute": lambda a, i: a.permute(*i) if i else a.permute([]),
    "slice": py_slice,
    "view": lambda a, i: a.view(i[1:]),
    "reshape": lambda a, i: a.reshape(i[1:]),
}
for op, shape, v, ints in VIEWS:
    if op in ("view", "reshape"):
        ints = [len(ints)] + ints  # rank, then the shape
    case(f"{op}{tag(shape, v)}_{'_'.join(map(str, ints))}", op, [inp(shape, v)], ints, fn=VIEW_FN[op])


# nn.FeedForward (Linear(C, 4C), GELU, Linear(4C, C)): x, up.weight, up.bias, down.weight, down.bias.
def ff(x, w1, b1, w2, b2, i):
    return F.linear(gelu_book(F.linear(x, w1, b1)), w2, b2)


for shape, C in [([2, 3, 4], 4), ([0, 4], 4), ([2, 0], 0), ([0, 2, 0], 0), ([3], 3)]:
    case(f"FeedForward{tag(shape, '')}", "FeedForward",
         [inp(shape), inp([4 * C, C]), inp([4 * C]), inp([C, 4 * C]), inp([C])], fn=ff)

# The attention variants of nn/attention.h (tools/torch_gpt.py's modules, dropout 0): x, then the
# parameters in PyTorch's order. ints: d_in, d_out, context_length, num_heads, out_proj.
from torch_gpt import MHA_alt1, MultiHeadAttention  # noqa: E402


def attention_case(name, op, x_spec, ints):
    d_in, d_out, ctx, nh, proj = ints
    cls = MultiHeadAttention if op == "attention_mha" else MHA_alt1
    m = cls(d_in, d_out, ctx, 0.0, nh, qkv_bias=False, out_proj=bool(proj))
    names = [n for n, _ in m.named_parameters()]
    specs = [x_spec] + [inp(list(p.shape)) for _, p in m.named_parameters()]

    def fn(x, *rest):  # the parameters, then the ints
        return torch.nn.utils.stateless.functional_call(m, dict(zip(names, rest[:-1])), (x,))

    case(name, op, specs, ints, fn=fn)


ATTENTION = [([2, 3, 4], "", [4, 4, 5, 2, 1]), ([0, 3, 4], "", [4, 4, 5, 2, 1]), ([2, 0, 4], "", [4, 4, 5, 2, 1]),
             ([2, 3, 0], "", [0, 4, 5, 2, 1]), ([1, 1, 4], "", [4, 4, 5, 2, 0]), ([2, 3, 4], "", [4, 0, 5, 1, 1]),
             ([2, 3, 4], "T", [4, 4, 5, 2, 0]), ([2, 6, 4], "", [4, 4, 5, 2, 1]), ([3, 4], "", [4, 4, 5, 2, 1]),
             ([2, 3, 5], "", [4, 4, 5, 2, 1])]
for op in ("attention_mha", "attention_alt1"):
    for shape, v, ints in ATTENTION:
        attention_case(f"{op}{tag(shape, v)}_{'_'.join(map(str, ints))}", op, inp(shape, v), ints)

write("edge_cases.json", cases)
