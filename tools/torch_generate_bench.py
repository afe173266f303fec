#!/usr/bin/python3
"""The generation benchmark's PyTorch side (bench/bench_generate.cpp): GPT-2 124M's
shape (context 1024, qkv_bias), seeded with torch.manual_seed(123) as tapegrad's
bench, 2 threads, batch 1, a 20-token prompt and 200 greedy tokens
  - uncached: the book's generate_text_simple (the whole cropped context each step),
  - cached: a KV cache after the book's bonus material (ch04/03_kv-cache): each
    attention layer keeps its keys and values, grown with torch.cat; the prompt
    runs once, then each step feeds only the newest token at the next position.
Prints "uncached_tok_s cached_tok_s same" (same = 1 when both give the same
tokens), then the uncached run's new tokens, one per line.
usage: /usr/bin/python3 tools/torch_generate_bench.py [--new 200]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT_CONFIG_124M, GPTModel, MultiHeadAttention  # noqa: E402


def attend_cached(att, x, pos):
    """MultiHeadAttention for the tokens x at positions pos .. pos + t - 1, reading
    and extending att.cache_k / att.cache_v ([1, NH, T, HS])."""
    b, t, _ = x.shape
    split = lambda y: y.view(b, t, att.num_heads, att.head_dim).transpose(1, 2)  # noqa: E731
    k, v, q = split(att.W_key(x)), split(att.W_value(x)), split(att.W_query(x))
    if att.cache_k is not None:
        k, v = torch.cat([att.cache_k, k], dim=2), torch.cat([att.cache_v, v], dim=2)
    att.cache_k, att.cache_v = k, v
    scores = q @ k.transpose(2, 3)  # [1, NH, t, pos + t]
    scores.masked_fill_(att.mask.bool()[pos:pos + t, :pos + t], -torch.inf)
    w = torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1)
    ctx = (w @ v).transpose(1, 2).contiguous().view(b, t, att.d_out)
    return att.out_proj(ctx)


def forward_cached(model, idx, pos):
    """The model on the new tokens only; returns the last position's logits."""
    t = idx.shape[1]
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(pos, pos + t))
    for blk in model.trf_blocks:
        x = x + blk.att_cached(blk.norm1(x), pos)
        x = x + blk.ff(blk.norm2(x))
    return model.out_head(model.final_norm(x[:, -1:, :]))


def reset_cache(model):
    for blk in model.trf_blocks:
        blk.att.cache_k = blk.att.cache_v = None
        blk.att_cached = lambda x, pos, att=blk.att: attend_cached(att, x, pos)


def generate_text_simple(model, idx, max_new_tokens, context_size):
    """The book's greedy loop (Chapter 4)."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        idx = torch.cat((idx, torch.argmax(logits, dim=-1, keepdim=True)), dim=1)
    return idx


def generate_cached(model, idx, max_new_tokens, context_size):
    """Greedy with the cache; restarts it from the cropped window past the context."""
    reset_cache(model)
    with torch.no_grad():
        logits = forward_cached(model, idx[:, -context_size:], 0)
        for _ in range(max_new_tokens):
            nxt = torch.argmax(logits[:, -1, :], dim=-1, keepdim=True)
            idx = torch.cat((idx, nxt), dim=1)
            pos = model.trf_blocks[0].att.cache_k.shape[2]
            if pos < context_size:
                logits = forward_cached(model, nxt, pos)
            else:
                reset_cache(model)
                logits = forward_cached(model, idx[:, -context_size:], 0)
    return idx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompt", type=int, default=20)
    ap.add_argument("--new", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = dict(GPT_CONFIG_124M, context_length=1024, qkv_bias=True)
    torch.manual_seed(123)
    model = GPTModel(cfg)
    model.eval()
    assert all(isinstance(b.att, MultiHeadAttention) for b in model.trf_blocks)
    prompt = (torch.arange(args.prompt) * 7919 % cfg["vocab_size"]).unsqueeze(0)
    ctx = cfg["context_length"]
    generate_cached(model, prompt, 3, ctx)  # warm-up
    generate_text_simple(model, prompt, 3, ctx)
    t0 = time.perf_counter()
    plain = generate_text_simple(model, prompt, args.new, ctx)
    t1 = time.perf_counter()
    cached = generate_cached(model, prompt, args.new, ctx)
    t2 = time.perf_counter()
    same = int(torch.equal(plain, cached))
    print(f"{args.new / (t1 - t0):.4f} {args.new / (t2 - t1):.4f} {same}")
    for t in plain[0, args.prompt:].tolist():
        print(t)


if __name__ == "__main__":
    main()
