#!/usr/bin/env bash
# The NEON kernels (arm64) on any Linux machine: cross-compiles test_types and test_simd for arm64
# (aarch64-linux-gnu-gcc, C11, -Wall -Wextra -Werror) and runs them under qemu-user on two emulated CPUs:
# one with the dot-product extension (-cpu max: the neon-dotprod kernels) and one without (-cpu
# cortex-a53: the ARMv8.0 neon kernels, the fallback path), also built with clang when clang is there;
# then, when libjansson is installed for arm64, g4 itself against the oracle pack's logits under qemu.
# Prints "N passed, N failed" last. Without the cross compiler or qemu it
# says so and prints "0 passed, 0 failed" (Debian: apt-get install gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross qemu-user).
#   BUILD        the arm64 build goes to $BUILD-neon (default build-neon)
#   G4_ORACLE    oracle pack for test_types' dequantization vectors (default ../shared/oracle)
set -u
cd "$(dirname "$0")/.."
OUT=${BUILD:-build}-neon
XCC=${NEON_CC:-aarch64-linux-gnu-gcc}
SYSROOT=${NEON_SYSROOT:-/usr/aarch64-linux-gnu}
QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)

if ! command -v "$XCC" >/dev/null || [ -z "$QEMU" ] || [ ! -d "$SYSROOT/lib" ]; then
    echo "NEON tests skipped: they need $XCC, qemu-aarch64 and $SYSROOT" \
        "(apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
    echo "0 passed, 0 failed"
    exit 0
fi

TALLY_WIDTH=42
. tests/lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

# 1. build. With libjansson for arm64 (Debian multiarch: dpkg --add-architecture arm64 && apt-get update &&
# apt-get install libjansson-dev:arm64) the whole g4 too, for the oracle logits under qemu; without it the
# library minus its two users of jansson (chat templates, tokenizer.json import), enough for the unit tests.
lib_nojansson=$(grep -L -E 'jansson|chat/|stream\.h|grammar|store/|serve/' src/*/*.c | tr '\n' ' ')
if [ -e /usr/lib/aarch64-linux-gnu/libjansson.so ] && [ -e /usr/lib/aarch64-linux-gnu/libedit.so ] &&
    [ -e /usr/lib/aarch64-linux-gnu/libmicrohttpd.so ]; then
    targets="$OUT/g4 $OUT/tests/test_types $OUT/tests/test_simd"
    build_vars=()
else
    OUT=$OUT-nojansson
    targets="$OUT/tests/test_types $OUT/tests/test_simd"
    build_vars=(LIB_SRC="$lib_nojansson" LDLIBS="-lm -lpthread")
    echo "note: no libjansson/libedit/libmicrohttpd for arm64: g4 itself is not built and the oracle logits are not checked under qemu"
fi
build() { # name out-file make-arguments...
    local name=$1 out=$2
    shift 2
    if nice -n 19 make -s -j2 "$@" >"$out" 2>&1; then
        echo "1 passed, 0 failed" >>"$out"
        tally "$name" "$out" 0
    else
        echo "0 passed, 1 failed" >>"$out"
        tally "$name" "$out" 1
        return 1
    fi
}
# shellcheck disable=SC2086
build "build ($XCC)" "$tmp/build.out" BUILD="$OUT" CC="$XCC" "${build_vars[@]}" $targets || {
    echo "$pass passed, $fail failed"
    exit 1
}
# the same tests built with clang (warnings are errors there too; clang < 16 takes the inline-assembly SDOT)
clang_ok=0
if command -v clang >/dev/null; then
    build "build (clang --target=aarch64)" "$tmp/clang.out" BUILD="$OUT-clang" CC="clang --target=aarch64-linux-gnu" \
        LIB_SRC="$lib_nojansson" LDLIBS="-lm -lpthread" "$OUT-clang/tests/test_simd" && clang_ok=1
fi

# 2. unit tests under qemu: a CPU with SDOT, the same forced to the ARMv8.0 kernels, a CPU without SDOT
run() { # name cpu G4_ISA binary
    local name=$1 cpu=$2 isa=$3 bin=$4
    G4_ISA=$isa timeout 600 nice -n 19 "$QEMU" -cpu "$cpu" -L "$SYSROOT" "$bin" >"$tmp/$name.out" 2>&1
    tally "$name" "$tmp/$name.out" $?
}
run "test_simd (-cpu max)" max "" "$OUT/tests/test_simd"
run "test_simd (-cpu max, G4_ISA=neon)" max neon "$OUT/tests/test_simd"
run "test_simd (-cpu cortex-a53)" cortex-a53 "" "$OUT/tests/test_simd"
run "test_types (-cpu max)" max "" "$OUT/tests/test_types"
run "test_types (-cpu cortex-a53)" cortex-a53 "" "$OUT/tests/test_types"
if [ "$clang_ok" = 1 ]; then
    run "test_simd clang (-cpu max)" max "" "$OUT-clang/tests/test_simd"
    run "test_simd clang (-cpu cortex-a53)" cortex-a53 "" "$OUT-clang/tests/test_simd"
fi

# 3. g4 itself under qemu against the oracle pack: the default mode on every file, on a CPU with SDOT
# (neon-dotprod kernels; the neon ones give the same results bit for bit, see test_simd), and the exact
# mode (the float kernels: dot_f32, F16 to_float) on the E2B files of every weight type, to keep qemu's
# time short. One thread: qemu-aarch64 7.2 (Debian 12) spins forever in the guest's pthread_create on
# the machines this was written on.
ORACLE=${G4_ORACLE:-../shared/oracle}
if [ -x "$OUT/g4" ] && [ -f "$ORACLE/check_logits.py" ]; then
    for cpu in max cortex-a53; do
        printf '#!/bin/sh\nexec %s -cpu %s -L %s %s "$@"\n' "$QEMU" "$cpu" "$SYSROOT" "$PWD/$OUT/g4" >"$tmp/g4-$cpu"
        chmod +x "$tmp/g4-$cpu"
    done
    oracle() { # name cpu check_logits-arguments...
        local name=$1 cpu=$2 line ok total rc
        shift 2
        nice -n 19 python3 "$ORACLE/check_logits.py" "$tmp/g4-$cpu" "$ORACLE" --timeout 300 --arg --threads --arg 1 "$@" \
            >"$tmp/$name.out" 2>&1
        rc=$?
        line=$(grep -E '^logits: [0-9]+/[0-9]+' "$tmp/$name.out" | tail -n 1)
        ok=$(echo "$line" | sed -E 's#^logits: ([0-9]+)/([0-9]+).*#\1#')
        total=$(echo "$line" | sed -E 's#^logits: ([0-9]+)/([0-9]+).*#\2#')
        [ -n "$ok" ] || { ok=0; total=1; }
        echo "$ok passed, $((total - ok)) failed" >>"$tmp/$name.out"
        tally "$name" "$tmp/$name.out" $rc
    }
    oracle "oracle-logits (-cpu max)" max
    oracle "oracle-logits-exact e2b (-cpu cortex-a53)" cortex-a53 --strict --arg --exact --only e2b-
fi

echo "tests/neon.sh took $(($(date +%s) - start)) s (builds included)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
