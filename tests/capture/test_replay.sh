#!/usr/bin/env bash
# capture.replay: veil-capture replay against a live veil-server that has the
# corpus identity key (captures/server.key).
#   - plaintext session: replayed by content (all of it is readable), the
#     server answers exactly as recorded (fresh values, timestamps
#     normalised), and displays the messages again;
#   - encrypted session: sent verbatim, refused in the handshake
#     (decrypt_error) and nothing is displayed by the server;
#   - the plaintext session sent verbatim is refused the same way: the
#     handshake binds each session's fresh randoms, whatever the mode;
#   - the encrypted session with its keylog is replayable by content.
. "$(dirname "$0")/lib.sh"

corpus_key
start_server srv "$KEY" --allow-plain

run plain "$VC" replay "$CAPS/plain-msg.pcap" --to "127.0.0.1:$PORT"
expect_rc 0 "replay of plain-msg" plain
grep -q '^verdict: SAME ANSWERS' "$T/plain.txt" || fail "plain-msg: no SAME ANSWERS verdict"
grep -q 'S>C same     appdata seq=3 len=30 ack "received 15 bytes" (timestamp normalised)' "$T/plain.txt" ||
    fail "plain-msg: the first ack is not reported as the same"
wait_for "$T/srv.out" 'second message$' 5 || fail "the server did not display the replayed messages"
[ "$(grep -c 'hello plaintext$' "$T/srv.out")" -eq 1 ] || fail "the server displayed 'hello plaintext' more than once"
pass "plaintext session replayed: same answers, messages delivered again"

lines=$(wc -l <"$T/srv.out")
run gcm "$VC" replay "$CAPS/gcm-msg.pcap" --to "127.0.0.1:$PORT"
expect_rc 3 "replay of gcm-msg" gcm
grep -q '^method: verbatim' "$T/gcm.txt" || fail "gcm-msg was not replayed verbatim"
grep -q '^verdict: REFUSED IN THE HANDSHAKE: the server answered with an alert' "$T/gcm.txt" ||
    fail "gcm-msg: not refused in the handshake"
wait_for "$T/srv.log" 'handshake failed: .*decrypt_error' 5 || fail "the server log does not show the refused handshake"
sleep 0.3
[ "$(wc -l <"$T/srv.out")" -eq "$lines" ] || fail "the server displayed something for the encrypted replay"
grep -q 'C>S not sent\|S>C expected' "$T/gcm.txt" || true
pass "encrypted session replayed: refused in the handshake, nothing displayed"

lines=$(wc -l <"$T/srv.out")
run plainv "$VC" replay --verbatim "$CAPS/plain-msg.pcap" --to "127.0.0.1:$PORT"
expect_rc 3 "verbatim replay of plain-msg" plainv
grep -q '^verdict: REFUSED IN THE HANDSHAKE with alert decrypt_error' "$T/plainv.txt" ||
    fail "plain-msg --verbatim: not refused in the handshake"
sleep 0.3
[ "$(wc -l <"$T/srv.out")" -eq "$lines" ] || fail "the server displayed something for a refused replay"
pass "plaintext session replayed verbatim: refused in the handshake too"

run gcmk "$VC" replay --keylog "$CAPS/gcm-msg.keys" "$CAPS/gcm-msg.pcap" --to "127.0.0.1:$PORT"
expect_rc 0 "replay of gcm-msg with its keylog" gcmk
grep -q '^method: by content' "$T/gcmk.txt" || fail "gcm-msg with keys was not replayed by content"
grep -q '^verdict: SAME ANSWERS' "$T/gcmk.txt" || fail "gcm-msg with keys: answers differ"
pass "encrypted session with its keylog replayed by content: same answers"

# Another server identity: the ServerHello differs, and the replay says so.
"$VEIL_KEYGEN" -q -o "$T/other.key" >/dev/null
start_server other "$T/other.key" --allow-plain
run other "$VC" replay "$CAPS/plain-msg.pcap" --to "127.0.0.1:$PORT"
expect_rc 3 "replay to another server" other
grep -q 'server identity' "$T/other.txt" || fail "a different server identity is not reported"
pass "a server with another identity is reported as different"
