#!/usr/bin/python3
"""Write tests/fixtures/pairs.safetensors: the pair decomposition of G and -dM
(train/study/pairs.h) of a tiny GPT, mha and alt1, computed with autograd.

For each variant: the initial weights (prefix "<v>.init."), one batch of ids and
targets, and for every layer l and head h, with g = dL/dscores (pre-mask,
retained by autograd), x the attention input and
    G = sum_b x_b^T g_b x_b  (checked here against autograd's parameter gradients:
                              dL/dWq_h = Wk_h G^T for mha, dL/dS_h = G^T for alt1)
    dM after one plain SGD step (lr 1): mha Wq'^T Wk' - Wq^T Wk, alt1 (S' - S)^T
the shares over all pairs [L, H, B, T, T]
    share_g  = g (x G x^T) / ||G||^2
    share_dm = g (x (-dM) x^T) / <G, -dM>
and the top K = 5 pairs by |share_g| as (b, i, j) [L, H, K, 3]. Shares are computed
in float64 from the float32 forward and backward.
Run: /usr/bin/python3 tools/make_pairs_fixture.py
"""
import json
import os
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from torch_gpt import GPTModel  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
BASE = {"vocab_size": 40, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0,
        "qkv_bias": False}
K = 5
LR = 1.0


def mha_forward(self, x):
    """torch_gpt's MultiHeadAttention.forward with the pre-mask scores kept (not in place)."""
    self.x = x
    b, t, _ = x.shape
    keys = self.W_key(x).view(b, t, self.num_heads, self.qk_dim).transpose(1, 2)
    queries = self.W_query(x).view(b, t, self.num_heads, self.qk_dim).transpose(1, 2)
    values = self.W_value(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    scores = queries @ keys.transpose(2, 3)
    scores.retain_grad()
    self.scores = scores
    masked = scores.masked_fill(self.mask.bool()[:t, :t], -torch.inf)
    w = torch.softmax(masked / self.head_dim ** 0.5, dim=-1)
    ctx = (w @ values).transpose(1, 2).contiguous().view(b, t, self.d_out)
    return self.out_proj(ctx) if self.out_proj is not None else ctx


def alt1_forward(self, x):
    self.x = x
    t = x.shape[1]
    scores = self.S(x) @ x.transpose(1, 2)
    scores.retain_grad()
    self.scores = scores
    masked = scores.masked_fill(self.mask.bool()[:t, :t], -torch.inf)
    w = torch.softmax(masked / self.d_out ** 0.5, dim=-1)
    return w @ self.W_value(x)


def factors(att, h, alt1):
    """Head h's (A, B) with M = A^T B (mha), or S with M = S^T (alt1), float64 copies."""
    if alt1:
        return att.heads[h].S.weight.detach().double().clone(), None
    r = att.qk_dim
    return (att.W_query.weight[h * r:(h + 1) * r].detach().double().clone(),
            att.W_key.weight[h * r:(h + 1) * r].detach().double().clone())


def M_of(f):
    a, b = f
    return a.T if b is None else a.T @ b


def make(variant, seed, out):
    cfg = dict(BASE, attention=variant, out_proj=variant == "mha")
    alt1 = variant == "alt1"
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    for k, v in model.state_dict().items():
        out[f"{variant}.init.{k}"] = v.clone()
    for blk in model.trf_blocks:
        if alt1:
            for hd in blk.att.heads:
                hd.forward = types.MethodType(alt1_forward, hd)
        else:
            blk.att.forward = types.MethodType(mha_forward, blk.att)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg["vocab_size"], (2, 8), generator=g)
    targets = torch.randint(0, cfg["vocab_size"], (2, 8), generator=g)
    loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), targets.flatten())
    model.zero_grad()
    loss.backward()
    L, H = cfg["n_layers"], cfg["n_heads"]
    before, per_head = {}, {}
    for l, blk in enumerate(model.trf_blocks):
        for h in range(H):
            src = blk.att.heads[h] if alt1 else blk.att
            x = src.x.detach().double()
            D = (src.scores.grad if alt1 else src.scores.grad[:, h]).double()
            G = torch.einsum("bic,bij,bjd->cd", x, D, x)
            a, b = factors(blk.att, h, alt1)
            if alt1:
                assert torch.allclose(blk.att.heads[h].S.weight.grad.double(), G.T, rtol=1e-4, atol=1e-6)
            else:
                r = blk.att.qk_dim
                gq = blk.att.W_query.weight.grad[h * r:(h + 1) * r].double()
                assert torch.allclose(gq, b @ G.T, rtol=1e-4, atol=1e-6)
            before[(l, h)] = (a, b)
            per_head[(l, h)] = (x, D, G)
    with torch.no_grad():
        for p in model.parameters():
            p -= LR * p.grad  # plain SGD
    share_g = torch.zeros(L, H, 2, 8, 8, dtype=torch.float64)
    share_dm = torch.zeros_like(share_g)
    top = torch.zeros(L, H, K, 3, dtype=torch.int64)
    for l, blk in enumerate(model.trf_blocks):
        for h in range(H):
            x, D, G = per_head[(l, h)]
            minus_dM = -(M_of(factors(blk.att, h, alt1)) - M_of(before[(l, h)]))
            share_g[l, h] = D * (x @ G @ x.transpose(1, 2)) / (G * G).sum()
            share_dm[l, h] = D * (x @ minus_dM @ x.transpose(1, 2)) / (G * minus_dM).sum()
            order = torch.argsort(share_g[l, h].abs().flatten(), descending=True, stable=True)[:K]
            top[l, h] = torch.stack([order // 64, (order // 8) % 8, order % 8], dim=1)
            assert abs(float(share_g[l, h].sum()) - 1) < 1e-9 and abs(float(share_dm[l, h].sum()) - 1) < 1e-9
    out[f"{variant}.ids"] = ids
    out[f"{variant}.targets"] = targets
    out[f"{variant}.share_g"] = share_g.float()
    out[f"{variant}.share_dm"] = share_dm.float()
    out[f"{variant}.top_g"] = top
    return cfg


out = {}
cfgs = {v: make(v, 200 + i, out) for i, v in enumerate(["mha", "alt1"])}
meta = {"configs": json.dumps(cfgs), "lr": LR, "k": K, "torch_version": torch.__version__}
st_io.save(os.path.join(OUT, "pairs.safetensors"), out, meta)
print("wrote tests/fixtures/pairs.safetensors")
