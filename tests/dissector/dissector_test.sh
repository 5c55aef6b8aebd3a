#!/usr/bin/env bash
# tests/dissector/dissector_test.sh - the Wireshark plugin (dissector/) under
# tshark, on the recorded sessions of captures/ (captures/README.md).
#
#     bash dissector_test.sh PLUGIN CAPTURES_DIR CASE
#
# PLUGIN is the built veil.so, CAPTURES_DIR the corpus, CASE one of the
# functions case_* below (ctest runs each as dissector.CASE).
#
# As root, tshark ignores WIRESHARK_PLUGIN_DIR and the personal plugin folder
# (measured with tshark 4.0.17), and CI runs as root: tshark is then run as
# the unprivileged user nobody (setpriv), on copies of the plugin, captures
# and keys in a world-readable temporary folder.  Not root: tshark runs as
# the current user, the same way.  Root without a working setpriv: skipped
# (exit 77).  Every tshark run must exit 0 with an empty stderr (a plugin
# that fails to load only prints a line there).
#
# Golden files: captures/<capture>.tshark*.txt, exact tshark output with
# TZ=UTC.  VEIL_REGEN=1 writes them instead of comparing (tests/dissector/
# regen.sh); every regenerated golden must be read by eye before commit.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 PLUGIN CAPTURES_DIR CASE" >&2
    exit 2
fi
PLUGIN=$1
CAPTURES=$2
CASE=$3
REGEN=${VEIL_REGEN:-0}
TSHARK=${TSHARK:-$(command -v tshark || true)}

fail() {
    echo "FAIL [$CASE]: $*" >&2
    exit 1
}
pass() { echo "ok: $*"; }
skip() {
    echo "skip: $*"
    exit 77
}

[ -n "$TSHARK" ] || skip "tshark not installed"
[ -f "$PLUGIN" ] || fail "no plugin at $PLUGIN"
[ -d "$CAPTURES" ] || fail "no captures folder $CAPTURES"

# Wireshark's major.minor: plugins live in <dir>/<major.minor>/epan/.
ABI=$("$TSHARK" --version 2>/dev/null | sed -n '1s/^TShark (Wireshark) \([0-9]*\.[0-9]*\).*/\1/p')
[ -n "$ABI" ] || fail "cannot read the Wireshark version from tshark --version"

RUNAS=()
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null || skip "running as root and setpriv is missing"
    NOBODY_GROUP=$(id -gn nobody 2>/dev/null || true)
    [ -n "$NOBODY_GROUP" ] || skip "running as root and there is no user nobody"
    RUNAS=(setpriv --reuid=nobody "--regid=$NOBODY_GROUP" --clear-groups)
    "${RUNAS[@]}" true 2>/dev/null || skip "running as root and setpriv cannot switch to nobody"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/veil-dissector.XXXXXX")
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] || [ "${VEIL_TEST_KEEP:-0}" = 1 ]; then
        echo "(kept $T)" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
mkdir -p "$T/plugins/$ABI/epan" "$T/home" "$T/caps"
cp "$PLUGIN" "$T/plugins/$ABI/epan/veil.so"
for f in "$CAPTURES"/*.pcap "$CAPTURES"/*.pcapng "$CAPTURES"/*.keys; do
    [ -f "$f" ] && cp "$f" "$T/caps/"
done
chmod -R a+rX,go-w "$T"
if [ ${#RUNAS[@]} -gt 0 ]; then
    "${RUNAS[@]}" test -r "$T/plugins/$ABI/epan/veil.so" ||
        fail "$T is not readable by nobody (a folder above it is private: set TMPDIR)"
fi
C=$T/caps

# A plugin built with -DVEIL_SANITIZE=ON needs gcc's ASan runtime preloaded
# (VEIL_ASAN_PRELOAD, set by CMake); tshark itself is not instrumented, so
# leak detection is off.  Any sanitizer report lands on stderr and fails.
SAN_ENV=()
if [ -n "${VEIL_ASAN_PRELOAD:-}" ]; then
    SAN_ENV=(LD_PRELOAD="$VEIL_ASAN_PRELOAD" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
fi

# ts NAME ARGS...: runs tshark; stdout in $T/NAME.out.  Fails if tshark exits
# non-zero or writes anything on stderr.
ts() {
    local name=$1 rc=0
    shift
    "${RUNAS[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home" TZ=UTC LC_ALL=C.UTF-8 \
        WIRESHARK_PLUGIN_DIR="$T/plugins" "${SAN_ENV[@]}" "$TSHARK" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$T/$name.err" >&2; fail "tshark $* exited with $rc"; }
    [ ! -s "$T/$name.err" ] || { cat "$T/$name.err" >&2; fail "tshark $* wrote to stderr"; }
}

# golden NAME FILE: $T/NAME.out must equal captures/FILE (VEIL_REGEN=1: write it).
golden() {
    local name=$1 file=$2
    if [ "$REGEN" = 1 ]; then
        cp "$T/$name.out" "$CAPTURES/$file"
        echo "wrote captures/$file"
        return
    fi
    [ -f "$CAPTURES/$file" ] || fail "missing golden captures/$file (bash tests/dissector/regen.sh BUILD_DIR)"
    diff -u "$CAPTURES/$file" "$T/$name.out" >&2 || fail "output differs from captures/$file"
    pass "captures/$file"
}

need() {
    local f
    for f in "$@"; do
        [ -f "$C/$f" ] || fail "captures/$f is missing"
    done
}

# The standard field lines of the goldens: one line per frame with a Veil
# record, values of a frame's several records joined by ','.
FIELDS=(-T fields -E separator=/t -E occurrence=a -E aggregator=,
    -e frame.number -e tcp.srcport -e veil.direction -e veil.seq -e veil.type -e veil.flags.encrypted
    -e veil.epoch -e veil.length -e veil.hs.type -e veil.decrypted -e veil.decrypt_status
    -e veil.crc.status -e veil.alert.level -e veil.alert.code -e veil.app.kind -e veil.app.timestamp
    -e veil.app.text -e veil.truncated -e _ws.col.Info -e _ws.expert.message)
# Handshake values, one line per handshake record.
HS_FIELDS=(-T fields -E separator=/t -E occurrence=a -E aggregator=,
    -e frame.number -e veil.hs.type -e veil.hs.length -e veil.hs.ch.version -e veil.hs.ch.mode
    -e veil.hs.ch.suite -e veil.hs.ch.group -e veil.hs.ch.key_share -e veil.hs.ch.random
    -e veil.hs.sh.version -e veil.hs.sh.mode -e veil.hs.sh.suite -e veil.hs.sh.group -e veil.hs.sh.random
    -e veil.hs.sh.key_share -e veil.hs.sh.fingerprint -e veil.hs.sv.sig_scheme -e veil.hs.sv.signature
    -e veil.hs.fin.verify_data -e veil.hs.service)

keys() { echo "veil.keylog_file:$C/$1"; }

# texts NAME: the veil.app.text values of $T/NAME.out (FIELDS order), one per line.
texts() {
    cut -f17 "$T/$1.out" | tr ',' '\n' | sed '/^$/d'
}

# expect_texts NAME TEXT...: the recovered texts are exactly these, in order.
expect_texts() {
    local name=$1
    shift
    local want
    want=$(printf '%s\n' "$@")
    [ "$(texts "$name")" = "$want" ] || { texts "$name" >&2; fail "$name: texts are not: $*"; }
    pass "$name: texts recovered exactly"
}

# ------------------------------------------------------------------------
# Cases

# The plugin loads, registers its protocol, fields, heuristic and preferences.
case_plugin() {
    # -G plugins and -G defaultprefs also run every extcap program, which hang
    # with the ASan runtime preloaded: under a sanitizer, -G protocols and the
    # fields prove the load.
    if [ ${#SAN_ENV[@]} -eq 0 ]; then
        ts plugins -G plugins
        grep -qE "^veil\.so[[:space:]]+[0-9.]+[[:space:]]+dissector[[:space:]]+$T/plugins/$ABI/epan/veil\.so\$" \
            "$T/plugins.out" || { cat "$T/plugins.out" >&2; fail "tshark -G plugins does not list veil.so"; }
        pass "plugin loaded from $T/plugins"
    fi
    ts protocols -G protocols
    grep -qP '^Veil\tVeil\tveil$' "$T/protocols.out" || fail "protocol veil not registered"
    ts heur -G heuristic-decodes
    grep -qP '^tcp\tveil\tT$' "$T/heur.out" || fail "heuristic veil_tcp on tcp not registered and enabled"
    ts decodes -G decodes
    grep -qP '^tcp\.port\t51424\tveil$' "$T/decodes.out" || fail "tcp.port 51424 not mapped to veil"
    if [ ${#SAN_ENV[@]} -eq 0 ]; then
        ts prefs -G defaultprefs
        local p
        for p in veil.desegment veil.keylog_file veil.rsa_key_file; do
            grep -q "^#$p:" "$T/prefs.out" || fail "preference $p missing"
        done
    fi
    # tshark refuses an unknown preference (exit 1): these three exist.
    need plain-msg.pcap
    ts o -r "$C/plain-msg.pcap" -c 1 -o veil.desegment:TRUE -o veil.keylog_file:/dev/null \
        -o veil.rsa_key_file:/dev/null
    ts fields -G fields
    local f
    for f in veil.magic veil.version veil.type veil.flags veil.flags.encrypted veil.epoch veil.length \
        veil.seq veil.seq.expected veil.direction veil.crc veil.crc.status veil.decrypted veil.decrypt_status \
        veil.truncated veil.encrypted_body veil.hs.type veil.hs.length veil.hs.ch.version veil.hs.ch.mode \
        veil.hs.ch.suite veil.hs.ch.group veil.hs.ch.key_share veil.hs.ch.random veil.hs.sh.version \
        veil.hs.sh.mode veil.hs.sh.suite veil.hs.sh.group veil.hs.sh.random veil.hs.sh.key_share \
        veil.hs.sh.identity veil.hs.sh.fingerprint veil.hs.sv.sig_scheme veil.hs.sv.signature \
        veil.hs.fin.verify_data veil.hs.service veil.hs.cke.ciphertext veil.hs.cv.fingerprint \
        veil.alert.level veil.alert.code veil.key_update.epoch veil.app.kind veil.app.timestamp veil.app.text; do
        grep -qP "^F\t[^\t]*\t\Q$f\E\t" "$T/fields.out" || fail "field $f not registered"
    done
    for f in veil.malformed veil.crc.bad veil.auth_failed veil.seq.unexpected veil.alert.fatal \
        veil.session_truncated; do
        grep -qP "\t\Q$f\E\t" "$T/fields.out" || fail "expert info $f not registered"
    done
    pass "protocol, heuristic, port, preferences, fields and expert infos registered"
}

# Plaintext mode: everything readable, CRCs good, the plaintext-mode note.
case_plain() {
    need plain-msg.pcap
    ts f -r "$C/plain-msg.pcap" -Y veil "${FIELDS[@]}"
    golden f plain-msg.tshark.txt
    expect_texts f "hello plaintext" "received 15 bytes" "second message" "received 14 bytes"
    if cut -f12 "$T/f.out" | tr ',' '\n' | sed '/^$/d' | grep -qv '^1$'; then
        fail "a CRC is not Good"
    fi
    ts hs -r "$C/plain-msg.pcap" -Y veil.hs.type "${HS_FIELDS[@]}"
    golden hs plain-msg.tshark-hs.txt
    ts v -r "$C/plain-msg.pcap" -Y veil -V -O veil
    golden v plain-msg.tshark-V.txt
    grep -q "Plaintext mode: application data and alerts are neither encrypted nor authenticated" "$T/v.out" ||
        fail "no plaintext-mode expert info"
}

# Encrypted sessions without keys: headers and handshake only, bodies opaque.
case_encrypted_nokeys() {
    local s
    for s in gcm-msg chacha-msg cbc-msg; do
        need "$s.pcap"
        ts "$s" -r "$C/$s.pcap" -Y veil "${FIELDS[@]}"
        golden "$s" "$s.tshark.txt"
        [ -z "$(texts "$s")" ] || fail "$s: text recovered without keys"
        grep -q "no key for this session" "$T/$s.out" || fail "$s: decrypt status 'no key' missing"
        if grep -q "decrypted" <(cut -f11 "$T/$s.out"); then fail "$s: decrypted without keys"; fi
    done
    ts hs -r "$C/gcm-msg.pcap" -Y veil.hs.type "${HS_FIELDS[@]}"
    golden hs gcm-msg.tshark-hs.txt
    pass "encrypted sessions without keys: headers only"
}

# The same sessions with their keylogs: every text recovered exactly.
case_encrypted_keys() {
    local s
    for s in gcm-msg chacha-msg cbc-msg; do
        need "$s.pcap" "$s.keys"
        ts "$s" -r "$C/$s.pcap" -Y veil -o "$(keys "$s.keys")" "${FIELDS[@]}"
        golden "$s" "$s.tshark-keys.txt"
        if cut -f11 "$T/$s.out" | tr ',' '\n' | sed '/^$/d' | grep -qv '^decrypted$'; then
            fail "$s: a record was not decrypted"
        fi
    done
    expect_texts gcm-msg "hello plaintext" "received 15 bytes" "second message" "received 14 bytes"
    ts v -r "$C/gcm-msg.pcap" -Y veil -V -O veil -o "$(keys gcm-msg.keys)"
    golden v gcm-msg.tshark-keys-V.txt
    # veil-capture's export of the decrypted session reads as plaintext, no keys needed.
    if [ -f "$C/gcm-msg.decrypted.pcapng" ]; then
        ts x -r "$C/gcm-msg.decrypted.pcapng" -Y veil "${FIELDS[@]}"
        expect_texts x "hello plaintext" "received 15 bytes" "second message" "received 14 bytes"
    fi
}

# A keylog with the right client randoms but wrong secrets: no plaintext, expert infos.
case_wrong_keys() {
    need gcm-msg.pcap wrong.keys
    ts f -r "$C/gcm-msg.pcap" -Y veil -o "$(keys wrong.keys)" "${FIELDS[@]}"
    golden f gcm-msg.tshark-wrongkeys.txt
    [ -z "$(texts f)" ] || fail "text recovered with wrong keys"
    grep -q "authentication failed" "$T/f.out" || fail "no 'authentication failed' status"
    ts e -r "$C/gcm-msg.pcap" -Y veil.auth_failed -o "$(keys wrong.keys)" -T fields -e frame.number
    [ -s "$T/e.out" ] || fail "no veil.auth_failed expert info"
    pass "wrong keys: nothing decrypted, expert info present"
}

# One byte of an encrypted body flipped: that record fails, the rest decrypts.
case_tampered() {
    need tampered.pcap tampered.keys
    ts f -r "$C/tampered.pcap" -Y veil -o "$(keys tampered.keys)" "${FIELDS[@]}"
    golden f tampered.tshark-keys.txt
    ts e -r "$C/tampered.pcap" -Y veil.auth_failed -o "$(keys tampered.keys)" -T fields -e frame.number
    [ "$(wc -l <"$T/e.out")" -eq 1 ] || fail "expected exactly one frame with veil.auth_failed"
    pass "tampered record flagged"
}

# No close_notify: the end of stream is flagged as a truncation.
case_truncated() {
    need truncated.pcap truncated.keys
    ts f -r "$C/truncated.pcap" -Y veil -o "$(keys truncated.keys)" "${FIELDS[@]}"
    golden f truncated.tshark-keys.txt
    ts e -r "$C/truncated.pcap" -Y veil.truncated -o "$(keys truncated.keys)" -T fields -e frame.number
    [ -s "$T/e.out" ] || fail "truncation not flagged"
    # A complete session is never flagged, with or without keys.
    need gcm-msg.pcap
    ts ok1 -r "$C/gcm-msg.pcap" -Y veil.truncated -T fields -e frame.number
    ts ok2 -r "$C/gcm-msg.pcap" -Y veil.truncated -o "$(keys gcm-msg.keys)" -T fields -e frame.number
    [ ! -s "$T/ok1.out" ] && [ ! -s "$T/ok2.out" ] || fail "a clean session was flagged as truncated"
    pass "truncation flagged, clean close not"
}

# Records split across TCP segments, and several records in one segment.
case_segmentation() {
    local s
    for s in split coalesced; do
        need "$s.pcap" "$s.keys"
        ts "$s" -r "$C/$s.pcap" -Y veil -o "$(keys "$s.keys")" "${FIELDS[@]}"
        golden "$s" "$s.tshark-keys.txt"
        if grep -q "Incomplete\|Malformed" "$T/$s.out"; then fail "$s: a record was not reassembled"; fi
        if cut -f11 "$T/$s.out" | tr ',' '\n' | sed '/^$/d' | grep -qv '^decrypted$'; then
            fail "$s: a record was not decrypted"
        fi
        [ -n "$(texts "$s")" ] || fail "$s: no text recovered"
    done
    pass "split and coalesced records reassembled and decrypted"
}

# The server refuses plaintext mode: a handshake alert.
case_refused() {
    need refused-plain.pcap
    ts f -r "$C/refused-plain.pcap" -Y veil "${FIELDS[@]}"
    golden f refused-plain.tshark.txt
    grep -q "Alert (fatal, plaintext_refused)" "$T/f.out" || fail "plaintext_refused alert not shown"
    ts e -r "$C/refused-plain.pcap" -Y "veil.alert.code == 71 && veil.alert.fatal" -T fields -e frame.number
    [ -s "$T/e.out" ] || fail "no fatal-alert expert info"
    pass "handshake alert shown"
}

# Non-Veil TCP traffic is left alone by the port table and the heuristic.
case_non_veil() {
    need non-veil.pcap
    ts f -r "$C/non-veil.pcap" -Y veil
    [ ! -s "$T/f.out" ] || { cat "$T/f.out" >&2; fail "non-Veil traffic dissected as Veil"; }
    ts v -r "$C/non-veil.pcap" -V
    if grep -q "^Veil" "$T/v.out"; then fail "a Veil tree in non-Veil traffic"; fi
    pass "non-Veil capture left alone"
}

# The heuristic claims a Veil session on another port: the port is rewritten
# (in a copy) and the Veil fields must not change.
case_heuristic() {
    need gcm-msg.pcap gcm-msg.keys
    python3 "$(dirname "$0")/rewrite_port.py" 51424 40123 "$C/gcm-msg.pcap" "$T/moved.pcap"
    chmod a+r "$T/moved.pcap"
    local veil_only=(-T fields -E separator=/t -e frame.number -e veil.direction -e veil.seq -e veil.type
        -e veil.decrypt_status -e veil.app.text -e _ws.col.Info)
    ts a -r "$C/gcm-msg.pcap" -Y veil -o "$(keys gcm-msg.keys)" "${veil_only[@]}"
    ts b -r "$T/moved.pcap" -Y veil -o "$(keys gcm-msg.keys)" "${veil_only[@]}"
    [ -s "$T/a.out" ] || fail "no Veil frames on port 51424"
    diff -u "$T/a.out" "$T/b.out" >&2 || fail "the heuristic does not give the port-based result"
    ts c -r "$T/moved.pcap" -Y veil --disable-heuristic veil_tcp
    [ ! -s "$T/c.out" ] || fail "Veil found on port 40123 with the heuristic disabled"
    pass "heuristic dissector claims Veil on another port"
}

# tshark -2 (two passes) gives exactly the one-pass output, for every capture.
case_two_pass() {
    local f base k n=0
    for f in "$C"/*.pcap "$C"/*.pcapng; do
        [ -f "$f" ] || continue
        base=$(basename "$f")
        base=${base%.pcap*}
        k=()
        [ -f "$C/$base.keys" ] && k=(-o "$(keys "$base.keys")")
        ts one -r "$f" "${k[@]}" -V -O veil
        ts two -r "$f" "${k[@]}" -V -O veil -2
        cmp -s "$T/one.out" "$T/two.out" || { diff -u "$T/one.out" "$T/two.out" >&2; fail "$base: -2 differs"; }
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || fail "no captures"
    pass "$n captures: two-pass output equals one-pass output"
}

# The dissector and veil-capture (captures/NAME.decode.json, made by
# captures/make.sh) report the same records: direction, sequence number,
# type, body status and text (agree.py).
case_agree() {
    local j base k n=0
    for j in "$CAPTURES"/*.decode.json; do
        [ -f "$j" ] || continue
        base=$(basename "$j" .decode.json)
        [ -f "$C/$base.pcap" ] || continue
        k=()
        [ -f "$C/$base.keys" ] && k=(-o "$(keys "$base.keys")")
        ts "j-$base" -r "$C/$base.pcap" "${k[@]}" -T json --no-duplicate-keys -J veil
        python3 "$(dirname "$0")/agree.py" "$T/j-$base.out" "$j" >"$T/agree-$base.txt" ||
            { cat "$T/agree-$base.txt" >&2; fail "$base: tshark and veil-capture disagree"; }
        echo "$base: $(cat "$T/agree-$base.txt")"
        grep -q '^0 records' "$T/agree-$base.txt" || n=$((n + 1))
    done
    [ "$n" -gt 0 ] || fail "no captures/*.decode.json with records"
    pass "$n captures: the dissector and veil-capture agree on every record"
}

# Session variants the programs do not make, generated in memory by
# veil-gen-session (tests/dissector/gen_session.c): key updates, FFDHE2048
# with two key shares and a service, RSA key transport decrypted with the
# server's private key.  RSA keys differ per run, so assertions, no goldens.
case_variants() {
    [ -n "${GEN_SESSION:-}" ] && [ -x "$GEN_SESSION" ] || fail "GEN_SESSION must name veil-gen-session"
    local V=(-T fields -E separator=/t -E occurrence=a -E aggregator=, -e frame.number -e veil.epoch
        -e veil.decrypt_status -e veil.key_update.epoch -e veil.app.text -e _ws.col.Info -e _ws.expert.message)
    "$GEN_SESSION" "$C/rekey.pcap" "$C/rekey.keys" --rekey 2 one two three four
    "$GEN_SESSION" "$C/ffdhe.pcap" "$C/ffdhe.keys" --groups ffdhe2048,x25519 --service chat "bonjour, veil"
    "$GEN_SESSION" "$C/rsa.pcap" "$C/rsa.keys" --groups rsa --rsa-key "$C/rsa.pem" "secret one" "secret two"
    "$GEN_SESSION" "$C/other.pcap" "$C/other.keys" --groups rsa --rsa-key "$C/other.pem" x
    chmod a+r "$C"/*

    # Key updates: each direction moves to epochs 1 and 2; every record decrypts.
    ts rk -r "$C/rekey.pcap" -Y veil -o "$(keys rekey.keys)" "${V[@]}"
    [ "$(grep -o 'Key Update (epoch [0-9]*) \[Decrypted\]' "$T/rk.out" | sort | uniq -c | tr -s ' ')" = \
        "$(printf ' 2 Key Update (epoch 1) [Decrypted]\n 2 Key Update (epoch 2) [Decrypted]')" ] ||
        { cat "$T/rk.out" >&2; fail "key updates not shown"; }
    if cut -f3 "$T/rk.out" | tr ',' '\n' | sed '/^$/d' | grep -qv '^decrypted$'; then
        fail "rekey: a record was not decrypted"
    fi
    [ "$(cut -f5 "$T/rk.out" | tr ',' '\n' | sed '/^$/d' | grep -v '^received' | paste -sd' ')" = \
        "one two three four" ] || fail "rekey: texts"
    grep -qP '\t1,2\t' "$T/rk.out" || fail "rekey: no record of epoch 2 after a key update"
    pass "key updates followed across epochs"

    # FFDHE2048 chosen from two key shares, service "chat" in both hellos.
    ts ff -r "$C/ffdhe.pcap" -Y veil.hs.type -T fields -E separator=/t -E occurrence=a -E aggregator=, \
        -e veil.hs.ch.group -e veil.hs.ch.key_length -e veil.hs.sh.group -e veil.hs.sh.key_length -e veil.hs.service
    grep -qP '^0x0002,0x0001\t256\t\t\tchat$' "$T/ff.out" || { cat "$T/ff.out" >&2; fail "ffdhe: ClientHello"; }
    grep -qP '^\t\t0x0002\t256\tchat$' "$T/ff.out" || { cat "$T/ff.out" >&2; fail "ffdhe: ServerHello"; }
    ts ft -r "$C/ffdhe.pcap" -Y veil -o "$(keys ffdhe.keys)" "${V[@]}"
    grep -qP '\tbonjour, veil\t' "$T/ft.out" || fail "ffdhe: text not recovered"
    pass "FFDHE2048, two key shares, service extension"

    # RSA key transport: the server's private key alone decrypts; no key, or
    # another RSA key, does not.
    ts r1 -r "$C/rsa.pcap" -Y veil -o "veil.rsa_key_file:$C/rsa.pem" "${V[@]}"
    grep -q 'ClientKeyExchange, Finished' "$T/r1.out" || fail "rsa: no ClientKeyExchange"
    [ "$(cut -f5 "$T/r1.out" | sed '/^$/d' | paste -sd'|')" = \
        "secret one|received 10 bytes|secret two|received 10 bytes" ] || { cat "$T/r1.out" >&2; fail "rsa: texts"; }
    ts r2 -r "$C/rsa.pcap" -Y veil.no_rsa_key -T fields -e frame.number
    [ -s "$T/r2.out" ] || fail "rsa: no hint to set veil.rsa_key_file"
    ts r3 -r "$C/rsa.pcap" -Y veil -o "veil.rsa_key_file:$C/other.pem" "${V[@]}"
    if grep -q 'secret' "$T/r3.out" || grep -q '	decrypted' "$T/r3.out"; then fail "rsa: decrypted with another key"; fi
    pass "RSA key transport decrypted with the server's private key only"

    local f
    for f in rekey ffdhe rsa; do
        ts one -r "$C/$f.pcap" -o "$(keys $f.keys)" -o "veil.rsa_key_file:$C/rsa.pem" -V -O veil
        ts two -r "$C/$f.pcap" -o "$(keys $f.keys)" -o "veil.rsa_key_file:$C/rsa.pem" -V -O veil -2
        cmp -s "$T/one.out" "$T/two.out" || { diff -u "$T/one.out" "$T/two.out" >&2; fail "$f: -2 differs"; }
    done
    pass "variants: two-pass output equals one-pass output"
}

# expect NAME: $T/NAME.out must equal the golden lines given on stdin
# (the chat and bank sessions are made by veil-gen-session at test time, so
# their goldens live here rather than in captures/).
expect() {
    diff -u - "$T/$1.out" >&2 || fail "$1: output differs from the golden lines in dissector_test.sh"
}

# svc_session NAME ARGS...: a session made in memory by veil-gen-session, in
# encrypted mode ($C/NAME.pcap, keylog $C/NAME.keys) and in plaintext mode
# ($C/NAME-plain.pcap); both must dissect the same in one and two passes.
svc_session() {
    [ -n "${GEN_SESSION:-}" ] && [ -x "$GEN_SESSION" ] || fail "GEN_SESSION must name veil-gen-session"
    local name=$1 f
    shift
    "$GEN_SESSION" "$C/$name.pcap" "$C/$name.keys" "$@"
    "$GEN_SESSION" "$C/$name-plain.pcap" "$C/$name-plain.keys" --plain "$@"
    chmod a+r "$C"/*
    for f in "$name" "$name-plain"; do
        ts one -r "$C/$f.pcap" -o "$(keys $f.keys)" -V -O veil
        ts two -r "$C/$f.pcap" -o "$(keys $f.keys)" -V -O veil -2
        cmp -s "$T/one.out" "$T/two.out" || { diff -u "$T/one.out" "$T/two.out" >&2; fail "$f: -2 differs"; }
    done
}

# registered FIELD...: every FIELD is registered.
registered() {
    ts fields -G fields
    local f
    for f in "$@"; do
        grep -qP "^F\t[^\t]*\t\Q$f\E\t" "$T/fields.out" || fail "field $f not registered"
    done
}

# The chat service (SERVICES.md §2.1) seen from one participant, bob: a
# notice, bob's own line (no name: the server names the sender), lines
# relayed from alice and the operator, another notice.
case_chat() {
    registered veil.chat.sender veil.chat.text
    svc_session chat --service chat --chat --no-acks "S::you are bob; in the chat: server, alice" "hi all" \
        "S:alice:hello bob" "S:server:welcome" "S::carol joined the chat"
    local F=(-T fields -E separator='|' -E occurrence=a -E aggregator=, -e frame.number -e veil.direction
        -e veil.chat.sender -e veil.chat.text -e veil.app.text -e _ws.col.Info -e _ws.expert.message)
    ts ck -r "$C/chat.pcap" -Y veil.app.kind -o "$(keys chat.keys)" "${F[@]}"
    expect ck <<'EOF'
10|1||you are bob; in the chat: server, alice||Application Data (chat notice) [Decrypted]|
12|0||hi all||Application Data (chat) [Decrypted]|
14|1|alice|hello bob||Application Data (chat from alice) [Decrypted]|
16|1|server|welcome||Application Data (chat from server) [Decrypted]|
18|1||carol joined the chat||Application Data (chat notice) [Decrypted]|
EOF
    pass "chat, encrypted, with keys"
    ts cp -r "$C/chat-plain.pcap" -Y veil.app.kind "${F[@]}"
    expect cp <<'EOF'
10|1||you are bob; in the chat: server, alice||Application Data (chat notice)|
12|0||hi all||Application Data (chat)|
14|1|alice|hello bob||Application Data (chat from alice)|
16|1|server|welcome||Application Data (chat from server)|
18|1||carol joined the chat||Application Data (chat notice)|
EOF
    pass "chat, plaintext"
    # Without keys nothing of the chat shows.
    ts cn -r "$C/chat.pcap" -Y 'veil.type == 3' "${F[@]}"
    expect cn <<'EOF'
10|1||||Application Data|
12|0||||Application Data|
14|1||||Application Data|
16|1||||Application Data|
18|1||||Application Data|
EOF
    # Filters on the new fields.
    ts cf -r "$C/chat.pcap" -o "$(keys chat.keys)" -Y 'veil.chat.sender == "alice" || veil.chat.text contains "carol"' \
        -T fields -e frame.number
    expect cf <<'EOF'
14
18
EOF
    # A text that is not a chat line (a name length past the end) is malformed.
    "$GEN_SESSION" "$C/chatbad.pcap" "$C/chatbad.keys" --plain --service chat --no-acks "bonjour"
    chmod a+r "$C"/*
    ts cb -r "$C/chatbad.pcap" -Y veil.app.kind "${F[@]}"
    expect cb <<'EOF'
10|0|||bonjour|Application Data (text)|Malformed chat message: chat name length runs past the end
EOF
    pass "chat: no keys, filters, malformed line"
}

# The bank service (SERVICES.md §3.1): the examples of the spec, a repeated
# request, an unknown request and its refusal.
case_bank() {
    registered veil.bank.op veil.bank.request_id veil.bank.amount veil.bank.balance veil.bank.error \
        veil.bank.ok_op veil.bank.replayed veil.bank.count
    svc_session bank --service bank --no-acks \
        "DEPOSIT 9f86d081884c7d659a2feaa0c55ad015 12.34" \
        "S:OK DEPOSIT 9f86d081884c7d659a2feaa0c55ad015 12.34 112.34 7 1748779200123" \
        "DEPOSIT 9f86d081884c7d659a2feaa0c55ad015 12.34" \
        "S:OK DEPOSIT 9f86d081884c7d659a2feaa0c55ad015 12.34 112.34 7 1748779200123 REPLAYED" \
        "WITHDRAW 3c59dc048e8850243be8079a5c74d079 500" \
        "S:ERR 3c59dc048e8850243be8079a5c74d079 insufficient_funds insufficient funds: the balance is 112.34, a withdrawal of 500.00 is refused" \
        "BALANCE" "S:BALANCE 112.34" "HISTORY 2" \
        $'S:HISTORY 2\n7 1748779200123 DEPOSIT 12.34 112.34 9f86d081884c7d659a2feaa0c55ad015\n6 1748779100456 DEPOSIT 100.00 100.00 b6d767d2f8ed5d21a44b0e5886680cb9' \
        "TRANSFER 5" "S:ERR - bad_request unknown request"
    local F=(-T fields -E separator='|' -E occurrence=a -E aggregator=, -e frame.number -e veil.direction
        -e veil.bank.op -e veil.bank.ok_op -e veil.bank.request_id -e veil.bank.amount -e veil.bank.balance
        -e veil.bank.error -e veil.bank.count -e veil.bank.replayed -e _ws.col.Info -e _ws.expert.message)
    ts bk -r "$C/bank.pcap" -Y veil.app.kind -o "$(keys bank.keys)" "${F[@]}"
    expect bk <<'EOF'
10|0|DEPOSIT||9f86d081884c7d659a2feaa0c55ad015|12.34|||||Application Data (bank DEPOSIT 12.34) [Decrypted]|
12|1|OK|DEPOSIT|9f86d081884c7d659a2feaa0c55ad015|12.34|112.34||||Application Data (bank OK DEPOSIT 12.34 balance 112.34) [Decrypted]|
14|0|DEPOSIT||9f86d081884c7d659a2feaa0c55ad015|12.34|||||Application Data (bank DEPOSIT 12.34) [Decrypted]|
16|1|OK|DEPOSIT|9f86d081884c7d659a2feaa0c55ad015|12.34|112.34|||1|Application Data (bank OK DEPOSIT 12.34 balance 112.34 REPLAYED) [Decrypted]|
18|0|WITHDRAW||3c59dc048e8850243be8079a5c74d079|500|||||Application Data (bank WITHDRAW 500) [Decrypted]|
20|1|ERR||3c59dc048e8850243be8079a5c74d079|||insufficient_funds|||Application Data (bank ERR insufficient_funds) [Decrypted]|
22|0|BALANCE||||||||Application Data (bank BALANCE) [Decrypted]|
24|1|BALANCE||||112.34||||Application Data (bank BALANCE balance 112.34) [Decrypted]|
26|0|HISTORY||||||2||Application Data (bank HISTORY 2) [Decrypted]|
28|1|HISTORY||||||2||Application Data (bank HISTORY 2) [Decrypted]|
30|0|||||||||Application Data (text) [Decrypted]|Malformed bank message: unknown bank request
32|1|ERR||-|||bad_request|||Application Data (bank ERR bad_request) [Decrypted]|
EOF
    pass "bank, encrypted, with keys"
    ts bp -r "$C/bank-plain.pcap" -Y veil.app.kind "${F[@]}"
    sed 's/ \[Decrypted\]//' "$T/bk.out" >"$T/bk-plain.out"
    diff -u "$T/bk-plain.out" "$T/bp.out" >&2 || fail "bank: plaintext differs from decrypted"
    pass "bank, plaintext"
    # The whole message stays in veil.app.text (error texts, history entries).
    ts bt -r "$C/bank.pcap" -o "$(keys bank.keys)" -Y 'veil.bank.op == "ERR" || frame.number == 28' \
        -T fields -e frame.number -e veil.app.text
    expect bt <<'EOF'
20	ERR 3c59dc048e8850243be8079a5c74d079 insufficient_funds insufficient funds: the balance is 112.34, a withdrawal of 500.00 is refused
28	HISTORY 2\n7 1748779200123 DEPOSIT 12.34 112.34 9f86d081884c7d659a2feaa0c55ad015\n6 1748779100456 DEPOSIT 100.00 100.00 b6d767d2f8ed5d21a44b0e5886680cb9
32	ERR - bad_request unknown request
EOF
    ts bn -r "$C/bank.pcap" -Y 'veil.bank.op || veil.bank.amount' -T fields -e frame.number
    [ ! -s "$T/bn.out" ] || fail "bank: fields shown without keys"
    pass "bank: message texts, nothing without keys"
}

declare -F "case_${CASE//-/_}" >/dev/null || fail "unknown case $CASE"
"case_${CASE//-/_}"
