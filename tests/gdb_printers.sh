#!/usr/bin/env bash
# Run examples/debug_head under gdb -batch, stop in backward at the scores of one
# head, print the tape entry and its incoming gradient through tapegrad's
# pretty-printers, and check what they show. The printers load themselves from
# the binary's .debug_gdb_scripts section (core/tape.cpp), which finds them at
# <binary's folder>/../share/tapegrad/gdb; gdb only has to trust the binary.
set -u
bin="$1"
out=$(gdb -batch -nx -iex "add-auto-load-safe-path $(dirname "$(realpath "$bin")")" \
      -ex "break tapegrad_backward_break" -ex run \
      -ex "print entry" -ex "print grad_out" -ex "print entry.output" -ex "print entry.where" \
      --args "$bin" 2>&1)
echo "$out"
fail=0
expect() { if ! grep -qE -- "$1" <<<"$out"; then echo "MISSING: $1"; fail=1; fi; }
expect "TapeEntry\(op=matmul label='trf_blocks\.1\.att\.heads\.1\.scores' output=\[1, 6, 6\] inputs=2 at .*nn/attention\.cpp:[0-9]+"
expect "Tensor\(\[1, 6, 6\] \{-?[0-9]"
expect "Tensor\('trf_blocks\.1\.att\.heads\.1\.scores' \[1, 6, 6\] requires_grad \{"
expect "grad=Tensor\(\[1, 6, 6\]"
expect "nn/attention\.cpp:[0-9]+ \("
exit $fail
