#!/usr/bin/env bash
# Keylog files: two NSS-style lines per encrypted session, appended, mode
# 0600; none for a plaintext session; VEIL_KEYLOGFILE works for both programs.
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
start_server srv --allow-plain --keylog "$T/server.keylog"

client s1 --fingerprint "$FP" --keylog "$T/client.keylog" -m one 127.0.0.1 "$PORT"
expect_rc 0 "session 1"
client s2 --fingerprint "$FP" --keylog "$T/client.keylog" --suite aes-256-cbc-hmac-sha256 -m two \
    127.0.0.1 "$PORT"
expect_rc 0 "session 2"
client p --plain --fingerprint "$FP" --keylog "$T/client.keylog" -m three 127.0.0.1 "$PORT"
expect_rc 0 "plaintext session"

for f in "$T/server.keylog" "$T/client.keylog"; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f mode $(stat -c %a "$f")"
    [ "$(wc -l <"$f")" -eq 4 ] || fail "$f has $(wc -l <"$f") lines, expected 4 (2 per encrypted session)"
    [ "$(grep -cE '^VEIL_CLIENT_TRAFFIC_SECRET_0 [0-9a-f]{64} [0-9a-f]{64}$' "$f")" -eq 2 ] ||
        fail "$f: bad client secret lines"
    [ "$(grep -cE '^VEIL_SERVER_TRAFFIC_SECRET_0 [0-9a-f]{64} [0-9a-f]{64}$' "$f")" -eq 2 ] ||
        fail "$f: bad server secret lines"
done
cmp -s <(sort "$T/server.keylog") <(sort "$T/client.keylog") || fail "client and server logged different secrets"
pass "2 lines per encrypted session, none for plaintext, mode 0600, both sides agree"

# Appends, never truncates; the environment variable is honoured.
echo "# kept" >"$T/env.keylog"
chmod 600 "$T/env.keylog"
RC=0
VEIL_KEYLOGFILE="$T/env.keylog" timeout 30 "$VCLIENT" --fingerprint "$FP" -m four 127.0.0.1 "$PORT" \
    </dev/null >"$T/env.out" 2>"$T/env.err" || RC=$?
expect_rc 0 "session with VEIL_KEYLOGFILE"
head -n1 "$T/env.keylog" | grep -qx '# kept' || fail "keylog file was truncated"
[ "$(wc -l <"$T/env.keylog")" -eq 3 ] || fail "VEIL_KEYLOGFILE: expected 3 lines"
pass "VEIL_KEYLOGFILE, append-only"

# An unusable keylog file is a local error (6).
client badkl --fingerprint "$FP" --keylog "$T/no/such/dir/kl" -m five 127.0.0.1 "$PORT"
expect_rc 6 "unwritable keylog"
pass "unusable keylog file: exit 6"
stop_server "$SERVER_PID"

# Server side via the environment.
VEIL_KEYLOGFILE="$T/srvenv.keylog" "$VSERVER" --key "$T/srv.key" 0 >"$T/srv2.out" 2>"$T/srv2.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_for "$T/srv2.log" 'listening on ' 10 || fail "server 2 did not start"
PORT=$(grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$T/srv2.log" | sed -E 's/.*:([0-9]+)$/\1/')
client s5 --fingerprint "$FP" -m six 127.0.0.1 "$PORT"
expect_rc 0 "session with server VEIL_KEYLOGFILE"
[ "$(wc -l <"$T/srvenv.keylog")" -eq 2 ] || fail "server VEIL_KEYLOGFILE: expected 2 lines"
pass "server honours VEIL_KEYLOGFILE"
