#!/usr/bin/env python3
"""Recompute the answer study's figures from its per-run files alone.

    tools/recompute_answer.py SWEEP_DIR [--contrasts C-B,D-C,D-A] [--sesoi 0.02]

Reads every run's done.json (variant, lr, seed) and final_eval.csv (the
whole-split validation loss, per document) under SWEEP_DIR/runs/, then prints
per arm the selection profile and the chosen learning rate, and per primary
contrast the paired mean difference, its 95% t-interval, the two-sided p, the
TOST p at +-sesoi and both Holm-adjusted: the numbers report.md states,
computed independently of tapegrad's C++ (only the Python standard library).
An arm's name is the name= key of its spec; lr-from arms take the named arm's rate.
"""
import argparse
import csv
import json
import math
import os
import sys


def t_cdf(t, df):
    """P(T <= t) for Student's t, by Simpson's rule on the density (enough digits for p-values)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)
    a, n = abs(t), 20000
    h = a / n
    s = f(0) + f(a) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, n))
    half = s * h / 3
    return 0.5 + half if t >= 0 else 0.5 - half


def t_quantile(q, df):
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def holm(ps):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, ps[i] * (len(ps) - k)))
        out[i] = running
    return out


def spec_name(spec):
    for part in spec.split(":")[1:]:
        if part.startswith("name="):
            return part[5:]
    return spec


def spec_key(spec, key):
    for part in spec.split(":")[1:]:
        if part.startswith(key + "="):
            return part[len(key) + 1:]
    return None


def load(sweep):
    runs = []
    for d, _, files in os.walk(os.path.join(sweep, "runs")):
        if "done.json" not in files:
            continue
        done = json.load(open(os.path.join(d, "done.json")))
        loss = done.get("full_val_loss")
        fe = os.path.join(d, "final_eval.csv")
        if os.path.exists(fe):
            rows = list(csv.DictReader(open(fe)))
            loss = sum(float(r["loss_sum"]) for r in rows) / sum(float(r["tokens"]) for r in rows)
        if loss is None:
            loss = done["final_val_loss"]
        runs.append({"spec": done["variant"], "lr": done["lr"], "seed": done["seed"], "loss": loss})
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sweep")
    ap.add_argument("--contrasts", default="C-B,D-C,D-A")
    ap.add_argument("--sesoi", type=float, default=0.02)
    ap.add_argument("--selection-seeds", default="101,102")
    a = ap.parse_args()
    sel = [int(s) for s in a.selection_seeds.split(",")]
    runs = load(a.sweep)
    specs = sorted({r["spec"] for r in runs})
    chosen = {}
    for spec in specs:
        if spec_key(spec, "lr-from"):
            continue
        prof = {}
        for r in runs:
            if r["spec"] == spec and r["seed"] in sel:
                prof.setdefault(r["lr"], []).append(r["loss"] if math.isfinite(r["loss"]) else math.inf)
        full = {lr: sum(v) / len(v) for lr, v in prof.items() if len(v) == len(sel)}
        if not full:
            continue
        best = min(full, key=full.get)
        chosen[spec_name(spec)] = best
        print(f"{spec_name(spec)}: " + ", ".join(f"lr {lr:g} {full[lr]:.4f}" for lr in sorted(full)) +
              f" -> chosen {best:g}")
    by_name = {spec_name(s): s for s in specs}
    for s in specs:
        if spec_key(s, "lr-from") and spec_key(s, "lr-from") in chosen:
            chosen[spec_name(s)] = chosen[spec_key(s, "lr-from")]
    rows = []
    for c in a.contrasts.split(","):
        x, y = c.split("-")
        if x not in chosen or y not in chosen:
            print(f"{c}: not all selection runs are finished")
            continue
        ax = {r["seed"]: r["loss"] for r in runs if r["spec"] == by_name[x] and r["lr"] == chosen[x] and r["seed"] not in sel}
        ay = {r["seed"]: r["loss"] for r in runs if r["spec"] == by_name[y] and r["lr"] == chosen[y] and r["seed"] not in sel}
        d = [ax[s] - ay[s] for s in sorted(set(ax) & set(ay))]
        n = len(d)
        if n < 2:
            print(f"{c}: {n} paired evaluation seed(s)")
            continue
        m = sum(d) / n
        sd = math.sqrt(sum((v - m) ** 2 for v in d) / (n - 1))
        se = sd / math.sqrt(n)
        tq = t_quantile(0.975, n - 1)
        p = 2 * (1 - t_cdf(abs(m / se), n - 1))
        p_tost = max(1 - t_cdf((m + a.sesoi) / se, n - 1), 1 - t_cdf((a.sesoi - m) / se, n - 1))
        rows.append((c, n, m, m - tq * se, m + tq * se, sd, p, p_tost))
    if rows:
        hp, ht = holm([r[6] for r in rows]), holm([r[7] for r in rows])
        print("contrast n mean lo hi sd p p_holm p_tost p_tost_holm")
        for r, h1, h2 in zip(rows, hp, ht):
            print(f"{r[0]} {r[1]} {r[2]:+.4f} {r[3]:+.4f} {r[4]:+.4f} {r[5]:.4f} {r[6]:.3g} {h1:.3g} {r[7]:.3g} {h2:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
