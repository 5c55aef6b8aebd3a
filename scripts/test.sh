#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: ctest in a
# normal build, again in an AddressSanitizer + UndefinedBehaviorSanitizer
# build, a warning check with clang, and each libFuzzer target for a bounded time.
# Usage: bash scripts/test.sh        (FUZZ_SECONDS=N to change the fuzz time per target)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

bash scripts/setup.sh

step() { printf '\n==== %s ====\n' "$*"; }

step "build (gcc, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

step "tests"
(cd build && ctest --output-on-failure -j"$JOBS" --timeout 300)

step "build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVEIL_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"

step "tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j"$JOBS" --timeout 600)

step "build (clang, -Werror)"
cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DVEIL_BUILD_TESTS=OFF >/dev/null
cmake --build build-clang -j"$JOBS"

if [ -f fuzz/CMakeLists.txt ] && [ -f fuzz/run.sh ]; then
  step "fuzz (${FUZZ_SECONDS}s per target)"
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DVEIL_FUZZ=ON \
        -DVEIL_SANITIZE=ON -DVEIL_BUILD_TESTS=OFF -DVEIL_BUILD_BENCH=OFF -DVEIL_BUILD_DISSECTOR=OFF >/dev/null
  cmake --build build-fuzz -j"$JOBS"
  bash fuzz/run.sh build-fuzz "$FUZZ_SECONDS"
fi

step "all tests passed"
