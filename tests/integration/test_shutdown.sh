#!/usr/bin/env bash
# SIGTERM: close_notify to every connected client, bounded flush, exit 0.
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
start_server srv

# An established session waiting for its messages (on a fifo) ...
mkfifo "$T/c.fifo"
"$VCLIENT" --fingerprint "$FP" 127.0.0.1 "$PORT" <"$T/c.fifo" >"$T/c.out" 2>"$T/c.err" &
CL=$!
PIDS+=("$CL")
exec 7<>"$T/c.fifo" # read-write: never blocks
echo "before shutdown" >&7
wait_for "$T/c.out" 'ack: ' 5 || fail "client not served before the shutdown"
# ... and a connection still in its handshake.
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
wait_for "$T/srv.log" '#2 .*connected' 5 || fail "raw connection not accepted"

t0=$(date +%s%N)
stop_server "$SERVER_PID" 6
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$WAIT_STATUS" -eq 0 ] || fail "server exit status $WAIT_STATUS after SIGTERM"
[ "$ms" -lt 4000 ] || fail "shutdown took $ms ms"
grep -q 'shutdown: SIGTERM received; closing 2 connections' "$T/srv.log" || fail "shutdown not logged"
grep -q '#1 .*sent close_notify' "$T/srv.log" || fail "no close_notify to the established session"
grep -q '#2 .*handshake aborted' "$T/srv.log" || fail "handshaking connection not aborted"
grep -q 'shutdown complete' "$T/srv.log" || fail "no 'shutdown complete'"
timeout 5 cat <&4 >/dev/null || fail "raw connection not closed"
exec 4<&-

# The client sees the server's close_notify when it next talks to it.
exec 7>&-
wait_exit "$CL" 10 || fail "client did not exit"
[ "$WAIT_STATUS" -eq 0 ] || fail "client exit status $WAIT_STATUS: $(cat "$T/c.err")"
pass "SIGTERM: close_notify sent, exit 0 in $ms ms"

# SIGINT too, with no clients.
start_server srv2
kill -INT "$SERVER_PID"
wait_exit "$SERVER_PID" 5 || fail "no exit on SIGINT"
[ "$WAIT_STATUS" -eq 0 ] || fail "exit status $WAIT_STATUS after SIGINT"
grep -q 'SIGINT received' "$T/srv2.log" || fail "SIGINT not logged"
pass "SIGINT: exit 0"
