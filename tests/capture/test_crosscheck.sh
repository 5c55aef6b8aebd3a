#!/usr/bin/env bash
# capture.crosscheck: veil-capture and the Wireshark plugin (dissector/) agree
# on every record of every capture that has the dissector's goldens
# (captures/NAME.tshark*.txt): direction, record type, sequence number, body
# length and decrypted text, record by record, with the capture's keylog.
# Skipped (77) without tshark, without the built plugin, or before the
# dissector's goldens exist.
. "$(dirname "$0")/lib.sh"

command -v tshark >/dev/null || skip "tshark not installed"
command -v python3 >/dev/null || skip "python3 not installed"
PLUGIN=$(find "${VEIL_BUILD:-/nonexistent}" -path '*plugins*' -name veil.so 2>/dev/null | head -1 || true)
[ -n "$PLUGIN" ] || skip "the Wireshark plugin is not built (dissector/, needs wireshark-dev)"
# Every capture the dissector has golden files for (NAME.tshark*.txt).
names=()
for g in "$CAPS"/*.tshark*.txt; do
    [ -f "$g" ] || continue
    n=$(basename "$g")
    n=${n%%.tshark*}
    [ -f "$CAPS/$n.pcap" ] || continue
    case " ${names[*]-} " in *" $n "*) ;; *) names+=("$n") ;; esac
done
[ ${#names[@]} -gt 0 ] || skip "no captures/*.tshark*.txt yet"

ABI=$(tshark --version 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([0-9]*\.[0-9]*\).*/\1/p')
RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
    # As root tshark ignores WIRESHARK_PLUGIN_DIR (shared/WIRESHARK.md): run it as nobody.
    command -v setpriv >/dev/null || skip "root without setpriv"
    RUNAS=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
    "${RUNAS[@]}" true 2>/dev/null || skip "cannot switch to nobody"
fi
W=$T/world # readable by nobody: $T is made traversable
chmod a+rx "$T"
mkdir -p "$W/plugins/$ABI/epan" "$W/home" "$W/caps"
cp "$PLUGIN" "$W/plugins/$ABI/epan/veil.so"
cp "$CAPS"/*.pcap "$W/caps/"
cp "$CAPS"/*.pcapng "$W/caps/" 2>/dev/null || true
cp "$CAPS"/*.keys "$W/caps/" 2>/dev/null || true
chmod -R a+rX "$W"

# A plugin built with -DVEIL_SANITIZE=ON needs its sanitizer runtime preloaded
# into the uninstrumented tshark (shared/WIRESHARK.md); leak checks off there.
SAN_ENV=()
asan=$(ldd "$PLUGIN" 2>/dev/null | awk '/libasan|libclang_rt\.asan/ { print $3; exit }')
if [ -n "$asan" ]; then
    SAN_ENV=(LD_PRELOAD="$asan" ASAN_OPTIONS=detect_leaks=0)
elif nm -D "$PLUGIN" 2>/dev/null | grep -q ' U __asan_'; then
    skip "the plugin is sanitized with a runtime tshark cannot preload"
fi

RS=$'\x1e'
# check LABEL FILE [KEYS] [--want-text]: both decoders, record by record.
check() {
    local label=$1 file=$2 keys=${3:-} want=${4:-}
    local keyopt=() vkeys=()
    if [ -n "$keys" ]; then
        keyopt=(-o "veil.keylog_file:$W/caps/$keys")
        vkeys=(--keylog "$CAPS/$keys")
    fi
    "${RUNAS[@]}" env -i PATH=/usr/bin:/bin HOME="$W/home" TZ=UTC WIRESHARK_PLUGIN_DIR="$W/plugins" "${SAN_ENV[@]}" \
        tshark -r "$W/caps/$file" "${keyopt[@]}" -Y veil -T fields -E separator=/t -E occurrence=a \
        -E "aggregator=$RS" -e veil.direction -e veil.type -e veil.seq -e veil.length -e veil.app.text \
        >"$T/$label.tshark" 2>"$T/$label.tshark.err" || fail "$label: tshark failed: $(head -3 "$T/$label.tshark.err")"
    "$VC" -r "$CAPS/$file" "${vkeys[@]}" --json >"$T/$label.json"
    python3 - "$T/$label.tshark" "$T/$label.json" "$label" "$want" <<'PY' || fail "$label: veil-capture and the dissector disagree"
import json, sys
RS = "\x1e"
ts, js, name, want = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
types = {"handshake": "1", "alert": "2", "appdata": "3", "key_update": "4"}
a = []
for line in open(ts, encoding="utf-8", errors="replace"):
    f = line.rstrip("\n").split("\t")
    f += [""] * (5 - len(f))
    cols = [c.split(RS) if c else [] for c in f[:4]]
    n = len(cols[2])
    texts = f[4].split(RS) if f[4] else []
    for i in range(n):
        a.append([cols[0][i] if i < len(cols[0]) else "", cols[1][i] if i < len(cols[1]) else "",
                  cols[2][i], cols[3][i] if i < len(cols[3]) else "", None])
    # texts belong to the appdata records of the frame that have one, in order
    k = 0
    for rec in a[len(a) - n:]:
        if rec[1] == "3" and k < len(texts):
            rec[4] = texts[k]
            k += 1
b = []
for line in open(js):
    o = json.loads(line)
    if o.get("event") != "record":
        continue
    t = o.get("message", {}).get("text") if o["type"] == "appdata" else None
    b.append(["0" if o["dir"] == "C>S" else "1", types.get(o["type"], "?"), str(o["seq"]), str(o["length"]), t])
# The dissector keeps per-direction order; compare per direction.
bad = 0
for d in "01":
    x = [r for r in a if r[0] == d]
    y = [r for r in b if r[0] == d]
    if len(x) != len(y):
        print(f"{name}: direction {d}: dissector {len(x)} records, veil-capture {len(y)}")
        bad += 1
    for i, (p, q) in enumerate(zip(x, y)):
        if p[1:4] != q[1:4] or (q[4] is not None and p[4] != q[4]) or (q[4] is None and p[4]):
            print(f"{name}: direction {d} record {i}: dissector {p} / veil-capture {q}")
            bad += 1
texts = sum(1 for r in b if r[4])
if want and texts == 0:
    print(f"{name}: no text was recovered")
    bad += 1
print(f"{name}: {len(b)} records compared ({texts} texts), {bad} differences")
sys.exit(1 if bad else 0)
PY
}

for n in "${names[@]}"; do
    if [ -f "$CAPS/$n.keys" ]; then check "$n" "$n.pcap" "$n.keys"; else check "$n" "$n.pcap"; fi
done
# The decrypted exports: the dissector reads them as plaintext, without keys.
for x in "$CAPS"/*.decrypted.pcapng; do
    [ -f "$x" ] || continue
    check "$(basename "$x" .pcapng)" "$(basename "$x")" "" want-text
done
pass "veil-capture and the dissector agree on ${#names[@]} captures"
