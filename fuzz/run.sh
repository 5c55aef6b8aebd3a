#!/bin/sh
# fuzz/run.sh BUILD_DIR SECONDS
#
# Runs every libFuzzer target of BUILD_DIR/fuzz for SECONDS seconds each,
# starting from a copy of its seed corpus (fuzz/corpus/<target>, never
# modified), and prints one summary line per target.  Exit status 0 if no
# target found anything (crash, leak, timeout, out-of-memory), 1 otherwise
# (the failing target's log and reproducer are kept and their path printed),
# 2 for bad usage or a missing target.
#
# Build dir: cmake -S . -B BUILD_DIR -DCMAKE_C_COMPILER=clang -DVEIL_FUZZ=ON \
#              -DVEIL_SANITIZE=ON -DVEIL_BUILD_TESTS=OFF -DVEIL_BUILD_BENCH=OFF
# Reproduce a finding: BUILD_DIR/fuzz/<target> <artifact file>
set -u

TARGETS="fuzz_header fuzz_handshake_msgs fuzz_keylog fuzz_server fuzz_client fuzz_observer fuzz_capture"

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
case $secs in
'' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/veil-fuzz.XXXXXX") || exit 2

status=0
for t in $TARGETS; do
    bin=$build/fuzz/$t
    if [ ! -x "$bin" ]; then
        printf '%-20s MISSING  %s (build with -DVEIL_FUZZ=ON)\n' "$t" "$bin"
        status=2
        continue
    fi
    dir=$work/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ -d "$here/corpus/$t" ]; then
        cp "$here/corpus/$t"/* "$dir/corpus/" 2>/dev/null
    fi
    seeds=$(ls "$dir/corpus" | wc -l)
    # Leak checking is on (ASan default); -timeout flags a single slow input.
    "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1 | sed 's/cov: //')
    ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -n 1 | sed 's/ft: //')
    after=$(ls "$dir/corpus" | wc -l)
    found=$(ls "$dir/artifacts")
    if [ $rc -eq 0 ] && [ -z "$found" ]; then
        verdict=ok
    else
        verdict=FAILED
        [ $status -eq 0 ] && status=1
    fi
    printf '%-20s %-6s runs=%s cov=%s ft=%s corpus=%s->%s' "$t" "$verdict" "${runs:-?}" "${cov:-?}" \
        "${ft:-?}" "$seeds" "$after"
    if [ "$verdict" = FAILED ]; then
        printf ' exit=%s log=%s/log' "$rc" "$dir"
        for a in $found; do printf ' artifact=%s/artifacts/%s' "$dir" "$a"; done
    fi
    printf '\n'
done

if [ $status -eq 0 ]; then
    rm -rf "$work"
else
    echo "run.sh: findings kept in $work" >&2
fi
exit $status
