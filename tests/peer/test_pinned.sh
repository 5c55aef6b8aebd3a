#!/usr/bin/env bash
# Pinned-key mode: identity keys pinned by fingerprint, both ways.  The
# listener signs and the sender checks its key against its directory; the
# sender signs (ClientVerify) and the listener accepts only the key its own
# directory pins for that name.  Checked here:
#   - alice <-> bob, both directions, shown as plain "[time] alice: ...";
#   - the listener's key is not the pinned one (eve pins another key for
#     bob): untrusted_identity on both sides, nothing shown;
#   - an unknown key (mallory, whom bob does not know): refused by bob with
#     untrusted_identity on both sides, nothing shown;
#   - alice without her --key (a fresh key): bob refuses her, and alice is
#     told why;
#   - a known key claiming another name in the message: sender_mismatch;
#   - a sender that does not sign (test build): refused at the handshake;
#   - a contact with a secret AND a pinned key (dave): both hold, and dave
#     signing with another key is refused although his secret is right;
#   - a listener whose contacts all have secrets (carol) refuses a peer that
#     offers none (auth_failed on both sides);
#   - a peer whose own entry pins another key than its --key does not start.
. "$(dirname "$0")/lib.sh"

FPA=$("$VKEYGEN" -q -o "$T/alice.key")
FPB=$("$VKEYGEN" -q -o "$T/bob.key")
FPD=$("$VKEYGEN" -q -o "$T/dave.key")
FPO=$("$VKEYGEN" -q -o "$T/other.key")
"$VKEYGEN" -q -o "$T/mallory.key" >/dev/null
[[ $FPA == sha256:* && $FPB == sha256:* ]] || fail "veil-keygen printed '$FPA' '$FPB'"
S_BD='bob and dave share this secret'

launch() {
    write_dir "$T/alice.json" "$(entry alice "\"fingerprint\":\"$FPA\"")" \
        "$(entry bob "\"fingerprint\":\"$FPB\"")" "$(entry carol "\"fingerprint\":\"$FPO\"")"
    write_dir "$T/bob.json" "$(entry bob "\"fingerprint\":\"$FPB\"")" \
        "$(entry alice "\"fingerprint\":\"$FPA\"")" \
        "$(entry dave "\"fingerprint\":\"$FPD\",\"secret\":\"$S_BD\"")"
    write_dir "$T/alice_nokey.json" "$(entry alice)" "$(entry bob "\"fingerprint\":\"$FPB\"")"
    write_dir "$T/dave.json" "$(entry dave)" "$(entry bob "\"fingerprint\":\"$FPB\",\"secret\":\"$S_BD\"")"
    write_dir "$T/eve.json" "$(entry eve)" "$(entry bob "\"fingerprint\":\"$FPO\"")"
    write_dir "$T/mallory.json" "$(entry mallory)" "$(entry bob "\"fingerprint\":\"$FPB\"")"
    write_dir "$T/carol.json" "$(entry carol)" "$(entry alice "\"secret\":\"carol only takes secrets\"")"
    start_peer alice "$T/alice.json" --key "$T/alice.key" || return $?
    start_peer bob "$T/bob.json" --key "$T/bob.key" || return $?
    start_peer dave "$T/dave.json" --key "$T/dave.key" || return $?
    start_peer eve "$T/eve.json" --key "$T/other.key" || return $?
    start_peer mallory "$T/mallory.json" --key "$T/mallory.key" || return $?
    start_peer carol "$T/carol.json" --key "$T/other.key" || return $?
    # alice without her key, alice forging the sender name, dave with the
    # wrong key: from ports of their own.
    PEER_NAME=alice start_peer alice_nokey "$T/alice_nokey.json" --port "${PORT[alice_nokey]}" \
        || return $?
    PEER_BIN=$VPEERT PEER_NAME=alice start_peer alice_forge "$T/alice.json" --key "$T/alice.key" \
        --port "${PORT[alice_forge]}" --test-sender=dave || return $?
    PEER_BIN=$VPEERT PEER_NAME=alice start_peer alice_nosign "$T/alice.json" --key "$T/alice.key" \
        --port "${PORT[alice_nosign]}" --test-no-sign || return $?
    PEER_NAME=dave start_peer dave_wrongkey "$T/dave.json" --key "$T/other.key" \
        --port "${PORT[dave_wrongkey]}" || return $?
}
with_ports "alice bob dave eve mallory carol alice_nokey alice_forge alice_nosign dave_wrongkey" launch
wait_log bob "identity $FPB"
wait_log alice_nokey 'no --key: the 1 contact you pin by fingerprint will refuse you'

say alice "bob: pinned hello"
shown bob alice "pinned hello"
wait_log alice "to bob .*message delivered: bob showed it \(encrypted, pinned keys\)"
wait_log bob "#[0-9]+ from alice \(127\.0\.0\.1:[0-9]+\): message from alice shown \(12 bytes, encrypted, pinned keys\)"
say bob "alice: pinned reply"
shown alice bob "pinned reply"
wait_log bob "to alice .*message delivered: alice showed it \(encrypted, pinned keys\)"
pass "pinned keys both ways: mutual, delivered and shown with the authenticated name"

say eve "bob: pinned to the wrong key"
wait_log eve "to bob .*message NOT delivered: bob's identity is not the pinned one: it presented ${FPB}, the directory pins ${FPO} \(sent alert untrusted_identity\)"
wait_log bob 'from 127\.0\.0\.1:[0-9]+: handshake failed: peer sent alert untrusted_identity'
pass "listener's key not the pinned one: untrusted_identity on both sides"

say mallory "bob: you do not know my key"
wait_log mallory "to bob .*message NOT delivered: bob does not accept our key \(alert untrusted_identity\): bob's directory must pin sha256:[0-9a-f]{64} for \"mallory\""
wait_log bob 'refused: it signed with key sha256:[0-9a-f]{64}, which no contact in .*bob\.json pins \(sent alert untrusted_identity\)'
pass "unknown key refused by the listener: untrusted_identity on both sides"

say alice_nokey "bob: it is me, without my key"
wait_log alice_nokey "to bob .*NOT delivered: bob does not accept our key \(alert untrusted_identity\): bob's directory must pin sha256:[0-9a-f]{64} for \"alice\" \(no --key: this run signs with a fresh key\)"
pass "a fresh key is not alice's: refused, and the missing --key named"

say alice_forge "bob: signed by alice, says dave"
wait_log alice_forge "to bob .*NOT delivered: bob refused it \(sender_mismatch\): the message says it is from \"dave\" but the session authenticated \"alice\""
pass "the signed identity binds the sender name: sender_mismatch"

say alice_nosign "bob: unsigned"
wait_log alice_nosign "to bob .*NOT delivered: bob does not accept our key \(alert untrusted_identity\)"
wait_log bob 'from 127\.0\.0\.1:[0-9]+: refused: the peer proved neither a shared secret nor a key pinned in .*bob\.json \(sent alert untrusted_identity\)'
pass "a peer that does not sign, to a listener that pins it: refused at the handshake"

say dave "bob: secret and key"
shown bob dave "secret and key"
wait_log dave "to bob .*message delivered: bob showed it \(encrypted, shared secret\)"
say dave_wrongkey "bob: right secret, wrong key"
wait_log dave_wrongkey "to bob .*NOT delivered: bob does not accept our key \(alert untrusted_identity\)"
wait_log bob "refused \(claims to be \"dave\"\): it signed with sha256:${FPO#sha256:}, not the key .*bob\.json pins for \"dave\""
pass "secret and pinned key together: both must hold"

say alice "carol: no secret from me"
wait_log alice "to carol .*NOT delivered: carol refused us \(alert auth_failed\): carol wants a shared secret, and .*alice\.json has only a fingerprint for carol here"
wait_log carol 'refused: the peer offered no shared secret, and every contact in .*carol\.json has one \(sent alert auth_failed\)'
nothing_shown carol
pass "a listener whose contacts all have secrets refuses a peer without one"

# Only the three legitimate messages reached a screen.
[ "$(wc -l <"$T/bob.out")" -eq 2 ] || fail "bob shows: $(cat "$T/bob.out")"
[ "$(wc -l <"$T/alice.out")" -eq 1 ] || fail "alice shows: $(cat "$T/alice.out")"

# A --key that is not the one the user's own entry pins.
RC=0
timeout 20 "$VPEER" --name alice --directory "$T/alice.json" --key "$T/other.key" --port 0 \
    --receive-only </dev/null >"$T/wrongkey.out" 2>"$T/wrongkey.err" || RC=$?
[ "$RC" -eq 6 ] || fail "wrong own key: exit $RC, expected 6"
grep -q "your own entry \"alice\" in .*alice.json pins $FPA, but your key is $FPO" "$T/wrongkey.err" ||
    fail "wrong own key: $(cat "$T/wrongkey.err")"
pass "own entry pinning another key than --key: refused at start (exit 6)"

for n in alice bob; do
    end_input "$n"
done
expect_exit bob 0
expect_exit alice 5
pass "exit statuses"
