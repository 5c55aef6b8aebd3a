#!/usr/bin/env bash
# Server identity: pinning with --fingerprint and known_hosts trust on first
# use.  A mismatch is exit 3 and the server never sees the message.
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
OTHER=$(make_key other)
start_server srv

# Wrong --fingerprint.
client wrongfp --fingerprint "$OTHER" -m "secret for the real server" 127.0.0.1 "$PORT"
expect_rc 3 "wrong --fingerprint"
[ "$(wc -l <"$T/wrongfp.err")" -eq 1 ] || fail "expected one error line: $(cat "$T/wrongfp.err")"
grep -q 'not trusted' "$T/wrongfp.err" || fail "error does not say the identity is not trusted"
grep -q "${FP#sha256:}" "$T/wrongfp.err" || fail "error does not show the server's fingerprint"
wait_for "$T/srv.log" 'untrusted_identity' 5 || fail "server did not log the client's refusal"
[ ! -s "$T/srv.out" ] || fail "server showed a message from a client that refused it"
pass "wrong fingerprint: exit 3, no message shown by the server"

# Fingerprint accepted in other spellings (no prefix, upper case).
hex=${FP#sha256:}
client rightfp --fingerprint "${hex^^}" -m "pinned" 127.0.0.1 "$PORT"
expect_rc 0 "right --fingerprint without prefix"
pass "pinned fingerprint accepted"

# known_hosts: first use records the key.
KH="$T/known_hosts"
client tofu1 --known-hosts "$KH" -m "first contact" 127.0.0.1 "$PORT"
expect_rc 0 "first use"
grep -q 'trusted on first use' "$T/tofu1.err" || fail "no first-use notice"
grep -q "$hex" "$T/tofu1.err" || fail "first-use notice lacks the fingerprint"
grep -qxF "127.0.0.1:$PORT $hex" "$KH" || fail "known_hosts lacks '127.0.0.1:$PORT $hex': $(cat "$KH")"
[ "$(stat -c %a "$KH")" = 600 ] || fail "known_hosts mode $(stat -c %a "$KH")"
client tofu2 --known-hosts "$KH" -m "second contact" 127.0.0.1 "$PORT"
expect_rc 0 "known host"
[ ! -s "$T/tofu2.err" ] || fail "notice on a known host: $(cat "$T/tofu2.err")"
[ "$(grep -c . "$KH")" -eq 1 ] || fail "known_hosts grew on a known host"
pass "known_hosts: trust on first use, then silent"

# Default location ~/.config/veil/known_hosts (HOME is the test dir).
client deflt -m "default kh" 127.0.0.1 "$PORT"
expect_rc 0 "default known_hosts"
grep -qxF "127.0.0.1:$PORT $hex" "$HOME/.config/veil/known_hosts" || fail "default known_hosts not written"
[ "$(stat -c %a "$HOME/.config/veil")" = 700 ] || fail "config dir mode $(stat -c %a "$HOME/.config/veil")"
pass "default known_hosts in ~/.config/veil"

# The key recorded for this host:port differs from the one the server now
# presents (what a changed key or a man in the middle looks like).
printf '# recorded earlier\n127.0.0.1:%s %s\n' "$PORT" "${OTHER#sha256:}" >"$T/kh_changed"
cp "$T/kh_changed" "$T/kh_before"
: >"$T/srv.out"
client changed --known-hosts "$T/kh_changed" -m "must not be sent" 127.0.0.1 "$PORT"
expect_rc 3 "changed key"
grep -q 'REMOTE HOST IDENTIFICATION HAS CHANGED' "$T/changed.err" || fail "no loud warning"
grep -q "$hex" "$T/changed.err" || fail "warning lacks the new fingerprint"
grep -q "${OTHER#sha256:}" "$T/changed.err" || fail "warning lacks the recorded fingerprint"
grep -q 'line 2' "$T/changed.err" || fail "warning does not name the line"
cmp -s "$T/kh_changed" "$T/kh_before" || fail "known_hosts was modified"
[ ! -s "$T/srv.out" ] || fail "server showed a message"
pass "changed key: loud refusal, exit 3, known_hosts untouched"

# --no-known-hosts: works, warns, writes nothing.
client nokh --no-known-hosts -m "unverified" 127.0.0.1 "$PORT"
expect_rc 0 "--no-known-hosts"
grep -q 'not verified' "$T/nokh.err" || fail "no warning for an unverified server"
pass "--no-known-hosts warns"
