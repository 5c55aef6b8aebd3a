#!/usr/bin/env bash
# Shared-secret mode refusals.  Each refused message is named in the
# sender's log ("NOT delivered: <why>") and the receiver's log, nothing is
# shown, and both peers keep running:
#   - wrong secret (carol and bob disagree), in both directions;
#   - unknown peer: mallory, absent from bob's directory, even though she
#     holds the alice-bob secret;
#   - unknown contact typed (no connection at all);
#   - control information (test build, tests/peer/CMakeLists.txt): a stale
#     and a future timestamp, a corrupted CRC-32C, a sender name that is not
#     the authenticated PSK identity; a skewed clock inside the window is
#     accepted, and refused by a listener with a smaller --max-skew.
. "$(dirname "$0")/lib.sh"

S_AB='alice and bob share this'
S_AC='alice and carol share this'
S_BC='bob and carol share this'
launch() {
    write_dir "$T/alice.json" "$(entry alice)" "$(entry bob "\"secret\":\"$S_AB\"")" \
        "$(entry carol "\"secret\":\"$S_AC\"")"
    write_dir "$T/bob.json" "$(entry bob)" "$(entry alice "\"secret\":\"$S_AB\"")" \
        "$(entry carol "\"secret\":\"bob thinks this is the secret\"")"
    write_dir "$T/carol.json" "$(entry carol)" "$(entry alice "\"secret\":\"$S_AC\"")" \
        "$(entry bob "\"secret\":\"$S_BC\"")"
    write_dir "$T/mallory.json" "$(entry mallory)" "$(entry bob "\"secret\":\"$S_AB\"")"
    start_peer alice "$T/alice.json" || return $?
    start_peer bob "$T/bob.json" || return $?
    start_peer carol "$T/carol.json" --max-skew 30 || return $?
    start_peer mallory "$T/mallory.json" || return $?
    # Test-build senders that present themselves as alice (PSK identity
    # "alice", alice's directory) from their own ports.
    local o
    for o in past:--test-clock-offset=-300000 future:--test-clock-offset=300000 \
        skewed:--test-clock-offset=-60000 crc:--test-corrupt-crc forge:--test-sender=carol; do
        PEER_BIN=$VPEERT PEER_NAME=alice start_peer "alice_${o%%:*}" "$T/alice.json" \
            --port "${PORT[alice_${o%%:*}]}" "${o#*:}" || return $?
    done
}
with_ports "alice bob carol mallory alice_past alice_future alice_skewed alice_crc alice_forge" launch

# Wrong secret, carol -> bob and bob -> carol.
say carol "bob: you should not see this"
wait_log carol "to bob .*message NOT delivered: handshake failed: bob's Finished does not prove our shared secret: the secrets differ, or this is not bob \(sent alert (auth_failed|decrypt_error)\)"
wait_log bob 'from 127\.0\.0\.1:[0-9]+: handshake failed \(claims to be "carol"\): the peer could not verify our Finished \(alert (auth_failed|decrypt_error)\): the shared secrets differ'
say bob "carol: nor this"
wait_log bob "to carol .*message NOT delivered: handshake failed: carol's Finished does not prove our shared secret"
wait_log carol 'handshake failed \(claims to be "bob"\): the peer could not verify our Finished'
nothing_shown bob
nothing_shown carol
pass "wrong secret: refused on both sides, both directions, nothing shown"

# Unknown peer: bob has no entry for mallory.
say mallory "bob: let me in"
wait_log mallory "to bob .*message NOT delivered: bob refused us \(alert auth_failed\): bob's directory has no shared secret for \"mallory\""
wait_log bob 'refused \(claims to be "mallory"\): not a contact with a shared secret in .*bob\.json \(sent alert auth_failed\)'
nothing_shown bob
pass "unknown peer name refused by the listener (auth_failed), named on both sides"

# Unknown contact typed: refused before any connection.
say alice "dave: hello?"
wait_log alice 'message NOT sent: unknown contact "dave" \(not in .*alice\.json; contacts: bob, carol\)'
pass "unknown contact typed: refused locally, contacts listed"

# Stale and future timestamps (window +/-120 s by default).
say alice_past "bob: from five minutes ago"
wait_log alice_past "to bob .*message NOT delivered: bob refused it \(stale_timestamp\): timestamp [0-9T:.Z-]+ is 300\.[0-9] s behind bob's clock; the window is \+/-120\.0 s"
wait_log bob 'from alice .*message refused \(stale_timestamp\): timestamp .* is 300\.[0-9] s behind'
say alice_future "bob: from five minutes ahead"
wait_log alice_future "bob refused it \(stale_timestamp\): timestamp .* is 300\.[0-9] s ahead of bob's clock"
nothing_shown bob
pass "timestamps 300 s behind and ahead refused, with the window named"

# 60 s of skew: inside bob's window, outside carol's (--max-skew 30).
say alice_skewed "bob: a minute slow"
shown bob alice "a minute slow"
say alice_skewed "carol: a minute slow"
wait_log alice_skewed "to carol .*NOT delivered: carol refused it \(stale_timestamp\): .* is 60\.[0-9] s behind carol's clock; the window is \+/-30\.0 s"
nothing_shown carol
pass "60 s of skew: accepted within +/-120 s, refused by --max-skew 30"

# CRC-32C mismatch.
say alice_crc "bob: bits flipped"
wait_log alice_crc "to bob .*NOT delivered: bob refused it \(bad_crc\): CRC-32C mismatch: the message says [0-9a-f]{8}, its bytes give [0-9a-f]{8}"
wait_log bob 'message refused \(bad_crc\)'
pass "CRC-32C mismatch refused"

# A sender field that is not the identity the handshake proved.
say alice_forge "bob: I am carol, honest"
wait_log alice_forge "to bob .*NOT delivered: bob refused it \(sender_mismatch\): the message says it is from \"carol\" but the session authenticated \"alice\""
wait_log bob 'message refused \(sender_mismatch\)'
pass "sender name differing from the PSK identity refused"

# Only the one legitimate message reached bob's screen.
[ "$(wc -l <"$T/bob.out")" -eq 1 ] || fail "bob shows more than one message: $(cat "$T/bob.out")"

# Everyone is still running and still works after the refusals.
say alice "bob: still friends"
shown bob alice "still friends"
say bob "alice: yes"
shown alice bob "yes"
say carol "alice: and me"
shown alice carol "and me"
pass "after the refusals every peer still delivers"

end_input bob
expect_exit bob 5
end_input alice
expect_exit alice 5 # "dave" was refused
end_input mallory
expect_exit mallory 5
pass "peers with undelivered messages exit 5"
