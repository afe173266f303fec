#!/usr/bin/env bash
# gdb -batch on the real training executable (`tapegrad train --preset tiny`)
# through tapegrad-gdb: a break aimed at step 3 with a glob label stops on the
# right entry, tg-head's numbers equal that step's rows of dynamics.csv (the
# probe is on at step 3) to 1e-4 relative, and a label that exists nowhere warns
# with the closest ones and never stops.
#   gdb_train.sh mha|alt1-resume|unknown PATH/TO/tapegrad-gdb
set -u
mode="$1"
wrap="$2"
bin="$(dirname "$wrap")/tapegrad"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=(--preset tiny --probe-every 3 --eval-freq 0 --quiet --out "$tmp/run")
fail=0
expect() { if ! grep -qE -- "$1" <<<"$out"; then echo "MISSING: $1"; fail=1; fi; }
hits() { grep -cE "Breakpoint 1, tapegrad_backward_break" <<<"$out"; }

# Compare every "head H: name value ..." line of tg-head with dynamics.csv's row
# (step, layer, head); print the comparisons, fail on any difference > 1e-4 relative.
compare() {  # step layer expected-heads
    echo "$out" >"$tmp/gdb.out"
    /usr/bin/python3 - "$tmp/run/dynamics.csv" "$1" "$2" "$3" "$tmp/gdb.out" <<'EOF'
import csv, re, sys
path, step, layer, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(sys.argv[5]).read()
rows = {r["head"]: r for r in csv.DictReader(open(path)) if r["step"] == step and r["layer"] == layer}
seen, bad = 0, 0
for m in re.finditer(r"^  head (\d+): (.*)$", text, re.M):
    head, pairs = m.group(1), re.findall(r"(\w+_norm) (\S+)", m.group(2))
    if head not in rows:
        print(f"no dynamics.csv row for step {step} layer {layer} head {head}"); bad += 1; continue
    for name, v in pairs:
        ref, got = float(rows[head][name]), float(v)
        rel = abs(got - ref) / abs(ref)
        print(f"step {step} layer {layer} head {head} {name}: gdb {got:.8g} dynamics.csv {ref:.6g} rel {rel:.2e}")
        bad += rel > 1e-4
    seen += 1
if seen != want:
    print(f"tg-head printed {seen} heads, expected {want}"); bad += 1
sys.exit(1 if bad else 0)
EOF
}

case "$mode" in
mha)
    out=$("$wrap" --batch --break 'trf_blocks.1.att.sc*' --step 3 --ex 'print entry' --ex 'tg-head' \
        --ex 'tg-entry' --ex continue -- "${run[@]}" --attention mha --max-steps 5 2>&1)
    echo "$out"
    expect "TapeEntry\(op=matmul label='trf_blocks\.1\.att\.scores' output=\[2, 4, 64, 64\] inputs=2 at .*nn/attention\.cpp:[0-9]+"
    expect "tg-head: step 3, layer 1, mha scores 'trf_blocks\.1\.att\.scores'"
    expect "x = 'trf_blocks\.1\.norm1\.layer_norm' \[2, 64, 64\] \(tape #[0-9]+\), the input of 'trf_blocks\.1\.att\.W_query\.linear'"
    expect "input 0: 'trf_blocks\.1\.att\.transpose' \[2, 4, 64, 16\] <- #[0-9]+ transpose, needs grad"
    expect "exited normally"
    [ "$(hits)" = 1 ] || { echo "expected 1 stop (step 3 only), got $(hits)"; fail=1; }
    compare 3 1 4 || fail=1
    ;;
alt1-resume)
    # Steps 0 and 1, saved; the resumed run's step 3 is metrics.csv's step 3.
    "$bin" train "${run[@]}" --attention alt1 --max-steps 2 --save "$tmp/ckpt.safetensors" || exit 1
    cont=()
    for _ in 1 2 3 4; do cont+=(--ex tg-head --ex continue); done
    out=$("$wrap" --batch --break 'trf_blocks.1.att.heads.*.scores' --step 3 "${cont[@]}" -- "${run[@]}" \
        --attention alt1 --max-steps 5 --resume "$tmp/ckpt.safetensors" 2>&1)
    echo "$out"
    expect "tg-head: step 3, layer 1, alt1 scores 'trf_blocks\.1\.att\.heads\.3\.scores'"
    expect "tg-head: step 3, layer 1, alt1 scores 'trf_blocks\.1\.att\.heads\.0\.scores'"
    expect "x = 'trf_blocks\.1\.norm1\.layer_norm' \[2, 64, 64\] \(tape #[0-9]+\), the input of 'trf_blocks\.1\.att\.heads\.0\.S\.linear'"
    expect "exited normally"
    [ "$(hits)" = 4 ] || { echo "expected 4 stops (the 4 heads of step 3), got $(hits)"; fail=1; }
    grep -qE "^[0-9]+,3," "$tmp/run/metrics.csv" || { echo "metrics.csv has no step 3"; fail=1; }
    compare 3 1 4 || fail=1
    ;;
unknown)
    out=$("$wrap" --batch --break 'trf_blocks.1.att.W_query' -- "${run[@]}" --attention mha --max-steps 2 2>&1)
    echo "$out"
    expect "warning: break label 'trf_blocks\.1\.att\.W_query' matched none of the [0-9]+ labels"
    first=$(grep -A1 "closest are:" <<<"$out" | tail -n 1)
    grep -qE "^ +trf_blocks\.1\.att\.W_query\.linear$" <<<"$first" || { echo "first suggestion: '$first'"; fail=1; }
    expect "exited normally"
    [ "$(hits)" = 0 ] || { echo "expected no stop, got $(hits)"; fail=1; }
    ;;
*)
    echo "unknown mode '$mode'"
    exit 2
    ;;
esac
exit $fail
