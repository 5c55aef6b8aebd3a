#!/usr/bin/env bash
# Bad arguments: exit 1 and one line that says usage.  --help: exit 0 and
# documents the exit statuses.
. "$(dirname "$0")/lib.sh"

bad() {
    local prog=$1
    shift
    RC=0
    timeout 10 "$prog" "$@" </dev/null >"$T/bad.out" 2>"$T/bad.err" || RC=$?
    [ "$RC" -eq 1 ] || fail "$(basename "$prog") $*: exit status $RC, expected 1"
    grep -q 'usage' "$T/bad.err" || fail "$(basename "$prog") $*: no usage in: $(cat "$T/bad.err")"
    [ "$(wc -l <"$T/bad.err")" -eq 1 ] || fail "$(basename "$prog") $*: more than one line"
}

bad "$VCLIENT"
bad "$VCLIENT" --bogus localhost 1
bad "$VCLIENT" localhost 99999
bad "$VCLIENT" localhost 0
bad "$VCLIENT" localhost 1 extra
bad "$VCLIENT" --suite rot13 localhost 1
bad "$VCLIENT" --fingerprint nothex localhost 1
bad "$VCLIENT" --connect-timeout -1 localhost 1
bad "$VCLIENT" --timeout abc localhost 1
bad "$VCLIENT" --known-hosts x --no-known-hosts localhost 1
bad "$VCLIENT" localhost 1 -m
bad "$VSERVER" --bogus
bad "$VSERVER" 70000
bad "$VSERVER" --max-conns 0
bad "$VSERVER" --suites aes-256-gcm,nope
bad "$VSERVER" --idle-timeout x
bad "$VSERVER" --handshake-timeout 0
bad "$VSERVER" 1 2
bad "$VKEYGEN" extra
bad "$VKEYGEN" --show
bad "$VKEYGEN" --show a -o b
pass "bad arguments: exit 1 with one usage line"

big=$(head -c 16376 /dev/zero | tr '\0' x)
bad "$VCLIENT" -m "$big" localhost 1
pass "message longer than the maximum: exit 1"

for p in "$VSERVER" "$VCLIENT" "$VKEYGEN"; do
    "$p" --help >"$T/help.out"
    grep -q 'Exit status' "$T/help.out" || fail "$(basename "$p") --help lacks the exit statuses"
done
for opt in --bind --key --gen-key --allow-plain --suites --keylog --max-conns --idle-timeout \
    --handshake-timeout --quiet; do
    "$VSERVER" --help | grep -q -- "$opt" || fail "veil-server --help lacks $opt"
done
for opt in --message --interactive --plain --suite --fingerprint --known-hosts --no-known-hosts \
    --keylog --connect-timeout --timeout --verbose; do
    "$VCLIENT" --help | grep -q -- "$opt" || fail "veil-client --help lacks $opt"
done
pass "--help documents every option and the exit statuses"
