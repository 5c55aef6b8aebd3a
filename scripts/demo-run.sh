#!/usr/bin/env bash
# scripts/demo-run.sh BUILD_DIR
#
# The Veil demo, on loopback only: generates a server identity in a fresh
# temporary directory, starts veil-server with --allow-plain and a keylog
# file on a free port, sends one message in plaintext mode and one in
# encrypted mode (pinning the server by fingerprint), and shows for each
# what the client saw and what the server printed and logged.  Then stops
# the server with SIGTERM and says where its files are.
#
# Every wait is bounded.  Exit status 0 if everything worked, 1 otherwise
# (2 for bad usage).
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    echo "usage: $0 BUILD_DIR   (the CMake build directory holding apps/veil-server etc.)" >&2
    exit 2
fi
BUILD=$1
find_prog() {
    local p
    for p in "$BUILD/apps/$1" "$BUILD/$1"; do
        if [ -x "$p" ]; then
            echo "$p"
            return 0
        fi
    done
    echo "demo: $1 not found in $BUILD (build it first: cmake --build $BUILD)" >&2
    exit 2
}
SERVER=$(find_prog veil-server)
CLIENT=$(find_prog veil-client)
KEYGEN=$(find_prog veil-keygen)

DIR=$(mktemp -d "${TMPDIR:-/tmp}/veil-demo.XXXXXX")
KEY="$DIR/server.key"
KEYLOG="$DIR/keylog.txt"
SLOG="$DIR/server.log"
SOUT="$DIR/server.out"
SERVER_PID=
FAILED=0

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

banner() { printf '\n==== %s ====\n' "$*"; }
indent() { sed 's/^/    /'; }
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
# new_lines FILE N: the lines of FILE after the first N.
new_lines() { tail -n "+$(($2 + 1))" "$1" | indent; }

banner "Server identity"
"$KEYGEN" -o "$KEY" | indent
FP=$("$KEYGEN" --show "$KEY")

banner "Starting veil-server (plaintext allowed, keylog on)"
# (VEIL_KEYLOGFILE=FILE in the environment would do the same as --keylog.)
"$SERVER" --key "$KEY" --allow-plain --keylog "$KEYLOG" --bind 127.0.0.1 0 >"$SOUT" 2>"$SLOG" &
SERVER_PID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$SLOG" 2>/dev/null | sed -E 's/.*:([0-9]+)$/\1/' || true)
    [ -n "$PORT" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "demo: the server did not start:" >&2
    indent <"$SLOG" >&2
    exit 1
fi
indent <"$SLOG"

# exchange LABEL MESSAGE CLIENT-OPTIONS...: one session, shown from both ends.
exchange() {
    local label=$1 msg=$2
    shift 2
    local out_before log_before rc=0
    out_before=$(lines "$SOUT")
    log_before=$(lines "$SLOG")
    banner "$label"
    echo "\$ veil-client -v $* -m \"$msg\" 127.0.0.1 $PORT"
    timeout 30 "$CLIENT" -v "$@" -m "$msg" 127.0.0.1 "$PORT" </dev/null \
        >"$DIR/client-$label.out" 2>"$DIR/client-$label.err" || rc=$?
    sleep 0.2 # the server logs the close right after the client's exit
    echo "-- the client saw (stdout, then stderr):"
    indent <"$DIR/client-$label.out"
    indent <"$DIR/client-$label.err"
    echo "-- client exit status: $rc"
    echo "-- the server printed:"
    new_lines "$SOUT" "$out_before"
    echo "-- the server logged:"
    new_lines "$SLOG" "$log_before"
    if [ "$rc" -ne 0 ] || ! grep -qF -- "$msg" "$SOUT"; then
        echo "demo: the $label exchange FAILED" >&2
        FAILED=1
    fi
}

exchange plaintext "hello in the clear: anyone on the path can read this" \
    --plain --fingerprint "$FP"
kl_before=$(lines "$KEYLOG")
exchange encrypted "hello under encryption: only the endpoints can read this" \
    --fingerprint "$FP"
kl_after=$(lines "$KEYLOG")
echo "-- keylog: $((kl_after - kl_before)) new lines in $KEYLOG (secrets elided here):"
tail -n "+$((kl_before + 1))" "$KEYLOG" | awk '{ print "    " $1 " " substr($2, 1, 16) "... <secret>" }'
if [ "$((kl_after - kl_before))" -ne 2 ]; then
    echo "demo: expected 2 keylog lines for the encrypted session" >&2
    FAILED=1
fi

banner "Stopping the server (SIGTERM)"
log_before=$(lines "$SLOG")
kill -TERM "$SERVER_PID"
rc=
for _ in $(seq 1 50); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        rc=0
        wait "$SERVER_PID" || rc=$?
        break
    fi
    sleep 0.1
done
if [ -z "$rc" ]; then
    echo "demo: the server did not stop within 5 s" >&2
    FAILED=1
else
    SERVER_PID=
    new_lines "$SLOG" "$log_before"
    echo "-- server exit status: $rc"
    [ "$rc" -eq 0 ] || FAILED=1
fi

banner "Files (left in place)"
echo "    server key:     $KEY (public key $KEY.pub, fingerprint $FP)"
echo "    keylog:         $KEYLOG"
echo "    server log:     $SLOG"
echo "    server output:  $SOUT"
echo "    client outputs: $DIR/client-*.out, $DIR/client-*.err"
echo "    remove with:    rm -r $DIR"
if [ "$FAILED" -ne 0 ]; then
    echo "demo: FAILED" >&2
    exit 1
fi
echo
echo "demo: OK"
