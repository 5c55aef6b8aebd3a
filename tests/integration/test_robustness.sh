#!/usr/bin/env bash
# One bad connection never affects the others: while a client sends garbage
# (an HTTP request) and another connects and stays silent, a normal client
# is served.  The silent one is dropped at the handshake timeout, the
# garbage one with an alert; an idle session is closed at the idle timeout.
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
start_server srv --handshake-timeout 1 --idle-timeout 1

# Raw TCP connections through bash's /dev/tcp (no Veil bytes are built here).
exec 4<>"/dev/tcp/127.0.0.1/$PORT"   # silent
exec 5<>"/dev/tcp/127.0.0.1/$PORT"   # garbage
printf 'GET / HTTP/1.0\r\n\r\n' >&5
start=$(date +%s%N)

client good --fingerprint "$FP" -m "served despite the others" 127.0.0.1 "$PORT"
expect_rc 0 "normal client next to a garbage and a silent one"
acked "$T/good.out" "served despite the others"
server_shows "$T/srv.out" "served despite the others"

# The garbage client gets an alert and EOF.
timeout 5 cat <&5 >"$T/garbage.bytes" || fail "garbage connection not closed by the server"
[ -s "$T/garbage.bytes" ] || fail "no alert sent to the garbage client"
wait_for "$T/srv.log" 'handshake failed: .*decode_error' 5 || fail "server did not log the garbage"

# The silent client is dropped after about 1 s.
timeout 5 cat <&4 >"$T/silent.bytes" || fail "silent connection not closed within 5 s"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -ge 800 ] || fail "silent client dropped too early ($elapsed_ms ms)"
[ -s "$T/silent.bytes" ] || fail "no timeout alert sent to the silent client"
wait_for "$T/srv.log" 'handshake timeout' 5 || fail "server did not log the handshake timeout"
exec 4<&- 5<&-
pass "garbage and silent clients dropped (decode_error, handshake timeout) while others are served"

# A client that disconnects abruptly mid-handshake.
exec 6<>"/dev/tcp/127.0.0.1/$PORT"
printf 'VL' >&6
exec 6<&-
wait_for "$T/srv.log" 'disconnected during the handshake' 5 || fail "abrupt disconnect not logged"

# Idle timeout: an established session with nothing to say.
mkfifo "$T/idle.fifo"
"$VCLIENT" --fingerprint "$FP" 127.0.0.1 "$PORT" <"$T/idle.fifo" >"$T/idle.out" 2>"$T/idle.err" &
IDLE=$!
PIDS+=("$IDLE")
exec 7<>"$T/idle.fifo" # read-write: never blocks
wait_for "$T/srv.log" 'idle timeout' 5 || fail "server did not close the idle session"
echo "too late" >&7
exec 7>&-
wait_exit "$IDLE" 10 || fail "idle client did not exit"
[ "$WAIT_STATUS" -eq 5 ] || fail "idle client exit status $WAIT_STATUS, expected 5: $(cat "$T/idle.err")"
grep -q 'alert timeout' "$T/idle.err" || fail "idle client does not name the timeout alert: $(cat "$T/idle.err")"
pass "idle session closed with alert timeout; client exit 5"

client after --fingerprint "$FP" -m "still serving" 127.0.0.1 "$PORT"
expect_rc 0 "server still serving"
pass "server unaffected"
