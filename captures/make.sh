#!/usr/bin/env bash
# captures/make.sh - regenerates the recorded-session corpus byte for byte.
#
#   bash captures/make.sh [--out DIR] [--decodes-only] BUILD_DIR [NAME...]
#
# BUILD_DIR is a build of this tree with the test-only deterministic mode
# (-DVEIL_TEST_HOOKS=ON).  If BUILD_DIR does not exist yet it is configured
# that way (tests off) and built; an existing BUILD_DIR without the option is
# refused, since the ordinary programs are random and cannot reproduce a file.
#
# Every session is a real run of veil-server and veil-client over loopback
# TCP, through `veil-capture relay`, which forwards the bytes and writes the
# pcap (captures/README.md says why and how).  VEIL_TEST_SEED fixes every
# random byte (client and server randoms, key shares, CBC IVs, the server
# identity), VEIL_TEST_CLOCK fixes every timestamp.  Then the golden decodes
# (NAME.decode.txt, NAME.decode.json, ...) are made with veil-capture.
#
# NAMEs default to all of them; --out DIR writes there instead of captures/;
# --decodes-only remakes only the golden decodes from the pcaps already in
# the output directory (after a deliberate change of veil-capture's output);
# it needs no deterministic build: BUILD_DIR/apps/veil-capture of any build,
# or the program named by $VEIL_CAPTURE.
# Needs no privileges.  Every wait is bounded.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE
DECODES_ONLY=0
while [ $# -gt 0 ]; do
    case $1 in
    --out) OUT=$2; shift 2 ;;
    --decodes-only) DECODES_ONLY=1; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "make.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: make.sh [--out DIR] [--decodes-only] BUILD_DIR [NAME...]" >&2; exit 1; }
BUILD=$1
shift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

ALL_SESSIONS=(plain-msg gcm-msg chacha-msg cbc-msg ffdhe-msg chat-msg bank-msg auth-failed refused-plain tampered truncated coalesced split non-veil)
if [ $# -gt 0 ]; then SESSIONS=("$@"); else SESSIONS=("${ALL_SESSIONS[@]}"); fi

# ---- the deterministic build ------------------------------------------------
VCAPTURE=${VEIL_CAPTURE:-$BUILD/apps/veil-capture}
if [ "$DECODES_ONLY" = 0 ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        # CC, if set, picks the compiler (the tests pass the one of their build).
        cmake -S "$ROOT" -B "$BUILD" -DVEIL_TEST_HOOKS=ON -DVEIL_BUILD_TESTS=OFF >/dev/null
    fi
    if ! grep -q '^VEIL_TEST_HOOKS:BOOL=ON' "$BUILD/CMakeCache.txt"; then
        echo "make.sh: $BUILD was not configured with -DVEIL_TEST_HOOKS=ON; use a separate build directory" >&2
        exit 1
    fi
    cmake --build "$BUILD" -j2 --target veil-server veil-client veil-keygen veil-user veil-capture >/dev/null
    VCAPTURE=$BUILD/apps/veil-capture
fi
[ -x "$VCAPTURE" ] || { echo "make.sh: no veil-capture at $VCAPTURE" >&2; exit 1; }
VSERVER=$BUILD/apps/veil-server
VCLIENT=$BUILD/apps/veil-client
VKEYGEN=$BUILD/apps/veil-keygen
VUSER=$BUILD/apps/veil-user

export TZ=UTC LC_ALL=C
unset VEIL_KEYLOGFILE VEIL_TEST_SEED VEIL_TEST_CLOCK
# 2025-01-01T12:00:00Z: every message timestamp, and the first packet of each file.
CLOCK=1735732800000

T=$(mktemp -d "${TMPDIR:-/tmp}/veil-corpus.XXXXXX")
export HOME=$T/home
mkdir -p "$HOME"
PIDS=()
cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "$rc" -ne 0 ]; then
        echo "make.sh: failed; logs in $T" >&2
        for f in "$T"/*.log "$T"/*.err; do [ -f "$f" ] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }; done
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "make.sh: $*" >&2; exit 1; }

# wait_port FILE: the port of the first "listening on ADDR:PORT" in FILE (5 s).
wait_port() {
    local f=$1 i
    for i in $(seq 1 100); do
        if [ -f "$f" ] && grep -qE 'listening on [^ ]*:[0-9]+' "$f"; then
            grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$f" | sed -E 's/.*:([0-9]+)$/\1/'
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# wait_pid PID SECONDS: status of a background process, or fail.
wait_pid() {
    local pid=$1 secs=$2 i
    for i in $(seq 1 $((secs * 20))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local st=0
            wait "$pid" || st=$?
            return "$st"
        fi
        sleep 0.05
    done
    die "process $pid still running after $secs s"
}

# The server identity, from a fixed seed (an Ed25519 key from 32 seeded bytes).
identity() {
    [ -f "$T/server.key" ] && return 0
    VEIL_TEST_SEED=corpus-identity "$VKEYGEN" -q -o "$T/server.key" >"$T/fp" 2>"$T/keygen.err" ||
        die "veil-keygen failed"
    cp "$T/server.key" "$OUT/server.key"
    cp "$T/server.key.pub" "$OUT/server.key.pub"
}

# users: a user directory with alice (password in $T/pw; a wrong one in $T/badpw),
# seeded so that her salt, and so every login exchange, is reproducible.
users() {
    [ -f "$T/users.json" ] && return 0
    printf 'correct horse battery\n' >"$T/pw"
    printf 'incorrect horse\n' >"$T/badpw"
    VEIL_TEST_SEED=corpus-users "$VUSER" -f "$T/users.json" add alice <"$T/pw" >/dev/null 2>"$T/user.err" ||
        die "veil-user failed: $(cat "$T/user.err")"
}

# Words given after the host and port (bank operations), and the file read on fd 3
# (--password-fd 3); both empty by default.
CLIENT_TAIL=()
PWFILE=/dev/null
CLIENT_STDIN=/dev/null

# session NAME EXPECTED_CLIENT_STATUS "SERVER OPTIONS" "RELAY OPTIONS" CLIENT OPTIONS...
session() {
    local name=$1 want=$2 sopts=$3 ropts=$4
    shift 4
    identity
    FP=$(cat "$T/fp")
    local seed="corpus:$name"
    # shellcheck disable=SC2086
    VEIL_TEST_SEED=$seed VEIL_TEST_CLOCK=$CLOCK "$VSERVER" --key "$T/server.key" \
        --keylog "$T/$name.keys" $sopts 0 >"$T/$name.server.out" 2>"$T/$name.server.log" &
    local spid=$!
    PIDS+=("$spid")
    local sport
    sport=$(wait_port "$T/$name.server.log") || die "$name: veil-server did not start"
    # shellcheck disable=SC2086
    VEIL_TEST_CLOCK=$CLOCK "$VCAPTURE" relay --listen 127.0.0.1:0 --to "127.0.0.1:$sport" \
        -w "$T/$name.pcap" --timeout 20 $ropts 2>"$T/$name.relay.err" &
    local rpid=$!
    PIDS+=("$rpid")
    local rport
    rport=$(wait_port "$T/$name.relay.err") || die "$name: the relay did not start"
    local st=0
    VEIL_TEST_SEED=$seed VEIL_TEST_CLOCK=$CLOCK timeout 30 "$VCLIENT" --fingerprint "$FP" \
        --timeout 10 "$@" 127.0.0.1 "$rport" ${CLIENT_TAIL[@]+"${CLIENT_TAIL[@]}"} <"$CLIENT_STDIN" 3<"$PWFILE" \
        >"$T/$name.client.out" 2>"$T/$name.client.err" || st=$?
    [ "$st" -eq "$want" ] || die "$name: veil-client exited with $st, expected $want"
    wait_pid "$rpid" 25 || die "$name: the relay failed"
    kill -TERM "$spid"
    wait_pid "$spid" 10 || die "$name: veil-server failed"
    cp "$T/$name.pcap" "$OUT/$name.pcap"
    if [ -s "$T/$name.keys" ]; then
        cp "$T/$name.keys" "$OUT/$name.keys"
        chmod 644 "$OUT/$name.keys" # test secrets, read by tests as another user
    else
        rm -f "$OUT/$name.keys"
    fi
    echo "make.sh: $name.pcap"
}

record() {
    local name=$1
    case $name in
    plain-msg)
        session plain-msg 0 "--allow-plain" "" --plain -m "hello plaintext" -m "second message" ;;
    gcm-msg)
        session gcm-msg 0 "" "" --suite aes-256-gcm -m "hello plaintext" -m "second message" ;;
    chacha-msg)
        session chacha-msg 0 "" "" --suite chacha20-poly1305 -m "hello plaintext" -m "second message" ;;
    cbc-msg)
        session cbc-msg 0 "" "" --suite aes-256-cbc-hmac-sha256 -m "hello plaintext" -m "second message" ;;
    ffdhe-msg)
        session ffdhe-msg 0 "" "" --group ffdhe2048 --suite aes-256-gcm -m "hello over FFDHE-2048" ;;
    chat-msg)
        # alice logs in to the chat (a login makes her name, not her port, the sender),
        # says one line and leaves with EXIT.
        users
        printf 'hello chat\nEXIT\n' >"$T/chat.in"
        CLIENT_STDIN=$T/chat.in
        PWFILE=$T/pw
        session chat-msg 0 "--services chat --users $T/users.json" "" \
            --suite aes-256-gcm --service chat --user alice --password-fd 3
        CLIENT_STDIN=/dev/null
        PWFILE=/dev/null ;;
    bank-msg)
        # alice logs in (user authentication) and deposits, withdraws, reads her balance.
        users
        CLIENT_TAIL=(deposit 12.34 withdraw 2.34 balance)
        PWFILE=$T/pw
        session bank-msg 0 "--services bank --users $T/users.json --bank-db $T/bank.db" "" \
            --suite aes-256-gcm --service bank --user alice --password-fd 3
        CLIENT_TAIL=()
        PWFILE=/dev/null ;;
    auth-failed)
        # The same login with a wrong password: auth_failed (exit 7), nothing done.
        users
        CLIENT_TAIL=(balance)
        PWFILE=$T/badpw
        session auth-failed 7 "--services bank --users $T/users.json --bank-db $T/bank.db" "" \
            --suite aes-256-gcm --service bank --user alice --password-fd 3
        CLIENT_TAIL=()
        PWFILE=/dev/null ;;
    refused-plain)
        session refused-plain 4 "" "" --plain -m "hello plaintext" ;;
    tampered)
        session tampered 5 "" "--test-tamper" --suite aes-256-gcm -m "hello plaintext" -m "second message" ;;
    truncated)
        # Cut by the relay right after the server's first ack (SH, SV, SF, ack = 4 records).
        session truncated 5 "" "--test-cut-after 4" --suite aes-256-gcm -m "hello plaintext" -m "second message" ;;
    coalesced)
        session coalesced 0 "" "--segments flight" --suite aes-256-gcm -m "hello plaintext" -m "second message" ;;
    split)
        session split 0 "" "--segments split:7" --suite aes-256-gcm -m "hello plaintext" -m "second message" ;;
    non-veil) record_non_veil ;;
    *) die "unknown session $name (known: ${ALL_SESSIONS[*]})" ;;
    esac
}

# An HTTP-like exchange on port 8080, through the relay in raw mode.
record_non_veil() {
    command -v python3 >/dev/null || die "non-veil needs python3"
    python3 - "$T/http.port" >"$T/http.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(20)
open(sys.argv[1], "w").write("listening on 127.0.0.1:%d\n" % s.getsockname()[1])
c, _ = s.accept()
c.settimeout(10)
req = b""
while b"\r\n\r\n" not in req and len(req) < 65536:
    d = c.recv(4096)
    if not d:
        break
    req += d
body = b"<html><body>not Veil</body></html>\n"
c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
c.shutdown(socket.SHUT_WR)
c.recv(1)
c.close()
PY
    local hpid=$!
    PIDS+=("$hpid")
    local hport
    hport=$(wait_port "$T/http.port") || die "non-veil: the HTTP server did not start"
    VEIL_TEST_CLOCK=$CLOCK "$VCAPTURE" relay --listen 127.0.0.1:0 --to "127.0.0.1:$hport" \
        -w "$T/non-veil.pcap" --raw --test-server-port 8080 --timeout 20 2>"$T/non-veil.relay.err" &
    local rpid=$!
    PIDS+=("$rpid")
    local rport
    rport=$(wait_port "$T/non-veil.relay.err") || die "non-veil: the relay did not start"
    timeout 20 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1"
        printf "GET /index.html HTTP/1.0\r\nHost: localhost\r\nUser-Agent: veil-corpus\r\n\r\n" >&3
        cat <&3 >/dev/null
        exec 3<&-' _ "$rport" || die "non-veil: the HTTP client failed"
    wait_pid "$rpid" 25 || die "non-veil: the relay failed"
    wait_pid "$hpid" 10 || die "non-veil: the HTTP server failed"
    cp "$T/non-veil.pcap" "$OUT/non-veil.pcap"
    echo "make.sh: non-veil.pcap"
}

# ---- recording ---------------------------------------------------------------
if [ "$DECODES_ONLY" = 0 ]; then
    for s in "${SESSIONS[@]}"; do record "$s"; done
    for s in "${SESSIONS[@]}"; do
        if [ "$s" = gcm-msg ]; then
            # Right client randoms, wrong secrets (every hex digit complemented).
            while read -r label rnd secret; do
                printf '%s %s %s\n' "$label" "$rnd" "$(printf %s "$secret" | tr 0123456789abcdef fedcba9876543210)"
            done <"$OUT/gcm-msg.keys" >"$OUT/wrong.keys"
            echo "make.sh: wrong.keys"
        fi
    done
fi

# ---- golden decodes ------------------------------------------------------------
# decode NAME: NAME.decode.txt and NAME.decode.json (with NAME.keys when there is one).
decode() {
    local name=$1
    local keys=()
    [ -f "$OUT/$name.keys" ] && keys=(--keylog "$OUT/$name.keys")
    "$VCAPTURE" -r "$OUT/$name.pcap" "${keys[@]}" >"$OUT/$name.decode.txt"
    "$VCAPTURE" -r "$OUT/$name.pcap" "${keys[@]}" --json >"$OUT/$name.decode.json"
}

for s in "${SESSIONS[@]}"; do
    [ -f "$OUT/$s.pcap" ] || die "no $OUT/$s.pcap"
    decode "$s"
    case $s in
    gcm-msg)
        "$VCAPTURE" -r "$OUT/gcm-msg.pcap" >"$OUT/gcm-msg.nokeys.txt"
        "$VCAPTURE" -r "$OUT/gcm-msg.pcap" --keylog "$OUT/wrong.keys" >"$OUT/gcm-msg.wrongkeys.txt"
        "$VCAPTURE" -r "$OUT/gcm-msg.pcap" --keylog "$OUT/gcm-msg.keys" -V >"$OUT/gcm-msg.verbose.txt"
        "$VCAPTURE" -r "$OUT/gcm-msg.pcap" --keylog "$OUT/gcm-msg.keys" -q --no-summary \
            --export-decrypted "$OUT/gcm-msg.decrypted.pcapng" 2>/dev/null
        "$VCAPTURE" -r "$OUT/gcm-msg.decrypted.pcapng" >"$OUT/gcm-msg.decrypted.txt"
        ;;
    plain-msg)
        "$VCAPTURE" -r "$OUT/plain-msg.pcap" -V >"$OUT/plain-msg.verbose.txt"
        ;;
    esac
done
if [ -f "$OUT/plain-msg.pcap" ] && [ -f "$OUT/gcm-msg.pcap" ]; then
    "$VCAPTURE" compare "$OUT/plain-msg.pcap" "$OUT/gcm-msg.pcap" >"$OUT/compare-plain-gcm.txt"
fi
echo "make.sh: done (${#SESSIONS[@]} sessions in $OUT)"
