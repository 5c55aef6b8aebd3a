# tests/lib/common.sh - the harness under every shell test; sourced, not run.
#
# Gives each test its own temporary directory $T (HOME points there too, so
# nothing touches the real ~/.config/veil), kills on exit whatever the test
# started (pids in PIDS: SIGTERM, then SIGKILL after 2 s), prints the tail of
# the test's logs when it fails, and removes $T unless it failed or
# VEIL_TEST_KEEP=1.  Exit status 77 means skipped.
#
# The sourcing harness may set, before sourcing:
#   TEST_TMP_PREFIX   name prefix of $T (default veil-test)
#   WAIT_DEFAULT      default seconds of wait_for (default 5)
# and define:
#   test_stop_hook    called first at exit (e.g. to stop processes it tracks itself)
#   test_check_hook   called at exit with the status; returns non-zero to fail
#                     a test that passed (e.g. a sanitizer report in a log)

set -euo pipefail

T=$(mktemp -d "${TMPDIR:-/tmp}/${TEST_TMP_PREFIX:-veil-test}.XXXXXX")
export HOME="$T/home"
mkdir -p "$HOME"
unset VEIL_KEYLOGFILE
TEST_NAME=$(basename "$0" .sh)
PIDS=()

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 2 s; reaps it.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    if declare -F test_stop_hook >/dev/null; then
        test_stop_hook
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [ "$rc" -eq 0 ] && declare -F test_check_hook >/dev/null && ! test_check_hook; then
        rc=1
    fi
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        echo "---- $TEST_NAME failed (status $rc); files in $T:" >&2
        for f in "$T"/*.log "$T"/*.out "$T"/*.err; do
            [ -f "$f" ] || continue
            echo "---- $f" >&2
            tail -n 40 "$f" >&2
        done
    fi
    if [ "${VEIL_TEST_KEEP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; }; then
        echo "(kept $T)" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pass() {
    echo "ok: $*"
}

skip() {
    echo "skip: $*"
    exit 77
}

# wait_for FILE PATTERN [SECONDS]: until grep -E PATTERN FILE matches.
wait_for() {
    local file=$1 pattern=$2 secs=${3:-${WAIT_DEFAULT:-5}}
    for _ in $(seq 1 $((secs * 20))); do
        if [ -f "$file" ] && grep -qE -- "$pattern" "$file"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# wait_exit PID [SECONDS]: until PID has exited; its status in WAIT_STATUS.
wait_exit() {
    local pid=$1 secs=${2:-5}
    for _ in $(seq 1 $((secs * 20))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            WAIT_STATUS=0
            wait "$pid" || WAIT_STATUS=$?
            return 0
        fi
        sleep 0.05
    done
    return 1
}
