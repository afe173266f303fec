#!/usr/bin/python3
"""Write tests/fixtures/model_*.safetensors: for small GPT configs (mha and alt1,
qkv_bias on and off, out_proj both ways, mha with --qk-dim above and below the
head size, dropout 0), the initial weights, one
batch of ids and targets, the logits, the loss, every parameter's gradient, and
the weights after 1 and 3 AdamW steps (lr 1e-3, weight decay 0.1, eps 1e-6: with
the default 1e-8 an element whose gradient is ~1e-9, e.g. any key bias, whose
exact gradient is zero, moves by lr * g / (|g| + eps), which turns float32
rounding of g into 1e-5 weight differences; tests/fixtures/adamw.json checks
the default eps on the optimizer alone). Also records
the parameter count of gpt2-124m for both variants in model_counts.json.
Run: /usr/bin/python3 tools/make_model_fixtures.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
from torch_gpt import GPT_CONFIG_124M, GPTModel  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")

BASE = {"vocab_size": 97, "context_length": 12, "emb_dim": 32, "n_heads": 4, "n_layers": 2, "drop_rate": 0.0}
VARIANTS = {
    "mha": dict(attention="mha", qkv_bias=False, out_proj=True),
    "mha_qkvbias_noproj": dict(attention="mha", qkv_bias=True, out_proj=False),
    "alt1": dict(attention="alt1", qkv_bias=False, out_proj=False),
    "alt1_qkvbias_proj": dict(attention="alt1", qkv_bias=True, out_proj=True),
    # --qk-dim: query/key width 12 per head against a head size of 8 (and 3 < 8).
    "mha_qkdim12_qkvbias": dict(attention="mha", qkv_bias=True, out_proj=True, qk_dim=12),
    "mha_qkdim3_noproj": dict(attention="mha", qkv_bias=False, out_proj=False, qk_dim=3),
}


def make(name, variant, seed):
    cfg = dict(BASE, **variant)
    torch.manual_seed(seed)
    model = GPTModel(cfg)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg["vocab_size"], (2, 10), generator=g)
    targets = torch.randint(0, cfg["vocab_size"], (2, 10), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, eps=1e-6)
    logits = model(ids)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    opt.zero_grad()
    loss.backward()
    out = {f"init.{k}": v for k, v in init.items()}
    out.update({f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()})
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    out["ids"] = ids
    out["targets"] = targets
    opt.step()
    out.update({f"step1.{k}": p.detach().clone() for k, p in model.named_parameters()})
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), targets.flatten()).backward()
        opt.step()
    out.update({f"step3.{k}": p.detach().clone() for k, p in model.named_parameters()})
    meta = {"config": json.dumps(cfg), "seed": seed, "torch_version": torch.__version__}
    st_io.save(os.path.join(OUT, f"model_{name}.safetensors"), out, meta)
    print("wrote", name, "loss", float(loss))


for i, (name, variant) in enumerate(VARIANTS.items()):
    make(name, variant, 100 + i)

# AdamW alone, default eps: a parameter of mixed magnitudes and given gradients
# (some tiny, some zero) for 3 steps.
torch.manual_seed(9)
p = torch.nn.Parameter(torch.randn(64) * 0.5)
grads = [torch.randn(64) * s for s in (1e-2, 3e-3, 1e-1)]
for g in grads:
    g[:4] = torch.tensor([0.0, 1e-9, -3e-8, 5e-7])
adam = {"p0": p.detach().tolist(), "grads": [g.tolist() for g in grads]}
opt = torch.optim.AdamW([p], lr=4e-4, weight_decay=0.1)
adam["after"] = []
for g in grads:
    p.grad = g.clone()
    opt.step()
    adam["after"].append(p.detach().tolist())
with open(os.path.join(OUT, "adamw.json"), "w") as f:
    json.dump(adam, f)

counts = {}
for att in ["mha", "alt1"]:
    torch.manual_seed(0)
    m = GPTModel(dict(GPT_CONFIG_124M, attention=att))
    counts[att] = sum(p.numel() for p in m.parameters())
    del m
with open(os.path.join(OUT, "model_counts.json"), "w") as f:
    json.dump(counts, f)
print("gpt2-124m parameter counts:", counts)
