#!/usr/bin/python3
"""A random GPT-2 in the Hugging Face `model.safetensors` layout, at a small config,
and what the book's model does with it after the book's load_weights_into_gpt
mapping (section 5.5): the test fixture for tapegrad's pretrained loader
(models/gpt2_hf.h; tests/test_gpt2_hf.cpp).

Writes
  tests/fixtures/gpt2_hf_small.safetensors   the HF-layout file: names under
      "transformer.", Conv1D weights [in, out], c_attn holding q | k | v, and the
      causal-mask buffers (h.{i}.attn.bias, h.{i}.attn.masked_bias) HF files carry
  tests/fixtures/gpt2_hf_small_expected.safetensors
      prompt (I64 [1, 8]), logits of the prompt (F32 [1, 8, V]), greedy (I64: the
      prompt + 30 greedy tokens of the book's generate_text_simple; 38 > context 32,
      so the book's crop is exercised), finetune_x / finetune_y (I64 [steps, 2, 16])
      and finetune_losses (F32 [steps]): AdamW (lr 1e-3, weight decay 0.1) from
      the mapped model, dropout 0.
Weights are drawn wider than GPT-2's init (std 0.02) so the logits are well
separated and greedy choices are not near-ties.
Run: /usr/bin/python3 tools/make_gpt2_hf_fixture.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
from torch_gpt import GPTModel  # noqa: E402

CFG = {"vocab_size": 1000, "context_length": 32, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
       "drop_rate": 0.0, "qkv_bias": True, "attention": "mha", "out_proj": True}
PROMPT_LEN, NEW_TOKENS, STEPS, LR = 8, 30, 5, 1e-3


def random_hf_state(cfg, gen):
    """HF GPT2Model names and layouts (Conv1D weights are [in, out])."""
    V, N, C = cfg["vocab_size"], cfg["context_length"], cfg["emb_dim"]

    def rnd(*shape, std=0.3, mean=0.0):
        return torch.randn(*shape, generator=gen) * std + mean

    sd = {"wte.weight": rnd(V, C), "wpe.weight": rnd(N, C, std=0.1)}
    for i in range(cfg["n_layers"]):
        h = f"h.{i}."
        sd[h + "ln_1.weight"] = rnd(C, std=0.1, mean=1.0)
        sd[h + "ln_1.bias"] = rnd(C, std=0.1)
        sd[h + "attn.c_attn.weight"] = rnd(C, 3 * C)
        sd[h + "attn.c_attn.bias"] = rnd(3 * C, std=0.1)
        sd[h + "attn.c_proj.weight"] = rnd(C, C)
        sd[h + "attn.c_proj.bias"] = rnd(C, std=0.1)
        sd[h + "ln_2.weight"] = rnd(C, std=0.1, mean=1.0)
        sd[h + "ln_2.bias"] = rnd(C, std=0.1)
        sd[h + "mlp.c_fc.weight"] = rnd(C, 4 * C, std=0.2)
        sd[h + "mlp.c_fc.bias"] = rnd(4 * C, std=0.1)
        sd[h + "mlp.c_proj.weight"] = rnd(4 * C, C, std=0.1)
        sd[h + "mlp.c_proj.bias"] = rnd(C, std=0.1)
        # The buffers HF's GPT2Attention registers; loaders must ignore them.
        sd[h + "attn.bias"] = torch.tril(torch.ones(N, N)).view(1, 1, N, N)
        sd[h + "attn.masked_bias"] = torch.tensor(-1e4)
    sd["ln_f.weight"] = rnd(C, std=0.1, mean=1.0)
    sd["ln_f.bias"] = rnd(C, std=0.1)
    return sd


def book_mapping(model, sd):
    """The book's load_weights_into_gpt, written from its description: split c_attn's
    columns into q, k, v and transpose every Conv1D weight; out_head gets wte."""
    def assign(param, value):
        assert param.shape == value.shape, (param.shape, value.shape)
        param.data.copy_(value)

    assign(model.tok_emb.weight, sd["wte.weight"])
    assign(model.pos_emb.weight, sd["wpe.weight"])
    for i, blk in enumerate(model.trf_blocks):
        h = f"h.{i}."
        qw, kw, vw = torch.chunk(sd[h + "attn.c_attn.weight"], 3, dim=-1)
        qb, kb, vb = torch.chunk(sd[h + "attn.c_attn.bias"], 3, dim=-1)
        for lin, w, b in ((blk.att.W_query, qw, qb), (blk.att.W_key, kw, kb), (blk.att.W_value, vw, vb)):
            assign(lin.weight, w.T)
            assign(lin.bias, b)
        assign(blk.att.out_proj.weight, sd[h + "attn.c_proj.weight"].T)
        assign(blk.att.out_proj.bias, sd[h + "attn.c_proj.bias"])
        assign(blk.ff.layers[0].weight, sd[h + "mlp.c_fc.weight"].T)
        assign(blk.ff.layers[0].bias, sd[h + "mlp.c_fc.bias"])
        assign(blk.ff.layers[2].weight, sd[h + "mlp.c_proj.weight"].T)
        assign(blk.ff.layers[2].bias, sd[h + "mlp.c_proj.bias"])
        assign(blk.norm1.scale, sd[h + "ln_1.weight"])
        assign(blk.norm1.shift, sd[h + "ln_1.bias"])
        assign(blk.norm2.scale, sd[h + "ln_2.weight"])
        assign(blk.norm2.shift, sd[h + "ln_2.bias"])
    assign(model.final_norm.scale, sd["ln_f.weight"])
    assign(model.final_norm.shift, sd["ln_f.bias"])
    assign(model.out_head.weight, sd["wte.weight"])


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """The book's greedy loop (Chapter 4): crop to the context, argmax of the last position.
    Also returns the smallest gap between the best and second-best logit."""
    gap = float("inf")
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        top2 = torch.topk(logits, 2, dim=-1).values
        gap = min(gap, (top2[0, 0] - top2[0, 1]).item())
        idx = torch.cat((idx, torch.argmax(logits, dim=-1, keepdim=True)), dim=1)
    return idx, gap


def main():
    gen = torch.Generator().manual_seed(2024)
    sd = random_hf_state(CFG, gen)
    model = GPTModel(CFG)
    book_mapping(model, sd)
    model.eval()
    prompt = torch.randint(0, CFG["vocab_size"], (1, PROMPT_LEN), generator=gen)
    with torch.no_grad():
        logits = model(prompt)
    greedy, gap = generate_text_simple(model, prompt, NEW_TOKENS, CFG["context_length"])

    model.train()  # dropout is 0: train mode only matters for the book's loop as written
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.1)
    xs = torch.randint(0, CFG["vocab_size"], (STEPS, 2, 16), generator=gen)
    ys = torch.randint(0, CFG["vocab_size"], (STEPS, 2, 16), generator=gen)
    losses = []
    for s in range(STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xs[s]).flatten(0, 1), ys[s].flatten())
        loss.backward()
        opt.step()
        losses.append(loss.item())

    fx = os.path.join(HERE, "..", "tests", "fixtures")
    st_io.save(os.path.join(fx, "gpt2_hf_small.safetensors"),
               {"transformer." + k: v for k, v in sd.items()}, {"format": "pt"})
    st_io.save(os.path.join(fx, "gpt2_hf_small_expected.safetensors"),
               {"prompt": prompt, "logits": logits, "greedy": greedy, "finetune_x": xs, "finetune_y": ys,
                "finetune_losses": torch.tensor(losses)})
    print("greedy:", greedy.tolist()[0][PROMPT_LEN:], f"(smallest top-1 / top-2 logit gap {gap:.4f})")
    print("losses:", " ".join(f"{v:.6f}" for v in losses))


if __name__ == "__main__":
    main()
