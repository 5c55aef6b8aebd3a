#!/usr/bin/env bash
# capture.cli: veil-capture's command line on the corpus: clear errors and
# exit statuses (usage, missing or unreadable file, not a capture, corrupt or
# truncated file, bad filter, keys, no permission, no such interface), the
# link types it reads (Ethernet, Linux cooked v1/v2, raw IP, BSD null, and
# pcapng), --export-decrypted, compare, the relay of a default build, and
# that a default build has no test hooks.
. "$(dirname "$0")/lib.sh"

PLAIN=$CAPS/plain-msg.pcap
GCM=$CAPS/gcm-msg.pcap
[ -f "$PLAIN" ] && [ -f "$GCM" ] || fail "the corpus is missing ($CAPS)"

# ---- usage --------------------------------------------------------------------
run u1 "$VC" --bogus
expect_rc 1 "unknown option" u1
grep -q "unknown option '--bogus'" "$T/u1.err" || fail "unknown option not named"
run u2 "$VC" -r "$PLAIN" -i lo
expect_rc 1 "-r with -i" u2
run u3 "$VC" compare "$PLAIN"
expect_rc 1 "compare with one file" u3
run u4 "$VC" replay "$PLAIN"
expect_rc 1 "replay without --to" u4
run u5 "$VC" -r "$PLAIN" -f "tcp portx 1"
expect_rc 1 "bad filter" u5
grep -q "invalid filter 'tcp portx 1'" "$T/u5.err" || fail "bad filter not explained"
pass "usage errors"

# ---- files ------------------------------------------------------------------------
run f1 "$VC" -r "$T/nope.pcap"
expect_rc 2 "missing file" f1
grep -q "cannot read $T/nope.pcap: No such file or directory" "$T/f1.err" || fail "missing file not explained"
printf 'this is not a capture\n' >"$T/text.pcap"
run f2 "$VC" -r "$T/text.pcap"
expect_rc 2 "not a capture" f2
grep -q "is not a readable pcap or pcapng capture" "$T/f2.err" || fail "non-capture not explained"
size=$(stat -c %s "$GCM")
head -c $((size - 30)) "$GCM" >"$T/cut.pcap"
run f3 "$VC" -r "$T/cut.pcap" --keylog "$CAPS/gcm-msg.keys"
expect_rc 4 "truncated file" f3
grep -q "is corrupt or truncated after packet" "$T/f3.err" || fail "truncation not explained"
grep -q 'appdata seq=2 len=40 enc:decrypted text "hello plaintext"' "$T/f3.txt" ||
    fail "records before the truncation were not decoded"
grep -q '^summary:' "$T/f3.txt" || fail "no summary for a truncated file"
# A packet header claiming 4 GiB.
cp "$PLAIN" "$T/corrupt.pcap"
printf '\xff\xff\xff\x7f' | dd of="$T/corrupt.pcap" bs=1 seek=32 conv=notrunc status=none
run f4 "$VC" -r "$T/corrupt.pcap"
expect_rc 4 "corrupt file" f4
grep -q "is corrupt or truncated after packet 0" "$T/f4.err" || fail "corruption not explained"
if [ "$(id -u)" -ne 0 ]; then
    cp "$PLAIN" "$T/secret.pcap"
    chmod 000 "$T/secret.pcap"
    run f5 "$VC" -r "$T/secret.pcap"
    expect_rc 2 "unreadable file" f5
    grep -q "Permission denied" "$T/f5.err" || fail "unreadable file not explained"
fi
run f6 "$VC" -r "$GCM" --keylog "$T/nope.keys"
expect_rc 6 "missing keylog" f6
grep -q "cannot read $T/nope.keys" "$T/f6.err" || fail "missing keylog not explained"
corpus_key
run f7 "$VC" -r "$GCM" --rsa-key "$KEY"
expect_rc 6 "Ed25519 key as --rsa-key" f7
grep -q "only an RSA server key decrypts" "$T/f7.err" || fail "--rsa-key with Ed25519 not explained"
if "$VEIL_KEYGEN" --help 2>/dev/null | grep -q -- '--rsa'; then
    "$VEIL_KEYGEN" -q --rsa --bits 2048 -o "$T/rsa.key" >/dev/null
    run f8 "$VC" -r "$GCM" --rsa-key "$T/rsa.key" --keylog "$CAPS/gcm-msg.keys"
    expect_rc 0 "an RSA key for --rsa-key" f8
    grep -q 'enc:decrypted' "$T/f8.txt" || fail "--rsa-key stopped the keylog from working"
fi
pass "file and key errors"

# ---- capture errors -----------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    run c1 "$VC" -i veilnope0 -d 0.2
    expect_rc 2 "missing interface" c1
    grep -q "no such interface 'veilnope0'" "$T/c1.err" || fail "missing interface not explained"
    if command -v setpriv >/dev/null && setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null &&
        setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$VC"; then
        run c2 setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$VC" -i lo -d 0.2
        expect_rc 2 "capture as nobody" c2
        grep -q "no permission to capture on 'lo'" "$T/c2.err" || fail "missing permission not explained"
        pass "no such interface; no permission (as nobody)"
    else
        pass "no such interface (the permission check needs setpriv and a readable build)"
    fi
else
    run c2 "$VC" -i lo -d 0.2
    expect_rc 2 "capture without privileges" c2
    grep -q "no permission to capture on 'lo'" "$T/c2.err" || fail "missing permission not explained"
    pass "no permission to capture"
fi

# ---- link types and pcapng --------------------------------------------------------------
if command -v python3 >/dev/null; then
    python3 - "$PLAIN" "$T" <<'PY'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
hdr, body = data[:24], data[24:]
pkts = []
i = 0
while i < len(body):
    ts, us, cap, ln = struct.unpack("<IIII", body[i:i + 16])
    pkts.append((ts, us, body[i + 16:i + 16 + cap]))
    i += 16 + cap
def pcap(name, linktype, conv):
    with open(out + "/" + name, "wb") as f:
        f.write(hdr[:20] + struct.pack("<I", linktype))
        for ts, us, fr in pkts:
            g = conv(fr)
            f.write(struct.pack("<IIII", ts, us, len(g), len(g)) + g)
ip = lambda fr: fr[14:]
pcap("raw.pcap", 101, ip)
pcap("sll.pcap", 113, lambda fr: struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, 0x0800) + ip(fr))
pcap("sll2.pcap", 276, lambda fr: struct.pack(">HHIHBB8s", 0x0800, 0, 1, 772, 0, 6, b"\0" * 8) + ip(fr))
pcap("null.pcap", 0, lambda fr: struct.pack("<I", 2) + ip(fr))
pcap("vlan.pcap", 1, lambda fr: fr[:12] + b"\x81\x00\x00\x07" + fr[12:])
# pcapng: SHB, IDB (EN10MB, microseconds), EPBs
def blk(t, b):
    b += b"\0" * (-len(b) % 4)
    return struct.pack("<II", t, len(b) + 12) + b + struct.pack("<I", len(b) + 12)
ng = blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
ng += blk(1, struct.pack("<HHI", 1, 0, 262144))
for ts, us, fr in pkts:
    t = ts * 1000000 + us
    ng += blk(6, struct.pack("<IIIII", 0, t >> 32, t & 0xffffffff, len(fr), len(fr)) + fr)
open(out + "/ng.pcapng", "wb").write(ng)
PY
    "$VC" -r "$PLAIN" >"$T/eth.txt"
    for f in raw sll sll2 null vlan ng; do
        ext=pcap
        [ "$f" = ng ] && ext=pcapng
        run "lt-$f" "$VC" -r "$T/$f.$ext"
        expect_rc 0 "link type $f" "lt-$f"
        diff -u "$T/eth.txt" "$T/lt-$f.txt" >&2 || fail "decoding the $f capture differs from Ethernet"
    done
    pass "link types: Ethernet, VLAN, raw IP, Linux cooked v1 and v2, BSD null, pcapng"
fi

# ---- export -------------------------------------------------------------------------------
run x1 "$VC" -r "$GCM" --keylog "$CAPS/gcm-msg.keys" -q --export-decrypted "$T/dec.pcapng"
expect_rc 0 "export" x1
grep -q "exported $T/dec.pcapng: 6 records rewritten in clear" "$T/x1.err" || fail "export summary wrong: $(cat "$T/x1.err")"
run x2 "$VC" -r "$T/dec.pcapng"
expect_rc 0 "reading the export" x2
grep -q 'enc:' "$T/x2.txt" && fail "the export still has encrypted records"
[ "$(grep -c 'comment: veil-decrypted dir=' "$T/x2.txt")" -eq 6 ] || fail "the export does not mark 6 records"
grep -q 'C>S appdata seq=2 len=28 clear text "hello plaintext"' "$T/x2.txt" || fail "export: first message not in clear"
grep -q '0 failures\|failures: 0 ' "$T/x2.txt" || fail "export: records fail their checks"
run x3 "$VC" -r "$GCM" --export-decrypted "$GCM"
expect_rc 1 "export over the input" x3
if command -v tshark >/dev/null; then
    tshark -r "$T/dec.pcapng" -T fields -e frame.comment 2>/dev/null | grep -c 'veil-decrypted' >"$T/tc.txt" || true
    [ "$(cat "$T/tc.txt")" -eq 6 ] || fail "tshark does not see the 6 packet comments of the export"
    bad=$(tshark -r "$T/dec.pcapng" -Y 'tcp.analysis.flags && !tcp.analysis.window_update' 2>/dev/null | wc -l)
    [ "$bad" -eq 0 ] || fail "tshark finds TCP problems in the export"
    pass "export: 6 records in clear, marked, and a clean TCP stream for tshark"
else
    pass "export: 6 records in clear and marked"
fi

# ---- compare ------------------------------------------------------------------------------
run k1 "$VC" compare "$PLAIN" "$GCM"
expect_rc 0 "compare" k1
sed -n '/^strings readable in A/,/^strings readable in B/p' "$T/k1.txt" | grep -q '"hello plaintext"' ||
    fail "compare: the plaintext message is not among A's strings"
sed -n '/^strings readable in B/,$p' "$T/k1.txt" | grep -q 'hello plaintext' &&
    fail "compare: the encrypted capture leaks the message"
grep -q 'content bytes readable, 0 hidden' "$T/k1.txt" || fail "compare: no totals"
pass "compare"

# ---- a default build: relay works, test hooks are absent ---------------------------------------
if ! grep -q '^VEIL_TEST_HOOKS:BOOL=ON' "${VEIL_BUILD:-/nonexistent}/CMakeCache.txt" 2>/dev/null; then
    run h1 "$VC" relay --listen 0 --to 127.0.0.1:1 -w "$T/x.pcap" --test-tamper
    expect_rc 1 "a test-only option in a default build" h1
    a=$(VEIL_TEST_SEED=same "$VEIL_KEYGEN" -q -o "$T/k1.key")
    b=$(VEIL_TEST_SEED=same "$VEIL_KEYGEN" -q -o "$T/k2.key")
    [ "$a" != "$b" ] || fail "VEIL_TEST_SEED changes a default build"
    pass "a default build has no test hooks"
fi
start_server srv "$KEY" --keylog "$T/srv.keys"
"$VC" relay --listen 127.0.0.1:0 --to "127.0.0.1:$PORT" -w "$T/relay.pcap" --segments split:5 \
    2>"$T/relay.err" &
RPID=$!
PIDS+=("$RPID")
wait_for "$T/relay.err" 'listening on' 5 || fail "relay did not start"
RPORT=$(port_of "$T/relay.err")
FP=$("$VEIL_KEYGEN" --show "$KEY" 2>/dev/null | grep -oE 'sha256:[0-9a-f]{64}' | head -1 || true)
if [ -z "$FP" ]; then FP=$(grep -oE 'sha256:[0-9a-f]{64}' "$CAPS/plain-msg.decode.txt" | head -1); fi
run cl timeout 20 "$VEIL_CLIENT" --fingerprint "$FP" -m "through the relay" 127.0.0.1 "$RPORT"
expect_rc 0 "client through the relay" cl
wait_exit "$RPID" 10 || fail "relay did not exit"
[ "$WAIT_STATUS" -eq 0 ] || fail "relay failed"
run r1 "$VC" -r "$T/relay.pcap" --keylog "$T/srv.keys"
expect_rc 0 "decode the relay's capture" r1
grep -q 'text "through the relay"' "$T/r1.txt" || fail "the relay's capture does not decrypt"
grep -q ' 0 gaps' "$T/r1.txt" || fail "the relay's capture has gaps"
pass "relay records a session without privileges (split into 5-byte segments)"
