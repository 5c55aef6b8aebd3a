# tests/capture/lib.sh - shared by the capture tests; sourced, not run.
#
# ctest passes the programs and folders in the environment (see
# CMakeLists.txt): VEIL_CAPTURE, VEIL_SERVER, VEIL_CLIENT, VEIL_KEYGEN,
# VEIL_CAPTURES (the corpus), VEIL_BUILD, VEIL_HOOKS_BUILD.  Each test works in
# its own temporary directory (HOME too), bounds every wait, and kills what it
# started on exit.  VEIL_TEST_KEEP=1 keeps the directory.
set -euo pipefail

for v in VEIL_CAPTURE VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN VEIL_CAPTURES; do
    [ -n "${!v:-}" ] || { echo "$v is not set (run through ctest)" >&2; exit 2; }
done
VC=$VEIL_CAPTURE
CAPS=$VEIL_CAPTURES
export TZ=UTC LC_ALL=C
unset VEIL_KEYLOGFILE VEIL_TEST_SEED VEIL_TEST_CLOCK

TEST_TMP_PREFIX=veil-capture-test
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# port_of FILE: the port in its first "listening on ADDR:PORT".
port_of() {
    grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$1" | sed -E 's/.*:([0-9]+)$/\1/'
}

# start_server NAME KEYFILE [options...]: veil-server on a free port; sets
# PORT and SERVER_PID; stdout $T/NAME.out, log $T/NAME.log.
start_server() {
    local name=$1 key=$2
    shift 2
    "$VEIL_SERVER" --key "$key" "$@" 0 >"$T/$name.out" 2>"$T/$name.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_for "$T/$name.log" 'listening on ' 10 || fail "server $name did not start"
    PORT=$(port_of "$T/$name.log")
}

# corpus_key: a private copy of the corpus server key (mode 0600), its path in KEY.
corpus_key() {
    KEY=$T/server.key
    cp "$CAPS/server.key" "$KEY"
    chmod 600 "$KEY"
}

# run NAME CMD...: runs CMD (bounded) with stdout $T/NAME.txt, stderr $T/NAME.err, status RC.
run() {
    local name=$1
    shift
    RC=0
    timeout 60 "$@" </dev/null >"$T/$name.txt" 2>"$T/$name.err" || RC=$?
}

expect_rc() {
    [ "$RC" -eq "$1" ] || fail "$2: exit status $RC, expected $1 (stderr: $(head -c 400 "$T/$3.err" 2>/dev/null))"
}
