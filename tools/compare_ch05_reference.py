#!/usr/bin/python3
"""Line by line: a tapegrad run's Chapter 5 output against the PyTorch reference
that tools/ch05_reference.py wrote (loss lines and the per-epoch samples, in the
order both print them). No torch needed.
usage: tools/compare_ch05_reference.py runs/alt1/summary.json docs/reference/ch05_alt1_torch.txt
Exit code 0 when every line is equal, 1 otherwise; differing lines are printed
with the size of each loss difference.
"""
import json
import re
import sys

if len(sys.argv) != 3:
    sys.exit(__doc__)
with open(sys.argv[1]) as f:
    summary = json.load(f)
with open(sys.argv[2]) as f:
    ref = [line.rstrip("\n") for line in f if line.strip()]

# tapegrad keeps loss lines and samples apart; PyTorch printed them interleaved
# (the sample after the last loss line of each epoch).
losses = summary["book_lines"].splitlines()
samples = [s.replace("\n", " ") for s in summary["samples"]]
ref_losses = [line for line in ref if line.startswith("Ep ")]
ref_samples = [line for line in ref if not line.startswith("Ep ")]

num = re.compile(r"Train loss ([0-9.]+), Val loss ([0-9.]+)")
same = 0
for i, (a, b) in enumerate(zip(losses, ref_losses)):
    if a == b:
        same += 1
        continue
    ma, mb = num.search(a), num.search(b)
    dt = abs(float(ma[1]) - float(mb[1])) if ma and mb else float("nan")
    dv = abs(float(ma[2]) - float(mb[2])) if ma and mb else float("nan")
    print(f"loss line {i}: tapegrad '{a}'\n             PyTorch  '{b}'  (|d train| {dt:.3f}, |d val| {dv:.3f})")
print(f"loss lines: {same} of {len(ref_losses)} equal" + ("" if len(losses) == len(ref_losses) else f" (tapegrad printed {len(losses)})"))
same_s = 0
for i, (a, b) in enumerate(zip(samples, ref_samples)):
    if a.rstrip() == b.rstrip():
        same_s += 1
    else:
        print(f"sample {i + 1}: tapegrad '{a}'\n          PyTorch  '{b}'")
print(f"samples: {same_s} of {len(ref_samples)} equal")
sys.exit(0 if same == len(ref_losses) == len(losses) and same_s == len(ref_samples) == len(samples) else 1)
