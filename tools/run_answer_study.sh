#!/usr/bin/env bash
# The answer's study (issue 38, docs/results/answer/README.md): arms A-E, the
# uniform-attention control Z and the weight-decay-0 controls B0, C0 on the
# Brown corpus in its compact vocabulary, one epoch (1,097 steps of 8 x 128)
# each, as ONE resumable sweep: run it again after any stop and it continues
# where it stopped (finished runs are reused only if their recorded
# configuration matches). Two ranks train two runs at a time, one thread each.
#
#   tools/run_answer_study.sh [OUT]       (default runs/answer; needs `make data`)
#
# Environment: TAPEGRAD (the executable, default build/release/train/tapegrad),
# NP (ranks, default 2), NICE (default 10: builds and tests on the same cores
# come first).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/answer}
TAPEGRAD=${TAPEGRAD:-build/release/train/tapegrad}
NP=${NP:-2}
DATA=data/corpus/brown-compact
[ -f "$DATA/manifest.json" ] || { echo "run_answer_study: $DATA is missing: run make data first" >&2; exit 1; }
# The arms (docs/results.md):
#   B  factored, rank C, no out_proj        the reference of the merging contrast
#   A  the book's mha (rank HS, out_proj)   the discussion's starting point
#   C  merged, product init (B's function at step 0)
#   D  merged, alt1's default init          the discussion's variant
#   E  B with W_q, W_k scaled by 3^(1/4)    B at D's initial scale
#   Z  uniform attention (scores 0)         how much attention can matter here
#   B0, C0  B and C without weight decay    the implicit bias without a regulariser
VARIANTS="mha:qk-dim=128:out-proj=off:name=B"
VARIANTS+=",mha:name=A:eval-seeds=4"
VARIANTS+=",alt1:init=product:out-proj=off:name=C"
VARIANTS+=",alt1:out-proj=off:name=D"
VARIANTS+=",mha:qk-dim=128:out-proj=off:init-gain=1.31607:name=E:eval-seeds=4"
VARIANTS+=",mha:scores=zero:out-proj=off:name=Z:lr-from=B:eval-seeds=2"
VARIANTS+=",mha:qk-dim=128:out-proj=off:wd=0:name=B0:lr-from=B:eval-seeds=2"
VARIANTS+=",alt1:init=product:out-proj=off:wd=0:name=C0:lr-from=C:eval-seeds=2"
exec nice -n "${NICE:-10}" mpirun --allow-run-as-root --oversubscribe -np "$NP" "$TAPEGRAD" sweep \
    --preset small --data "$DATA" --batch-size 8 --epochs 1 --drop-rate 0 \
    --eval-freq 100 --eval-iter 10 --probe-every 100 --final-eval full --threads 1 \
    --lrs 0.001,0.002,0.004 --extend-lrs --seeds 101,102 --eval-seeds 1,2,3,4,5,6,7,8 \
    --variants "$VARIANTS" --contrasts C-B,D-C,D-A --sesoi 0.02 --out "$OUT"
