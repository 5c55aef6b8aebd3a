#!/usr/bin/env bash
# Refusals and their exit statuses: plaintext not allowed (4), connection
# refused (2), server at its connection cap (4, server_busy).
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
start_server srv --max-conns 1

# Plaintext asked, server without --allow-plain.
client plain --plain --fingerprint "$FP" -m "should not arrive" 127.0.0.1 "$PORT"
expect_rc 4 "plaintext against an encrypted-only server"
[ "$(wc -l <"$T/plain.err")" -eq 1 ] || fail "expected exactly one error line, got: $(cat "$T/plain.err")"
grep -q 'plaintext_refused' "$T/plain.err" || fail "client error does not name plaintext_refused"
wait_for "$T/srv.log" 'plaintext_refused' 5 || fail "server did not log plaintext_refused"
[ ! -s "$T/srv.out" ] || fail "server showed a message"
pass "plaintext refused: exit 4, plaintext_refused named by client and server"

# Connection cap: one client holds the only slot (it waits on a fifo for
# its messages); the next one gets server_busy.
mkfifo "$T/hold.fifo"
"$VCLIENT" --fingerprint "$FP" 127.0.0.1 "$PORT" <"$T/hold.fifo" >"$T/hold.out" 2>"$T/hold.err" &
HOLD=$!
PIDS+=("$HOLD")
exec 7<>"$T/hold.fifo" # read-write: never blocks
wait_for "$T/srv.log" '#2 .*handshake done' 5 || fail "holding client did not connect"
client busy --fingerprint "$FP" -m "no room" 127.0.0.1 "$PORT"
expect_rc 4 "client over --max-conns"
grep -q 'server_busy' "$T/busy.err" || fail "busy client error does not name server_busy"
wait_for "$T/srv.log" 'server busy' 5 || fail "server did not log the refusal"
# The holder is still served: give it one message, then EOF.
echo "still here" >&7
exec 7>&-
wait_exit "$HOLD" 10 || fail "holding client did not finish"
[ "$WAIT_STATUS" -eq 0 ] || fail "holding client exit status $WAIT_STATUS: $(cat "$T/hold.err")"
acked "$T/hold.out" "still here"
server_shows "$T/srv.out" "still here"
pass "over the cap: exit 4 with server_busy; the connected client is unaffected"

# Connection refused: the port of a server that has just stopped.
stop_server "$SERVER_PID"
client refused --fingerprint "$FP" -m x 127.0.0.1 "$PORT"
expect_rc 2 "connection refused"
grep -qi 'refused' "$T/refused.err" || fail "error does not say refused: $(cat "$T/refused.err")"
[ "$(wc -l <"$T/refused.err")" -eq 1 ] || fail "expected one error line"
pass "connection refused: exit 2"
