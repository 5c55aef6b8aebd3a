#!/usr/bin/env bash
# Key files: veil-keygen modes, --force, --show; the server refuses a key
# readable by others, explains a missing default key, and --gen-key.
. "$(dirname "$0")/lib.sh"

out=$("$VKEYGEN" -o "$T/a.key")
echo "$out" | grep -q "^fingerprint: sha256:[0-9a-f]\{64\}$" || fail "keygen output: $out"
[ "$(stat -c %a "$T/a.key")" = 600 ] || fail "private key mode $(stat -c %a "$T/a.key")"
[ "$(stat -c %a "$T/a.key.pub")" = 644 ] || fail "public key mode"
grep -q 'BEGIN PRIVATE KEY' "$T/a.key" || fail "not PKCS#8 PEM"
grep -q 'BEGIN PUBLIC KEY' "$T/a.key.pub" || fail "not SPKI PEM"
fp=$(echo "$out" | sed -n 's/^fingerprint: //p')
[ "$("$VKEYGEN" --show "$T/a.key")" = "$fp" ] || fail "--show differs from the keygen output"
if command -v openssl >/dev/null; then
    ossl=$(openssl pkey -pubin -in "$T/a.key.pub" -outform DER | sha256sum | cut -d' ' -f1)
    [ "sha256:$ossl" = "$fp" ] || fail "fingerprint is not sha256 of the SPKI DER"
fi
pass "keygen writes 0600 key, .pub, fingerprint; --show agrees"

RC=0
"$VKEYGEN" -o "$T/a.key" >"$T/over.out" 2>"$T/over.err" || RC=$?
expect_rc 6 "overwrite without --force"
grep -q -- '--force' "$T/over.err" || fail "refusal does not mention --force"
[ "$("$VKEYGEN" --show "$T/a.key")" = "$fp" ] || fail "key changed without --force"
"$VKEYGEN" -q --force -o "$T/a.key" >"$T/force.out"
[ "$(cat "$T/force.out")" != "$fp" ] || fail "--force kept the old key"
pass "keygen refuses to overwrite without --force"

# Default path ~/.config/veil/identity.key, directory 0700.
"$VKEYGEN" -q >/dev/null
[ "$(stat -c %a "$HOME/.config/veil/identity.key")" = 600 ] || fail "default key mode"
[ "$(stat -c %a "$HOME/.config/veil")" = 700 ] || fail "config dir mode"
rm -f "$HOME/.config/veil/identity.key" "$HOME/.config/veil/identity.key.pub"
pass "keygen default path"

# Server with a key readable by others.
cp "$T/a.key" "$T/loose.key"
chmod 644 "$T/loose.key"
RC=0
timeout 10 "$VSERVER" --key "$T/loose.key" 0 >"$T/loose.out" 2>"$T/loose.log" || RC=$?
expect_rc 6 "server with a 0644 key"
grep -q '0644' "$T/loose.log" || fail "message does not give the mode"
grep -q "chmod 600 $T/loose.key" "$T/loose.log" || fail "message does not give the fix"
RC=0
"$VKEYGEN" --show "$T/loose.key" >/dev/null 2>&1 || RC=$?
expect_rc 6 "keygen --show on a 0644 key"
pass "key file with mode 0644 refused, with the fix"

# No default key: tell the user to run veil-keygen.
RC=0
timeout 10 "$VSERVER" 0 >"$T/nokey.out" 2>"$T/nokey.log" || RC=$?
expect_rc 6 "server without a key"
grep -q 'veil-keygen' "$T/nokey.log" || fail "no hint to run veil-keygen"
grep -q -- '--gen-key' "$T/nokey.log" || fail "no hint about --gen-key"
pass "missing default key explained"

# --gen-key creates the default key and serves with it.
"$VSERVER" --gen-key 0 >"$T/gen.out" 2>"$T/gen.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "$T/gen.log" 'listening on ' 10 || fail "--gen-key server did not start"
[ "$(stat -c %a "$HOME/.config/veil/identity.key")" = 600 ] || fail "--gen-key key mode"
gfp=$("$VKEYGEN" --show "$HOME/.config/veil/identity.key")
grep -q "identity $gfp" "$T/gen.log" || fail "server does not print its fingerprint"
stop_server "$SERVER_PID"
pass "--gen-key creates ~/.config/veil/identity.key"

# Not a key at all.
printf 'hello\n' >"$T/junk.key"
chmod 600 "$T/junk.key"
RC=0
timeout 10 "$VSERVER" --key "$T/junk.key" 0 >/dev/null 2>"$T/junk.log" || RC=$?
expect_rc 6 "server with a junk key"
pass "junk key refused"
