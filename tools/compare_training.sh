#!/usr/bin/env bash
# The first N training losses of tapegrad and PyTorch from the same weights
# (exported from PyTorch), dropout 0, no shuffle: issue 4's evidence at full size.
#   tools/compare_training.sh [gpt2-124m|small] [N=20] [mha|alt1]
# Needs Debian's python3-torch and a Release build (make test builds one).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-gpt2-124m}; steps=${2:-20}; att=${3:-mha}
dir=$(mktemp -d)
/usr/bin/python3 tools/make_train_fixture.py --config "$config" --attention "$att" --steps "$steps" --out "$dir" >/dev/null
flags="--drop-rate 0 --no-shuffle --eval-freq 0 --max-steps $steps --attention $att --quiet"
[ "$config" = small ] && flags="$flags --preset tiny --context-length 16 --emb-dim 16 --n-heads 2 --n-layers 1"
build/release/train/tapegrad train $flags --init-from "$dir/init.safetensors" --out "$dir/run" >/dev/null
/usr/bin/python3 - "$dir" <<'PY'
import csv, json, sys
d = sys.argv[1]
torch_l = json.load(open(f"{d}/torch_losses.json"))["losses"]
ours = [float(r["batch_loss"]) for r in csv.DictReader(open(f"{d}/run/metrics.csv"))]
worst = max(abs(a - b) for a, b in zip(ours, torch_l))
for i, (a, b) in enumerate(zip(ours, torch_l)):
    print(f"step {i:2d}  tapegrad {a:.5f}  pytorch {b:.5f}  diff {abs(a - b):.1e}")
print(f"max |difference| over {len(ours)} steps: {worst:.2e} ({'within' if worst <= 1e-3 else 'OUTSIDE'} 1e-3)")
sys.exit(0 if worst <= 1e-3 and len(ours) == len(torch_l) else 1)
PY
rm -rf "$dir"
