#!/usr/bin/env bash
# Shared-secret mode, encrypted: alice and bob, each typing into its own
# stdin, exchange messages both ways, one at a time and in bursts; hostile
# text is shown sanitised; a contact stored as a stretched "psk" interoperates
# with one stored as a clear "secret"; both exit 0 at the end of their input.
. "$(dirname "$0")/lib.sh"

SECRET='correct horse battery staple'
PSK=$(printf '%s\n' "$SECRET" | "$VPEER" --stretch)
# The check value of docs/PEER.md, DIRECTORY.
[ "$PSK" = 52cbdadf0f5312fb8a18f1ab414d519d10ba7e5721d8481a379f3887f3d9fba0 ] ||
    fail "--stretch printed '$PSK'"
pass "--stretch prints the documented PSK"

launch() {
    write_dir "$T/alice.json" "$(entry alice)" "$(entry bob "\"secret\":\"$SECRET\"")"
    write_dir "$T/bob.json" "$(entry bob)" "$(entry alice "\"psk\":\"$PSK\"")"
    start_peer alice "$T/alice.json" --keylog "$T/alice.keys" || return $?
    start_peer bob "$T/bob.json" || return $?
}
with_ports "alice bob" launch

say alice "bob: hello bob"
shown bob alice "hello bob"
wait_log alice "#[0-9]+ to bob \(127\.0\.0\.1:${PORT[bob]}\): message delivered: bob showed it \(encrypted, shared secret\)"
wait_log bob "#[0-9]+ from alice \(127\.0\.0\.1:[0-9]+\): message from alice shown \(9 bytes, encrypted, shared secret\)"
pass "alice -> bob: shown as '[time] alice: hello bob', delivery confirmed"

say bob "alice: hi alice, got it"
shown alice bob "hi alice, got it"
wait_log bob 'to alice .*message delivered: alice showed it \(encrypted, shared secret\)'
pass "bob -> alice"

# Bursts both ways at once: concurrent outgoing and incoming sessions.
for i in 1 2 3 4 5 6; do
    say alice "bob: burst $i from alice"
    say bob "alice: burst $i from bob"
done
for i in 1 2 3 4 5 6; do
    shown bob alice "burst $i from alice"
    shown alice bob "burst $i from bob"
done
pass "bursts of 6 messages each way at the same time"

# Text from the network is sanitised: escape sequences and a bidi override
# are shown as escapes, valid UTF-8 passes.
say alice "bob: $(printf 'red \033[31mtext\033[0m \342\200\256evil')"
shown bob alice 'red \x1b[31mtext\x1b[0m \u{202e}evil'
say alice "bob: café ✓"
shown bob alice "café ✓"
pass "control characters escaped, UTF-8 shown"

# Typing tolerance: blanks around the name and the text, CRLF, comments.
say alice "# a comment line"
say alice ""
say alice "   bob  :   spaced out"
say alice "bob: crlf line"$'\r'
shown bob alice "spaced out"
shown bob alice "crlf line"
pass "blanks, CRLF, comments and empty lines in the input"

# stdout carries messages only, one line each; the timestamps are the
# senders' (the same clock here), in UTC.
[ "$(wc -l <"$T/bob.out")" -eq 11 ] || fail "bob.out has $(wc -l <"$T/bob.out") lines, expected 11"
[ "$(wc -l <"$T/alice.out")" -eq 7 ] || fail "alice.out has $(wc -l <"$T/alice.out") lines, expected 7"
! grep -vE "^$TS_RE (alice|bob): " "$T/bob.out" "$T/alice.out" || fail "non-message output on stdout"
no_log alice 'NOT delivered|refused'
no_log bob 'NOT delivered|refused'

# alice's keylog: both traffic secrets of every session, mode 0600.
[ "$(stat -c %a "$T/alice.keys")" = 600 ] || fail "keylog mode $(stat -c %a "$T/alice.keys")"
[ "$(grep -c '^VEIL_CLIENT_TRAFFIC_SECRET_0 [0-9a-f]\{64\} [0-9a-f]\{64\}$' "$T/alice.keys")" -ge 18 ] ||
    fail "keylog: $(head -3 "$T/alice.keys")"
grep -q '^VEIL_SERVER_TRAFFIC_SECRET_0 ' "$T/alice.keys" || fail "keylog lacks server secrets"
pass "--keylog records the secrets of every session, mode 0600"

end_input alice
expect_exit alice 0
end_input bob
expect_exit bob 0
wait_log alice 'exiting: 11 messages delivered, 0 not delivered; 7 shown, 0 refused'
wait_log bob 'exiting: 7 messages delivered, 0 not delivered; 11 shown, 0 refused'
pass "end of input: both exit 0 with their tallies"
