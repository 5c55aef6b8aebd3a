#!/usr/bin/env bash
# capture.live: veil-capture capturing on lo while a plaintext and an
# encrypted session run (root only; skipped otherwise).  It decodes both live,
# decrypts the second with the keylog the server writes during the capture,
# saves the packets with -w and a decrypted copy, and on Ctrl-C (SIGINT) exits 0 leaving a complete
# file that libpcap, tcpdump and veil-capture -r read.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "live capture needs root"
corpus_key
start_server srv "$KEY" --allow-plain --keylog "$T/srv.keys"
FP=$(grep -oE 'identity sha256:[0-9a-f]{64}' "$T/srv.log" | head -1 | cut -d' ' -f2)
[ -n "$FP" ] || fail "no fingerprint in the server log"

"$VC" -i lo -f "tcp port $PORT" -w "$T/live.pcap" --keylog "$T/srv.keys" \
    --export-decrypted "$T/live-clear.pcapng" >"$T/live.txt" 2>"$T/live.err" &
CPID=$!
PIDS+=("$CPID")
wait_for "$T/live.err" 'listening on lo' 10 || fail "veil-capture did not start"
# Packets reach the file as soon as they are seen (-w flushes each one):
# probe until the file grows past its 24-byte header (bounded, 5 s).
ready=0
for _ in $(seq 1 50); do
    exec 3<>"/dev/tcp/127.0.0.1/$PORT" && exec 3<&-
    sleep 0.1
    if [ "$(stat -c %s "$T/live.pcap" 2>/dev/null || echo 0)" -gt 24 ]; then
        ready=1
        break
    fi
done
[ "$ready" = 1 ] || fail "veil-capture captures nothing on lo"

run c1 timeout 20 "$VEIL_CLIENT" --fingerprint "$FP" --plain -m "live plaintext canary" 127.0.0.1 "$PORT"
expect_rc 0 "plaintext client" c1
run c2 timeout 20 "$VEIL_CLIENT" --fingerprint "$FP" -m "live encrypted canary" 127.0.0.1 "$PORT"
expect_rc 0 "encrypted client" c2
wait_for "$T/live.txt" 'text "live encrypted canary"' 5 ||
    fail "the encrypted message was not decrypted live (keylog written during the capture)"
grep -q 'clear text "live plaintext canary"' "$T/live.txt" || fail "the plaintext message was not shown live"

kill -INT "$CPID"
wait_exit "$CPID" 5 || fail "veil-capture did not stop on SIGINT"
[ "$WAIT_STATUS" -eq 0 ] || fail "veil-capture exited with $WAIT_STATUS on SIGINT"
grep -q '^summary:' "$T/live.txt" || fail "no summary after Ctrl-C"

run r1 "$VC" -r "$T/live.pcap" --keylog "$T/srv.keys"
expect_rc 0 "reading the saved capture" r1
grep -q 'text "live plaintext canary"' "$T/r1.txt" || fail "saved capture: plaintext message missing"
grep -q 'enc:decrypted text "live encrypted canary"' "$T/r1.txt" || fail "saved capture: encrypted message not decrypted"
run r2 "$VC" -r "$T/live-clear.pcapng"
expect_rc 0 "reading the live export" r2
grep -q 'comment: veil-decrypted dir=C>S seq=2 type=appdata' "$T/r2.txt" || fail "the live export has no marks"
grep -q 'clear text "live encrypted canary"' "$T/r2.txt" || fail "the live export is not in clear"
if command -v tcpdump >/dev/null; then
    n=$(tcpdump -n -r "$T/live.pcap" 2>/dev/null | wc -l)
    [ "$n" -ge 20 ] || fail "tcpdump reads only $n packets from the saved capture"
fi
pass "live capture decoded and decrypted both sessions; Ctrl-C left a complete file"

# --duration ends a capture even when nothing arrives.
start=$(date +%s%N)
run d1 "$VC" -i lo -f "tcp port 9" -d 0.5 -q
expect_rc 0 "--duration" d1
elapsed=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed" -lt 4000 ] || fail "--duration 0.5 took $elapsed ms"
pass "--duration stops an idle capture"
