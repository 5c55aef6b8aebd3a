#!/usr/bin/env bash
# What an eavesdropper sees: capture loopback with tcpdump during one
# plaintext and one encrypted exchange of the same distinctive message.  The
# plaintext capture contains the text; the encrypted one does not.
# Needs root and tcpdump; otherwise skipped (exit 77).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "skip: capturing needs root"
    exit 77
fi
if ! command -v tcpdump >/dev/null; then
    echo "skip: tcpdump not installed"
    exit 77
fi

FP=$(make_key srv)
start_server srv --allow-plain
MSG="VEIL-CANARY-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# capture NAME CLIENT-OPTIONS...: one exchange under its own tcpdump.
capture() {
    local name=$1
    shift
    # --immediate-mode: deliver each packet at once (some kernels, gVisor
    # among them, otherwise hold packets in the capture ring until exit).
    tcpdump -i lo --immediate-mode -U -n -Z root -w "$T/$name.pcap" "tcp port $PORT" \
        2>"$T/$name.tcpdump.log" &
    local tpid=$!
    PIDS+=("$tpid")
    if ! wait_for "$T/$name.tcpdump.log" 'listening on' 10; then
        cat "$T/$name.tcpdump.log" >&2
        fail "tcpdump did not start"
    fi
    # "listening on" is printed when the capture is set up; prove packets
    # actually arrive in the file: probe connections until it grows past
    # its 24-byte header (bounded, 5 s).
    local ready=0 i
    for i in $(seq 1 50); do
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" && exec 3<&-
        sleep 0.1
        if [ "$(stat -c %s "$T/$name.pcap" 2>/dev/null || echo 0)" -gt 24 ]; then
            ready=1
            break
        fi
    done
    [ "$ready" = 1 ] || fail "tcpdump captures nothing on lo"
    client "$name" "$@" --fingerprint "$FP" -m "$MSG" 127.0.0.1 "$PORT"
    expect_rc 0 "$name exchange"
    server_shows "$T/srv.out" "$MSG"
    sleep 0.3 # let the last packets (FIN) reach the capture
    kill -INT "$tpid"
    wait_exit "$tpid" 5 || fail "tcpdump did not stop"
    local pkts
    pkts=$(tcpdump -n -r "$T/$name.pcap" 2>/dev/null | wc -l)
    [ "$pkts" -ge 10 ] || fail "$name capture holds only $pkts packets"
}

capture plain --plain
capture encrypted

plain_hits=$(grep -a -c -- "$MSG" "$T/plain.pcap" || true)
enc_hits=$(grep -a -c -- "$MSG" "$T/encrypted.pcap" || true)
echo "message '$MSG': plaintext capture $plain_hits hit(s), encrypted capture $enc_hits hit(s)"
[ "$plain_hits" -ge 1 ] || fail "the plaintext capture does not show the message"
[ "$enc_hits" -eq 0 ] || fail "the encrypted capture shows the message"
# Both captures are Veil sessions: the record magic "VL" is in the clear.
grep -a -q 'VL' "$T/encrypted.pcap" || fail "no Veil records in the encrypted capture"
pass "plaintext capture shows the message, encrypted capture does not"
