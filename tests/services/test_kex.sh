#!/bin/bash
# Key-exchange and identity variants from the command line: veil-keygen
# --rsa, and a msg session over RSA key transport, FFDHE-2048 and X25519
# with an RSA identity, in both modes; RSA transport refused by an Ed25519
# server; the help texts say that RSA transport has no forward secrecy.
source "$(dirname "$0")/lib.sh"

# --- veil-keygen --rsa ------------------------------------------------------
"$VKEYGEN" -o "$T/ed.key" >"$T/ed.txt"
grep -q '^private key: .*ed.key (Ed25519, mode 0600)$' "$T/ed.txt" || fail "Ed25519 is not the default: $(cat "$T/ed.txt")"
"$VKEYGEN" --rsa -o "$T/rsa3072.key" >"$T/rsa.txt" 2>"$T/rsa.err"
grep -q '^private key: .*rsa3072.key (RSA-3072, mode 0600)$' "$T/rsa.txt" || fail "--rsa output: $(cat "$T/rsa.txt")"
[ "$(stat -c %a "$T/rsa3072.key")" = 600 ] || fail "RSA key mode $(stat -c %a "$T/rsa3072.key")"
grep -q 'BEGIN PUBLIC KEY' "$T/rsa3072.key.pub" || fail "no RSA public key file"
fp=$(sed -n 's/^fingerprint: //p' "$T/rsa.txt")
[ "$("$VKEYGEN" --show "$T/rsa3072.key")" = "$fp" ] || fail "--show disagrees with the RSA key's fingerprint"
if command -v openssl >/dev/null; then
    openssl pkey -in "$T/rsa3072.key" -noout -text 2>/dev/null | head -n1 | grep -q '3072 bit' ||
        fail "openssl does not see a 3072-bit key"
    [ "sha256:$(openssl pkey -in "$T/rsa3072.key" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$fp" ] ||
        fail "fingerprint is not the SHA-256 of the SubjectPublicKeyInfo"
fi
"$VKEYGEN" -q --rsa --bits 2048 -o "$T/srv-rsa.key" >/dev/null
openssl pkey -in "$T/srv-rsa.key" -noout -text 2>/dev/null | head -n1 | grep -q '2048 bit' ||
    ! command -v openssl >/dev/null || fail "--bits 2048 ignored"
for bad in "--bits 1024 --rsa" "--bits 2048" "--rsa --bits 9000" "--rsa --show $T/ed.key"; do
    RC=0
    # shellcheck disable=SC2086
    "$VKEYGEN" $bad -o "$T/bad.key" >/dev/null 2>&1 || RC=$?
    expect_rc 1 "veil-keygen $bad"
done
[ ! -e "$T/bad.key" ] || fail "a refused keygen wrote a key"
pass "veil-keygen --rsa [--bits N]; Ed25519 stays the default"

# --- help texts ---------------------------------------------------------------
"$VCLIENT" --help | tr '\n' ' ' | grep -q 'NO forward *secrecy' || fail "client --help lacks the forward secrecy warning"
"$VKEYGEN" --help | tr '\n' ' ' | grep -q 'NO forward *secrecy' || fail "keygen --help lacks the forward secrecy warning"
"$VSERVER" --help | tr '\n' ' ' | grep -q 'NO *forward secrecy' || fail "server --help lacks the forward secrecy warning"
RC=0
"$VCLIENT" --group dh512 127.0.0.1 1 </dev/null >/dev/null 2>&1 || RC=$?
expect_rc 1 "unknown --group"
pass "help texts warn that RSA transport has no forward secrecy"

# msg OUT [client options...]: one message to $PORT; RC.
msg() {
    local out=$1
    shift
    RC=0
    timeout 30 "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" -v "$@" -m "kex test" 127.0.0.1 "$PORT" \
        </dev/null >"$T/$out.out" 2>"$T/$out.err" || RC=$?
}

for mode in enc plain; do
    set_mode $mode
    srv_start srv-rsa /dev/null "${SMODE[@]}"
    for case in "rsa:RSA_TRANSPORT" "ffdhe2048:FFDHE2048" "x25519:X25519" "rsa,x25519:RSA_TRANSPORT" \
        "x25519,rsa:X25519"; do
        groups=${case%%:*}
        want=${case##*:}
        opts=()
        IFS=, read -r -a gl <<<"$groups"
        for g in "${gl[@]}"; do opts+=(--group "$g"); done
        msg "m-$mode-$groups" "${opts[@]}"
        expect_rc 0 "[$mode] --group $groups"
        acked "$T/m-$mode-$groups.out" "kex test"
        grep -q "group $want" "$T/m-$mode-$groups.err" || fail "[$mode] --group $groups negotiated: $(cat "$T/m-$mode-$groups.err")"
        if [ "$want" = RSA_TRANSPORT ]; then
            grep -q 'no forward secrecy' "$T/m-$mode-$groups.err" || fail "[$mode] no forward-secrecy note"
        fi
    done
    grep -q "group=RSA_TRANSPORT" "$T/srv-rsa.log" || fail "[$mode] server log lacks RSA_TRANSPORT"
    grep -q "group=FFDHE2048" "$T/srv-rsa.log" || fail "[$mode] server log lacks FFDHE2048"
    stop_server "$SERVER_PID"
    pass "[$mode] RSA identity: RSA transport, FFDHE-2048, X25519 each carry a message"

    srv_start srv-ed /dev/null "${SMODE[@]}"
    msg "e-$mode-ff" --group ffdhe2048
    expect_rc 0 "[$mode] FFDHE-2048 with an Ed25519 server"
    acked "$T/e-$mode-ff.out" "kex test"
    msg "e-$mode-rsa" --group rsa
    expect_rc 4 "[$mode] RSA transport to an Ed25519 server"
    grep -q 'handshake_failure' "$T/e-$mode-rsa.err" || fail "[$mode] RSA to Ed25519: $(cat "$T/e-$mode-rsa.err")"
    stop_server "$SERVER_PID"
    pass "[$mode] Ed25519 identity: FFDHE-2048 works, RSA transport refused"
done
