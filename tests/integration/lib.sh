# tests/integration/lib.sh - shared by the integration tests; sourced, not run.
#
# Every test is invoked by ctest as
#     bash test_NAME.sh VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN
# with the paths of the built programs.  It works in its own temporary
# directory (HOME points there too, so nothing touches the real
# ~/.config/veil), starts servers on port 0 (the kernel picks a free port,
# read back from the "listening on" log line), bounds every wait, and kills
# whatever it started on exit.  Set VEIL_TEST_KEEP=1 to keep the directory.

set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN" >&2
    exit 2
fi
VSERVER=$1
VCLIENT=$2
VKEYGEN=$3
for p in "$VSERVER" "$VCLIENT" "$VKEYGEN"; do
    [ -x "$p" ] || { echo "not executable: $p" >&2; exit 2; }
done

TEST_TMP_PREFIX=veil-it
# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# make_key NAME: writes $T/NAME.key, prints its fingerprint.
make_key() {
    "$VKEYGEN" -q -o "$T/$1.key"
}

# start_server NAME [server options...]: starts veil-server on a free port
# with its key $T/NAME.key (created if missing), stdout in $T/NAME.out and the
# log in $T/NAME.log; sets PORT and SERVER_PID.
start_server() {
    local name=$1
    shift
    [ -f "$T/$name.key" ] || make_key "$name" >/dev/null
    "$VSERVER" --key "$T/$name.key" "$@" 0 >"$T/$name.out" 2>"$T/$name.log" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    if ! wait_for "$T/$name.log" 'listening on ' 10; then
        fail "server $name did not start"
    fi
    PORT=$(grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$T/$name.log" | sed -E 's/.*:([0-9]+)$/\1/')
    [ -n "$PORT" ] || fail "no port in the log of server $name"
}

# stop_server PID [SECONDS]: SIGTERM, then the exit status in WAIT_STATUS.
stop_server() {
    kill -TERM "$1"
    wait_exit "$1" "${2:-5}" || fail "server $1 did not exit within ${2:-5} s of SIGTERM"
}

# client OUTNAME [client options and arguments...]: runs veil-client (bounded
# by timeout(1)) with stdin from /dev/null; stdout in $T/OUTNAME.out, stderr
# in $T/OUTNAME.err, exit status in RC.
client() {
    local name=$1
    shift
    RC=0
    timeout 30 "$VCLIENT" "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err" || RC=$?
}

# expect_rc WANT WHAT: checks RC.
expect_rc() {
    [ "$RC" -eq "$1" ] || fail "$2: exit status $RC, expected $1"
}

# server_shows FILE TEXT: the server printed "[<UTC time>] <peer>: TEXT".
server_shows() {
    local file=$1 text=$2
    grep -qE '^\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\] [^ ]+: ' "$file" ||
        fail "no message line in $file"
    sed -E 's/^\[[^]]*\] [^ ]+: //' "$file" | grep -qxF -- "$text" ||
        fail "server output $file lacks the message '$text'"
}

# acked FILE TEXT: the client printed the ACK for TEXT.
acked() {
    local n
    n=$(printf '%s' "$2" | wc -c)
    grep -qxF "ack: received $n bytes" "$1" || fail "client output $1 lacks 'ack: received $n bytes'"
}
