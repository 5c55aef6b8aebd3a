#!/usr/bin/env bash
# Listening: --bind restricts the address; a port in use or a bad bind
# address is exit 2; the default socket serves IPv4 and IPv6.
. "$(dirname "$0")/lib.sh"

FP=$(make_key srv)
start_server srv --bind 127.0.0.1
grep -q "listening on 127.0.0.1:$PORT" "$T/srv.log" || fail "not listening on 127.0.0.1"
client v4 --fingerprint "$FP" -m "bound to v4" 127.0.0.1 "$PORT"
expect_rc 0 "client to the bound address"

# Same port again: in use.
RC=0
timeout 10 "$VSERVER" --key "$T/srv.key" --bind 127.0.0.1 "$PORT" >/dev/null 2>"$T/inuse.log" || RC=$?
expect_rc 2 "port in use"
grep -qi 'in use' "$T/inuse.log" || fail "no 'in use' in: $(cat "$T/inuse.log")"
pass "--bind 127.0.0.1; port in use: exit 2"

RC=0
timeout 10 "$VSERVER" --key "$T/srv.key" --bind 192.0.2.1 0 >/dev/null 2>"$T/badbind.log" || RC=$?
expect_rc 2 "address not on this host"
pass "bind address not on this host: exit 2"
stop_server "$SERVER_PID"

if [ -f /proc/net/if_inet6 ] && grep -q '^0\{31\}1 ' /proc/net/if_inet6; then
    start_server v6 --bind ::1
    client v6 --fingerprint "$("$VKEYGEN" --show "$T/v6.key")" -m "bound to v6" ::1 "$PORT"
    expect_rc 0 "client over IPv6 to --bind ::1"
    client v6via4 --fingerprint "$FP" -m x --connect-timeout 2 127.0.0.1 "$PORT"
    expect_rc 2 "IPv4 client to a server bound to ::1"
    pass "--bind ::1 serves IPv6 only"
else
    echo "skip: no IPv6 loopback"
fi
