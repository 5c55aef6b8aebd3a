#!/usr/bin/env bash
# Plaintext mode (--plain to send, --allow-plain to accept):
#   - alice and bob, both with --plain --allow-plain, exchange messages both
#     ways; the listener's log flags each message as plaintext;
#   - dave (--plain, no --allow-plain) refuses alice: plaintext_refused named
#     on both sides, nothing shown;
#   - the shared secret still authenticates a plaintext handshake: carol, who
#     holds another secret for alice, refuses her on both sides.
. "$(dirname "$0")/lib.sh"

S_AB='alice and bob share this'
S_AC='alice and carol share this'
S_AD='alice and dave share this'
launch() {
    write_dir "$T/alice.json" "$(entry alice)" "$(entry bob "\"secret\":\"$S_AB\"")" \
        "$(entry carol "\"secret\":\"$S_AC\"")" "$(entry dave "\"secret\":\"$S_AD\"")"
    write_dir "$T/bob.json" "$(entry bob)" "$(entry alice "\"secret\":\"$S_AB\"")"
    write_dir "$T/carol.json" "$(entry carol)" "$(entry alice "\"secret\":\"not what alice has\"")"
    write_dir "$T/dave.json" "$(entry dave)" "$(entry alice "\"secret\":\"$S_AD\"")"
    start_peer alice "$T/alice.json" --plain --allow-plain || return $?
    start_peer bob "$T/bob.json" --plain --allow-plain || return $?
    start_peer carol "$T/carol.json" --allow-plain || return $?
    start_peer dave "$T/dave.json" --plain || return $?
}
with_ports "alice bob carol dave" launch
grep -q 'plaintext mode: NOT encrypted' "$T/alice.log" || fail "alice does not warn that --plain sends in clear"
grep -q 'modes: encrypted,plaintext' "$T/bob.log" || fail "bob does not log that it accepts plaintext"
grep -q 'modes: encrypted;' "$T/dave.log" || fail "dave does not log encrypted-only"

say alice "bob: in the clear"
shown bob alice "in the clear"
wait_log alice 'to bob .*message delivered: bob showed it \(plaintext, shared secret\)'
wait_log bob 'from alice .*message from alice shown \(12 bytes, plaintext, shared secret\)'
wait_log bob 'from alice .*that message crossed the network in plaintext mode'
say bob "alice: clear back"
shown alice bob "clear back"
wait_log bob 'to alice .*message delivered: alice showed it \(plaintext, shared secret\)'
pass "plaintext round trip alice <-> bob, flagged by each listener"

say alice "dave: refused please"
wait_log alice "to dave .*message NOT delivered: dave does not accept plaintext mode \(alert plaintext_refused; dave must run with --allow-plain"
wait_log dave 'from 127\.0\.0\.1:[0-9]+: refused( \(claims to be "alice"\))?: the peer asked for plaintext mode, allowed only with --allow-plain \(sent alert plaintext_refused\)'
nothing_shown dave
pass "plaintext to a listener without --allow-plain: plaintext_refused on both sides"

say alice "carol: wrong secret in the clear"
wait_log alice "to carol .*message NOT delivered: handshake failed: carol's Finished does not prove our shared secret"
wait_log carol 'handshake failed \(claims to be "alice"\): the peer could not verify our Finished'
nothing_shown carol
pass "plaintext mode still proves the shared secret: wrong secret refused on both sides"

# dave can still reach alice in plaintext (alice allows it): the refusal
# above was about dave's listener, not dave.
say dave "alice: from dave"
shown alice dave "from dave"
pass "dave -> alice in plaintext"

end_input alice
expect_exit alice 5 # two of its messages were not delivered
for n in bob carol dave; do
    end_input "$n"
    expect_exit "$n" 0
done
pass "exit statuses: 5 for alice (undelivered messages), 0 for the others"
