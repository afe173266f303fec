#!/usr/bin/env bash
# install_downstream.sh BUILD_DIR SOURCE_DIR CXX [LAUNCHER]
# Installs tapegrad from BUILD_DIR to a temporary prefix and checks that it is a
# well-behaved library: the tree (headers only under tapegrad/), the executable's
# RPATH to the OpenMP OpenBLAS, no source path in the shipped code and data, a
# prefix that still works after being moved (data and gdb printers found next to
# it, TAPEGRAD_DATA override, a clear error without data), pkg-config, and the
# downstream project examples/downstream configured, built and run against it
# with find_package(tapegrad) alone.
set -u
build=$(realpath "$1"); src=$(realpath "$2"); cxx="$3"; launcher="${4:-}"
tmp=$(mktemp -d /tmp/tapegrad-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check "what" command...
    local what="$1"; shift
    if "$@" >"$tmp/out" 2>&1; then echo "ok: $what"; else echo "FAILED: $what"; cat "$tmp/out"; fail=1; fi
}

P="$tmp/prefix"
cmake --install "$build" --prefix "$P" >"$tmp/install.log" || { cat "$tmp/install.log"; exit 1; }
echo "== installed tree"; (cd "$P" && find . -type f -o -type l | sort | grep -v '^./share/doc' | sed 's/^/  /' | head -80)

check "public headers under include/tapegrad" test -f "$P/include/tapegrad/tapegrad.h" -a -f "$P/include/tapegrad/nn/attention.h" -a -f "$P/include/tapegrad/version.h"
check "nothing generic in include/" bash -c "[ \$(ls '$P/include') = tapegrad ]"
check "installed headers include each other as <tapegrad/...>" bash -c "! grep -rnE '#include \"(core|nn|optim|models|train)/' '$P/include'"
check "CMake package and pkg-config file" test -f "$P/lib/cmake/tapegrad/tapegradConfig.cmake" -a -f "$P/lib/pkgconfig/tapegrad.pc"
check "data under share/tapegrad" test -f "$P/share/tapegrad/encoder.json" -a -f "$P/share/tapegrad/vocab.bpe" -a -f "$P/share/tapegrad/the-verdict.txt" -a -f "$P/share/tapegrad/gdb/tapegrad_printers.py"
check "LICENSE and CHANGELOG installed" test -f "$P/share/doc/tapegrad/LICENSE" -a -f "$P/share/doc/tapegrad/CHANGELOG.md"
check "the executable's RUNPATH keeps the OpenMP OpenBLAS" bash -c "readelf -d '$P/bin/tapegrad' | grep -E 'R(UN)?PATH' | grep -q openblas-openmp"
check "the loader picks the OpenMP OpenBLAS" bash -c "ldd '$P/bin/tapegrad' | grep libopenblas | grep -q openblas-openmp"
objcopy --strip-debug "$P/bin/tapegrad" "$tmp/stripped"
check "no source or build path in the executable (outside debug info)" bash -c "! grep -qaF '$src' '$tmp/stripped' && ! grep -qaF '$build' '$tmp/stripped'"
check "no source path in the installed libraries' code (outside debug info)" bash -c "for a in '$P'/lib/*.a; do objcopy --strip-debug \"\$a\" '$tmp/a.a' && ! grep -qaF '$src/' '$tmp/a.a' || exit 1; done"
check "the installed CMake files name no source or build path" bash -c "! grep -rqF -e '$src' -e '$build' '$P/lib/cmake' '$P/lib/pkgconfig'"

# Move the prefix and run from elsewhere: everything is found next to it.
mv "$P" "$tmp/moved"; P="$tmp/moved"; mkdir -p "$tmp/elsewhere"; cd "$tmp/elsewhere"
want=$(printf 'Hello, world' | "$build/train/tapegrad" tokenize)
check "moved prefix: tokenize finds the vocab next to the executable" bash -c "[ \"\$(printf 'Hello, world' | '$P/bin/tapegrad' tokenize)\" = '$want' ] && [ -n '$want' ]"
check "TAPEGRAD_DATA overrides" bash -c "cp -r '$P/share/tapegrad' '$tmp/data' && mv '$P/share/tapegrad' '$P/share/hidden' && [ \"\$(printf 'Hello, world' | TAPEGRAD_DATA='$tmp/data' '$P/bin/tapegrad' tokenize)\" = '$want' ]"
check "missing data: a clear error naming TAPEGRAD_DATA" bash -c "! printf x | '$P/bin/tapegrad' tokenize 2>'$tmp/err' && grep -q 'TAPEGRAD_DATA' '$tmp/err' && grep -q 'share/tapegrad' '$tmp/err'"
mv "$P/share/hidden" "$P/share/tapegrad"
if command -v gdb >/dev/null; then
    check "gdb loads the printers from the moved prefix" bash -c "gdb -batch -nx -iex 'add-auto-load-safe-path $P/bin' -ex 'info pretty-printer' '$P/bin/tapegrad' 2>&1 | grep -q 'tapegrad'"
fi

# pkg-config: a plain compiler line.
cat > "$tmp/pc.cpp" <<'CPP'
#include <tapegrad/tapegrad.h>
#include <cstdio>
int main() {
    tg::Tensor x = tg::Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
    tg::sum(tg::mul(x, x)).backward();
    std::vector<float> g = x.grad().to_vector();
    std::printf("tapegrad %s: d/dx sum(x^2) = %g %g %g\n", TAPEGRAD_VERSION_STRING, g[0], g[1], g[2]);
    return g == std::vector<float>{2, 4, 6} ? 0 : 1;
}
CPP
check "pkg-config --cflags --libs tapegrad builds and runs a program" bash -c "$cxx \$(PKG_CONFIG_PATH='$P/lib/pkgconfig' pkg-config --cflags tapegrad) '$tmp/pc.cpp' -o '$tmp/pc' \$(PKG_CONFIG_PATH='$P/lib/pkgconfig' pkg-config --libs tapegrad) && '$tmp/pc'"
cat "$tmp/out"

# The downstream project: find_package(tapegrad) only.
extra=()
[ -n "$launcher" ] && extra+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$launcher")
check "downstream configures against the installed package" cmake -S "$src/examples/downstream" -B "$tmp/ds" \
    -DCMAKE_PREFIX_PATH="$P" -DCMAKE_CXX_COMPILER="$cxx" "${extra[@]}"
check "downstream builds" cmake --build "$tmp/ds" -j 2
export TAPEGRAD_DATA="$P/share/tapegrad"
check "downstream selftest: new op, new layer, the variant trained with the probe" "$tmp/ds/tapegrad_downstream" selftest "$tmp/run"
cat "$tmp/out"
check "downstream CLI: train --attention tied with the probe" "$tmp/ds/tapegrad_downstream" train --preset tiny \
    --attention tied --epochs 1 --max-steps 2 --probe-every 1 --out "$tmp/cli" --quiet
check "downstream CLI run wrote metrics and dynamics" bash -c "[ \$(wc -l < '$tmp/cli/dynamics.csv') -eq 17 ] && [ -s '$tmp/cli/metrics.csv' ]"
check "downstream CLI: an unknown variant is refused, listing the registered ones" bash -c "! '$tmp/ds/tapegrad_downstream' train --preset tiny --attention nosuch --max-steps 1 --quiet >'$tmp/e' 2>&1 && grep -q \"unknown attention 'nosuch'\" '$tmp/e' && grep -q tied '$tmp/e'"
exit $fail
