#!/usr/bin/env bash
# Message exchange: encrypted mode with each of the three suites, plaintext
# mode, and IPv6; the exact text must reach the server's output and the
# exact ACK the client's.
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
start_server srv --allow-plain

i=0
for suite in aes-256-gcm chacha20-poly1305 aes-256-cbc-hmac-sha256; do
    i=$((i + 1))
    msg="hello over $suite: UTF-8 ✓ and symbols <>&\"'"
    client "enc$i" -v --suite "$suite" --fingerprint "$FP" -m "$msg" 127.0.0.1 "$PORT"
    expect_rc 0 "encrypted exchange with $suite"
    acked "$T/enc$i.out" "$msg"
    server_shows "$T/srv.out" "$msg"
    grep -q "mode encrypted" "$T/enc$i.err" || fail "-v does not show the encrypted mode"
    want=$(case $suite in
        aes-256-gcm) echo AES_256_GCM_SHA256 ;;
        chacha20-poly1305) echo CHACHA20_POLY1305_SHA256 ;;
        *) echo AES_256_CBC_HMAC_SHA256 ;;
    esac)
    grep -q "suite $want" "$T/enc$i.err" || fail "-v does not show suite $want"
    grep -q "mode=encrypted suite=$want" "$T/srv.log" || fail "server log lacks suite $want"
    pass "encrypted exchange, suite $suite"
done

msg="plaintext hello, visible on the wire"
client plain -v --plain --fingerprint "$FP" -m "$msg" 127.0.0.1 "$PORT"
expect_rc 0 "plaintext exchange"
acked "$T/plain.out" "$msg"
server_shows "$T/srv.out" "$msg"
grep -q "mode plaintext" "$T/plain.err" || fail "-v does not show the plaintext mode"
grep -q "mode=plaintext" "$T/srv.log" || fail "server log lacks mode=plaintext"
pass "plaintext exchange"

# Several messages in one session, from a pipe (one per line), default suite.
printf 'line one\nline two\n\nline four\n' >"$T/lines.txt"
RC=0
timeout 30 "$VCLIENT" --fingerprint "$FP" 127.0.0.1 "$PORT" <"$T/lines.txt" \
    >"$T/pipe.out" 2>"$T/pipe.err" || RC=$?
expect_rc 0 "messages from a pipe"
[ "$(grep -c '^ack: ' "$T/pipe.out")" -eq 4 ] || fail "expected 4 acks from the pipe"
for m in "line one" "line two" "line four"; do server_shows "$T/srv.out" "$m"; done
pass "one message per line from a pipe"

# A hostile message: control characters must not reach the terminal raw.
esc=$(printf 'evil \033[2J\033]0;title\007 end')
client ctl --fingerprint "$FP" -m "$esc" 127.0.0.1 "$PORT"
expect_rc 0 "message with control characters"
if grep -q $'\033' "$T/srv.out"; then fail "server printed a raw ESC"; fi
grep -qF 'evil \x1b[2J\x1b]0;title\x07 end' "$T/srv.out" || fail "control characters not escaped"
pass "control characters are escaped"

# IPv6, if the loopback has it (the server listens on :: dual-stack).
if ip -6 addr show lo 2>/dev/null | grep -q '::1' || [ -f /proc/net/if_inet6 ]; then
    client v6 --fingerprint "$FP" -m "over IPv6" ::1 "$PORT"
    if [ "$RC" -eq 2 ]; then
        echo "skip: no IPv6 loopback here"
    else
        expect_rc 0 "exchange over IPv6"
        server_shows "$T/srv.out" "over IPv6"
        grep -q '\[::1\]:' "$T/srv.out" || fail "IPv6 peer not shown as [::1]:port"
        pass "exchange over IPv6"
    fi
fi

stop_server "$SERVER_PID"
[ "$WAIT_STATUS" -eq 0 ] || fail "server exit status $WAIT_STATUS after SIGTERM"
if grep -E 'ERROR|truncated' "$T/srv.log"; then fail "unexpected errors in the server log"; fi
pass "server log clean"
