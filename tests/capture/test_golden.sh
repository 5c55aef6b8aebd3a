#!/usr/bin/env bash
# capture.golden: every golden decode of captures/ (veil-capture text, JSON,
# -V, without and with wrong keys, the decrypted export, compare) equals what
# veil-capture prints now.  The commands are captures/make.sh's own
# (--decodes-only), so the test and the regeneration cannot drift apart.
# A difference means the wire format or a decoder changed: regenerate on
# purpose with `bash captures/make.sh --decodes-only BUILD_DIR` and review.
. "$(dirname "$0")/lib.sh"

OUT=$T/corpus
mkdir -p "$OUT"
n=0
for f in "$CAPS"/*.pcap "$CAPS"/*.keys; do
    [ -f "$f" ] || continue
    cp "$f" "$OUT/"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no captures in $CAPS"
VEIL_CAPTURE=$VC bash "$CAPS/make.sh" --decodes-only --out "$OUT" "${VEIL_BUILD:-.}" >"$T/make.log" 2>&1 ||
    fail "make.sh --decodes-only failed: $(tail -5 "$T/make.log")"

checked=0
for f in "$OUT"/*; do
    b=$(basename "$f")
    case $b in *.pcap | *.keys) continue ;; esac
    [ -f "$CAPS/$b" ] || fail "captures/$b is missing (make.sh produces it: regenerate and commit)"
    if ! cmp -s "$CAPS/$b" "$f"; then
        case $b in
        *.pcapng) fail "captures/$b differs from the export made now" ;;
        *) diff -u "$CAPS/$b" "$f" | head -40 >&2; fail "captures/$b differs from veil-capture's output" ;;
        esac
    fi
    checked=$((checked + 1))
done
# No stale golden: every file of these kinds in captures/ is one make.sh makes.
for f in "$CAPS"/*.decode.txt "$CAPS"/*.decode.json "$CAPS"/*.verbose.txt "$CAPS"/*.nokeys.txt \
    "$CAPS"/*.wrongkeys.txt "$CAPS"/*.decrypted.pcapng "$CAPS"/*.decrypted.txt "$CAPS"/compare-*.txt; do
    [ -f "$f" ] || continue
    [ -f "$OUT/$(basename "$f")" ] || fail "captures/$(basename "$f") is not made by make.sh any more"
done
[ "$checked" -ge 20 ] || fail "only $checked golden files checked"
pass "$checked golden decodes equal veil-capture's output"
