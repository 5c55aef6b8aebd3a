#!/usr/bin/env bash
# Failures that must cost one log line and nothing else: a dead peer
# (connection refused), a peer that accepts but never answers (stopped with
# SIGSTOP: handshake timeout), a client that connects and says nothing, junk
# on the listening port, malformed and oversized typed lines.  After each one
# the peer still sends and receives; exit status 5 tells that some message
# was not delivered; SIGTERM exits cleanly.
. "$(dirname "$0")/lib.sh"

S='a secret for the robustness test'
launch() {
    write_dir "$T/alice.json" "$(entry alice)" "$(entry bob "\"secret\":\"$S\"")"
    write_dir "$T/bob.json" "$(entry bob)" "$(entry alice "\"secret\":\"$S\"")"
    start_peer alice "$T/alice.json" --timeout 1.5 || return $?
}
with_ports "alice bob" launch

# Dead peer: bob is not running.
say alice "bob: anyone there?"
wait_log alice "to bob \(127\.0\.0\.1:${PORT[bob]}\): message NOT delivered: cannot reach bob at 127\.0\.0\.1:${PORT[bob]}: Connection refused \(is their veil-peer running\?\)"
start_peer bob "$T/bob.json" || fail "bob could not start on port ${PORT[bob]}"
say alice "bob: there you are"
shown bob alice "there you are"
pass "connection refused reported; the message after bob started is delivered"

# A listener that accepts (the kernel does) but never answers.
kill -STOP "${PID[bob]}"
say alice "bob: hello, frozen bob"
wait_log alice "to bob .*message NOT delivered: timed out after 1\.5 s waiting for the handshake \(sent alert timeout\)" 10
kill -CONT "${PID[bob]}"
pass "unresponsive listener: handshake timeout after --timeout"

# A client that connects and says nothing.
exec {silent}<>"/dev/tcp/127.0.0.1/${PORT[alice]}"
wait_log alice "from 127\.0\.0\.1:[0-9]+: timed out waiting for the handshake \(sent alert timeout\)" 10
exec {silent}>&-
# Junk on the listening port.
exec {junk}<>"/dev/tcp/127.0.0.1/${PORT[alice]}"
printf 'GET / HTTP/1.0\r\n\r\n' >&"$junk"
wait_log alice 'from 127\.0\.0\.1:[0-9]+: handshake failed: .*\(sent alert (decode_error|protocol_version)\)'
exec {junk}>&-
pass "silent and junk incoming connections: one line each"

# Malformed typed lines, each one line, none sent.
say alice "no colon here"
wait_log alice "line NOT sent: no ':' in it; type NAME: message"
say alice ": no name"
wait_log alice 'message NOT sent: "" is not a contact name'
say alice "bob smith: hi"
wait_log alice 'message NOT sent: "bob smith" is not a contact name'
say alice "bob:   "
wait_log alice 'message to bob NOT sent: it is empty'
say alice "alice: talking to myself"
wait_log alice 'message NOT sent: "alice" is you'
pass "malformed lines refused locally"

# Sizes: the longest text is delivered whole, one byte more is refused,
# and a line longer than the input buffer is dropped up to its newline.
MAX=16297
long=$(head -c "$MAX" /dev/zero | tr '\0' x)
say alice "bob: $long"
shown bob alice "$long"
say alice "bob: ${long}y"
wait_log alice "message to bob NOT sent: $((MAX + 1)) bytes, at most $MAX"
say alice "bob: $(head -c 40000 /dev/zero | tr '\0' z)"
wait_log alice 'message NOT sent: line longer than [0-9]+ bytes'
say alice "bob: after the long lines"
shown bob alice "after the long lines"
pass "longest text delivered, longer refused, overlong line skipped"

# Still receiving too.
say bob "alice: all good?"
shown alice bob "all good?"
pass "alice still receives"

end_input alice
expect_exit alice 5
wait_log alice 'exiting: 3 messages delivered, [0-9]+ not delivered'
stop_peer bob
expect_exit bob 0
pass "alice exits 5 (messages not delivered), bob exits 0 on SIGTERM"
