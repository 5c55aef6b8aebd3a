#!/usr/bin/env bash
# Start-up: arguments, the directory file and the key, each failure one
# clear line and its exit status (1 usage, 6 local error); the test options
# exist only in the test build.  Field-by-field validation of the directory
# is covered by peer.units; here the program's side of it.
. "$(dirname "$0")/lib.sh"

# run_peer OUT [args...]: veil-peer with stdin from /dev/null, bounded;
# stderr in $T/OUT.err, status in RC.
run_peer() {
    local out=$1
    shift
    RC=0
    timeout 20 "$VPEER" "$@" </dev/null >"$T/$out.out" 2>"$T/$out.err" || RC=$?
}

# one_line OUT STATUS PATTERN: exit STATUS and exactly one error line on
# stderr (INFO and WARN log lines aside), matching PATTERN.
one_line() {
    [ "$RC" -eq "$2" ] || fail "$1: exit $RC, expected $2: $(cat "$T/$1.err")"
    [ "$(grep -cvE 'Z (INFO|WARN) ' "$T/$1.err")" -eq 1 ] ||
        fail "$1: expected one error line, got: $(cat "$T/$1.err")"
    grep -qE -- "$3" "$T/$1.err" || fail "$1: '$(cat "$T/$1.err")' lacks /$3/"
}

GOOD='{"version":1,"contacts":[{"name":"alice","ip":"127.0.0.1","port":1},{"name":"bob","ip":"127.0.0.1","port":2,"secret":"a long enough secret"}]}'
printf '%s\n' "$GOOD" >"$T/good.json"
chmod 600 "$T/good.json"

run_peer noname --directory "$T/good.json"
one_line noname 1 "veil-peer: missing --name \(usage: veil-peer --name ME --directory FILE"
run_peer nodir --name alice
one_line nodir 1 'missing --directory'
run_peer badname --name 'al ice' --directory "$T/good.json"
one_line badname 1 '--name must be 1 to 64 characters'
run_peer badopt --name alice --directory "$T/good.json" --bogus
one_line badopt 1 "unknown option '--bogus'"
run_peer badskew --name alice --directory "$T/good.json" --max-skew -5
one_line badskew 1 '--max-skew needs seconds'
run_peer badport --name alice --directory "$T/good.json" --port 70000
one_line badport 1 "invalid port '70000'"
run_peer extra --name alice --directory "$T/good.json" stray
one_line extra 1 "unexpected argument 'stray'"
pass "argument errors: one line, exit 1"

# The test options are not in the real program.
run_peer hook --name alice --directory "$T/good.json" --test-clock-offset=-300000
one_line hook 1 "unknown option '--test-clock-offset"
for h in --test-corrupt-crc --test-no-sign --test-sender=bob; do
    run_peer hook2 --name alice --directory "$T/good.json" "$h"
    one_line hook2 1 "unknown option '$h'"
done
"$VPEER" --help >"$T/help.out"
! grep -q 'test-' "$T/help.out" || fail "--help mentions a test option"
grep -q 'both ways are MUTUAL' "$T/help.out" || fail "--help does not say both modes are mutual"
pass "test options absent from veil-peer; --help documents the authentication"

# Directory files.
run_peer missing --name alice --directory "$T/nope.json"
one_line missing 6 "ERROR +cannot open directory file .*nope\.json: No such file"
printf '{"version":1,\n "contacts": [,]}\n' >"$T/syntax.json"
run_peer syntax --name alice --directory "$T/syntax.json"
one_line syntax 6 'syntax\.json: line 2, column [0-9]+: invalid JSON'
printf '%s\n' "$GOOD" | sed 's/"port":2/"port":"2"/' >"$T/port.json"
chmod 600 "$T/port.json"
run_peer port --name alice --directory "$T/port.json"
one_line port 6 'port\.json: contacts\[1\] \("bob"\): "port" must be an integer from 1 to 65535, not a string'
cp "$T/good.json" "$T/open.json"
chmod 644 "$T/open.json"
run_peer open --name alice --directory "$T/open.json"
one_line open 6 'open\.json holds shared secrets but has mode 0644: other users can read it, so it is refused; fix it with: chmod 600 .*open\.json'
pass "unreadable, malformed, invalid and group/world-readable directories: one line, exit 6"

# A directory of fingerprints only may be world-readable.
FPB=$("$VKEYGEN" -q -o "$T/bob.key")
printf '{"version":1,"contacts":[{"name":"bob","ip":"127.0.0.1","port":2,"fingerprint":"%s"}]}\n' \
    "$FPB" >"$T/public.json"
chmod 644 "$T/public.json"
"$VPEER" --name alice --directory "$T/public.json" --port 0 --bind 127.0.0.1 --receive-only \
    </dev/null >"$T/public.out" 2>"$T/public.log" &
PID[public]=$!
wait_log public 'listening on 127\.0\.0\.1:[0-9]+ as alice'
stop_peer public
expect_exit public 0
pass "a directory without secrets may be mode 0644; --port 0 when alice has no entry"

# Own entry missing and no --port.
printf '{"version":1,"contacts":[{"name":"bob","ip":"127.0.0.1","port":2,"secret":"a long enough secret"}]}\n' >"$T/bobonly.json"
chmod 600 "$T/bobonly.json"
run_peer noself --name carol --directory "$T/bobonly.json"
one_line noself 1 '"carol" is not in .*bobonly\.json: add your own entry \(name, ip, port\) or give --port'
# Every entry but the user's own needs a way to be authenticated.
run_peer noauth --name carol --directory "$T/good.json"
one_line noauth 6 'good\.json: contacts\[0\] \("alice"\): needs a "secret" \(or "psk"\) or a "fingerprint"'
# Key file problems.
run_peer nokey --name alice --directory "$T/good.json" --key "$T/none.key"
one_line nokey 6 'cannot open key file .*none\.key'
chmod 644 "$T/bob.key"
run_peer openkey --name alice --directory "$T/good.json" --key "$T/bob.key"
one_line openkey 6 'has mode 0644: it is accessible by other users'
pass "own entry and key file problems: one line each"

# The port of the user's own entry is the default; taken port: exit 2.
"$VPEER" --name alice --directory "$T/public.json" --port 0 --bind 127.0.0.1 --receive-only \
    </dev/null >"$T/holder.out" 2>"$T/holder.log" &
PID[holder]=$!
wait_log holder 'listening on '
HP=$(grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$T/holder.log" | sed -E 's/.*:([0-9]+)$/\1/')
run_peer taken --name alice --directory "$T/good.json" --bind 127.0.0.1 --port "$HP"
one_line taken 2 "cannot bind 127\.0\.0\.1:$HP"
stop_peer holder
pass "port in use: one line, exit 2"

# --stretch.
printf 'correct horse battery staple\n' | "$VPEER" --stretch >"$T/psk.out"
grep -qx 52cbdadf0f5312fb8a18f1ab414d519d10ba7e5721d8481a379f3887f3d9fba0 "$T/psk.out" ||
    fail "--stretch: $(cat "$T/psk.out")"
RC=0
printf '\n' | "$VPEER" --stretch >/dev/null 2>"$T/stretch.err" || RC=$?
one_line stretch 1 'the secret must be 1 to 1024 bytes'
pass "--stretch prints the PSK and refuses an empty secret"
