#!/usr/bin/env bash
# bench/decode.sh BUILD_DIR - decoding benchmark: veil-capture against tshark
# with our Wireshark plugin, records per second on the same large captures.
#
# Two captures are made by veil-mkcap (bench/mkcap.c) in a temporary folder
# under /dev/shm (removed on exit): one of plaintext sessions, one of
# encrypted sessions (AES_256_GCM_SHA256) with its keylog.  Each has
# SESSIONS sessions of MESSAGES client texts of SIZE bytes, sent in flights of
# 4 and each acknowledged by the server, cut into 1460-byte TCP segments.
#
# The workload is the same for both tools: decode every record and write one
# line of output per record, decrypted text included:
#   veil-capture -r F [--keylog K] > OUT      (its default output: time,
#       stream, direction, type, seq, length, protection, content)
#   tshark -r F [-o veil.keylog_file:K] -T fields -E occurrence=a -e ...
#       frame.time_epoch tcp.stream veil.direction veil.type veil.seq
#       veil.length veil.decrypt_status veil.crc.status veil.app.kind
#       veil.app.timestamp veil.app.text   (one line per frame, the values of
#       a frame's several records joined by ',')
# Each tool first runs once with its output kept in a file and counted: the
# number of records, of decrypted records and of message texts must be the
# same for veil-capture, tshark and what veil-mkcap wrote, no record may have
# failed to decrypt, and neither tool may write on stderr; otherwise the
# section fails (exit 1) without printing a ratio.  The timed runs then write
# the same output to /dev/null, so that the figure is the decoder's and not
# the file system's (writing the ~65 MB of veil-capture's text to tmpfs adds
# about 0.05 s to its 0.1-0.2 s; tshark's output is a smaller share of its time).
#
# tshark loads the plugin from BUILD_DIR/dissector/plugins through
# WIRESHARK_PLUGIN_DIR.  As root, tshark ignores that variable
# (shared/WIRESHARK.md), so it is run as the user nobody (setpriv), exactly as
# tests/dissector/dissector_test.sh does; the temporary folder is
# world-readable for that.  The plugin must be listed by `tshark -G plugins`
# and tshark's stderr must stay empty.
#
# Rate = records / wall seconds of the whole process (start-up included),
# median of RUNS runs.  Environment: SESSIONS (200), MESSAGES (1000),
# SIZE (100), RUNS (3).  About 45 s on 2 cores, most of it tshark.
set -euo pipefail

BUILD=${1:?usage: bench/decode.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

SESSIONS=${SESSIONS:-200}
MESSAGES=${MESSAGES:-1000}
SIZE=${SIZE:-100}
RUNS=${RUNS:-3}
TARGET=20
MKCAP=$BUILD/bench/veil-mkcap
CAPTURE=$BUILD/apps/veil-capture
PLUGIN=$BUILD/dissector/plugins
TSHARK=${TSHARK:-$(command -v tshark || true)}

die() {
    echo "decode.sh: FAILED: $*" >&2
    exit 1
}
[ -x "$MKCAP" ] || die "no $MKCAP (build with VEIL_BUILD_BENCH=ON)"
[ -x "$CAPTURE" ] || die "no $CAPTURE"
[ -n "$TSHARK" ] || die "tshark is not installed"
ABI=$("$TSHARK" --version 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([0-9]*\.[0-9]*\).*/\1/p')
[ -n "$ABI" ] || die "cannot read the Wireshark version from tshark --version"
[ -f "$PLUGIN/$ABI/epan/veil.so" ] || die "no plugin at $PLUGIN/$ABI/epan/veil.so (Wireshark SDK missing?)"
case "$RUNS" in [1-9]) ;; *) die "RUNS must be 1 to 9" ;; esac

RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null || die "running as root: tshark ignores the plugin folder, and setpriv is missing"
    NOBODY_GROUP=$(id -gn nobody 2>/dev/null) || die "running as root and there is no user nobody"
    RUNAS=(setpriv --reuid=nobody "--regid=$NOBODY_GROUP" --clear-groups)
fi

T=$(mktemp -d /dev/shm/veil-decode.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/plugins/$ABI/epan" "$T/home" "$T/out"
cp "$PLUGIN/$ABI/epan/veil.so" "$T/plugins/$ABI/epan/veil.so"

bench_note "decode: making the captures ($SESSIONS sessions x $MESSAGES texts of $SIZE bytes, acknowledged)"
mk() { # mk NAME ARGS...: the capture NAME.pcap; prints the records written
    local name=$1 line
    shift
    line=$(timeout 120 "$MKCAP" -w "$T/$name.pcap" -n "$SESSIONS" -m "$MESSAGES" -s "$SIZE" "$@" 2>&1) ||
        die "veil-mkcap: $line"
    bench_note "  $name.pcap: $line"
    sed -n 's/.* packets, \([0-9]*\) records,.*/\1/p' <<<"$line"
}
REC_PLAIN=$(mk plain --plain)
REC_ENC=$(mk enc --keylog "$T/enc.keys" --suite AES_256_GCM_SHA256)
[ -n "$REC_PLAIN" ] && [ -n "$REC_ENC" ] || die "veil-mkcap did not report its record counts"
# Texts and acks (appdata records) per capture; every other record is one of
# the 5 handshake records or 2 close_notify alerts of a session.
TEXTS=$((SESSIONS * MESSAGES * 2))
[ "$REC_PLAIN" -eq $((TEXTS + 7 * SESSIONS)) ] || die "plain.pcap: $REC_PLAIN records, expected $((TEXTS + 7 * SESSIONS))"
[ "$REC_ENC" -eq "$REC_PLAIN" ] || die "enc.pcap: $REC_ENC records, plain.pcap $REC_PLAIN"
chmod -R a+rX,go-w "$T"
chmod a+rwx "$T/out" "$T/home"
if [ ${#RUNAS[@]} -gt 0 ]; then
    "${RUNAS[@]}" test -r "$T/enc.keys" || die "$T is not readable by nobody"
fi

ts() { # ts OUT ARGS...: tshark with the plugin, stdout to OUT; stderr must stay empty
    local out=$1 err=$T/out/tshark.err
    shift
    "${RUNAS[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home" TZ=UTC LC_ALL=C.UTF-8 \
        WIRESHARK_PLUGIN_DIR="$T/plugins" timeout 300 "$TSHARK" "$@" >"$out" 2>"$err" ||
        { local rc=$?; cat "$err" >&2; die "tshark $* exited with $rc"; }
    [ ! -s "$err" ] || { cat "$err" >&2; die "tshark $* wrote to stderr"; }
}
ts "$T/out/plugins" -G plugins
grep -q 'veil\.so' "$T/out/plugins" || die "tshark did not load the plugin (tshark -G plugins)"

FIELDS=(-T fields -E separator=/t -E occurrence=a -E aggregator=, -e frame.time_epoch -e tcp.stream
    -e veil.direction -e veil.type -e veil.seq -e veil.length -e veil.decrypt_status -e veil.crc.status
    -e veil.app.kind -e veil.app.timestamp -e veil.app.text)

# Counts in an output: "RECORDS DECRYPTED TEXTS FAILED" (FAILED: records that
# are neither plaintext nor decrypted).
count_tshark() {
    awk -F'\t' '
        function n(s, a) { return s == "" ? 0 : split(s, a, ",") }
        { r += n($5); t += n($11)
          k = split($7, st, ",")
          for (i = 1; i <= k; i++) if (st[i] == "decrypted") d++; else f++ }
        END { printf "%d %d %d %d\n", r, d, t, f }' "$1"
}
count_veil() {
    awk '
        / seq=[0-9]/ { r++; if ($0 ~ / appdata seq=[0-9]+ len=[0-9]+ (clear|enc:decrypted) (text|ack) "/) t++ }
        / enc:decrypted / { d++ }
        / enc:[a-z_]+ / && !/ enc:decrypted / { f++ }
        / clear!/ { f++ }
        END { printf "%d %d %d %d\n", r, d, t, f }' "$1"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# vrun OUT ARGS... / trun OUT ARGS...: one run of each tool, stdout to OUT.
vrun() {
    local out=$1
    shift
    timeout 300 "$CAPTURE" "$@" >"$out" 2>"$T/out/veil.err" ||
        { local rc=$?; cat "$T/out/veil.err" >&2; die "veil-capture $* exited with $rc"; }
    [ ! -s "$T/out/veil.err" ] || { cat "$T/out/veil.err" >&2; die "veil-capture $* wrote to stderr"; }
}
trun() { ts "$@"; }

# elapsed CMD ARGS...: runs it, prints its wall time in seconds.
elapsed() {
    local t0 t1
    t0=$(bench_now)
    "$@"
    t1=$(bench_now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}

# run_case NAME CAPTURE EXPECT_DECRYPTED [KEYLOG]: first one run of each
# tool with its output kept and counted (any disagreement fails the
# section), then RUNS timed runs of each, output to /dev/null (the same
# work: every line is formatted and written); sets VEIL_RATE and TS_RATE.
run_case() {
    local name=$1 cap=$2 want_dec=$3 keys=${4:-} i got t
    local expect="$REC_PLAIN $want_dec $TEXTS 0"
    local vargs=(-r "$cap") targs=(-r "$cap")
    if [ -n "$keys" ]; then
        vargs+=(--keylog "$keys")
        targs+=(-o "veil.keylog_file:$keys")
    fi
    targs+=("${FIELDS[@]}")
    vrun "$T/out/veil.txt" "${vargs[@]}"
    got=$(count_veil "$T/out/veil.txt")
    [ "$got" = "$expect" ] || die "$name: veil-capture saw records/decrypted/texts/failed = $got, expected $expect"
    grep -q "^  records:  $REC_PLAIN (" "$T/out/veil.txt" || die "$name: veil-capture's summary disagrees"
    trun "$T/out/tshark.txt" "${targs[@]}"
    got=$(count_tshark "$T/out/tshark.txt")
    [ "$got" = "$expect" ] || die "$name: tshark saw records/decrypted/texts/failed = $got, expected $expect"
    bench_note "  $name: both decoded records/decrypted/texts/failed = $got; outputs $(stat -c %s "$T/out/veil.txt") and $(stat -c %s "$T/out/tshark.txt") bytes"
    rm -f "$T/out/veil.txt" "$T/out/tshark.txt"
    local vt=() tt=()
    for ((i = 1; i <= RUNS; i++)); do
        t=$(elapsed vrun /dev/null "${vargs[@]}") || die "$name: veil-capture failed"
        vt+=("$t")
        t=$(elapsed trun /dev/null "${targs[@]}") || die "$name: tshark failed"
        tt+=("$t")
        bench_note "  $name run $i: veil-capture ${vt[-1]} s, tshark ${tt[-1]} s"
    done
    local vmed tmed
    vmed=$(printf '%s\n' "${vt[@]}" | median)
    tmed=$(printf '%s\n' "${tt[@]}" | median)
    VEIL_RATE=$(bench_div "$REC_PLAIN" "$vmed" 0)
    TS_RATE=$(bench_div "$REC_PLAIN" "$tmed" 0)
}

row() { # row LABEL
    local ratio met
    ratio=$(bench_div "$VEIL_RATE" "$TS_RATE" 1)
    met=$(bench_met ge "$VEIL_RATE" "$TS_RATE" "$TARGET")
    bench_row "$1" "$VEIL_RATE" "records/s" "tshark + plugin" "$TS_RATE" "$ratio" "≥ ${TARGET}×" "$met"
}

bench_note "decode: plaintext, $REC_PLAIN records ($(stat -c %s "$T/plain.pcap") bytes), $RUNS runs each"
run_case plaintext "$T/plain.pcap" 0
row "decode, plaintext"
# Decrypted: every record after the 5 clear handshake records of a session.
bench_note "decode: decrypting, $REC_ENC records ($(stat -c %s "$T/enc.pcap") bytes), $RUNS runs each"
run_case decrypting "$T/enc.pcap" $((REC_ENC - 5 * SESSIONS)) "$T/enc.keys"
row "decode, decrypting"
