#!/usr/bin/env bash
# tests/user/test_veil_user.sh - veil-user from the command line.
#
#   bash test_veil_user.sh PATH-TO-veil-user
#
# add/list/del/passwd round trip, the default file under $HOME, file and
# directory modes, refusal of a group/world-accessible file, every exit
# status, that the password is never taken from (nor visible in) the command
# line and never written to the file, and concurrent adds (none lost).
# Runs in its own temporary directory with HOME pointing there.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH-TO-veil-user" >&2
    exit 2
fi
VU=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/veil-user-test.XXXXXX")
export HOME="$T/home"
mkdir -p "$HOME"
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "(kept $T)" >&2; else rm -rf "$T"; fi; exit $rc' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect STATUS CMD...: runs CMD (stdin as given), its stdout+stderr in $T/out.
expect() {
    local want=$1 rc=0
    shift
    "$@" >"$T/out" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$T/out")"
}

contains() {
    grep -qF -- "$1" "$T/out" || fail "output lacks '$1': $(cat "$T/out")"
}

mode_of() { stat -c %a "$1"; }

IT=(--iterations 4096)
F="$T/users.json"

# --- help and usage errors -------------------------------------------------
expect 0 "$VU" --help
contains "add NAME"
contains "Exit status"
expect 0 "$VU" --version
expect 1 "$VU"
contains "missing command"
expect 1 "$VU" frobnicate
contains "unknown command"
expect 1 "$VU" add
contains "needs a user name"
expect 1 "$VU" -f "$F" add "bad name" </dev/null
contains "invalid user name"
expect 1 "$VU" -f "$F" add "$(printf 'x%.0s' $(seq 1 65))" </dev/null
expect 1 "$VU" -f "$F" add 'é' </dev/null
expect 1 "$VU" --iterations 4095 -f "$F" add alice </dev/null
contains "--iterations"
expect 1 "$VU" --iterations abc -f "$F" add alice </dev/null
expect 1 "$VU" --iterations 5000 -f "$F" list
expect 1 "$VU" --bogus list
contains "unknown option"
expect 1 "$VU" -f
contains "needs a value"
[ ! -e "$F" ] || fail "a usage error created $F"

# --- the password is never taken from the command line ----------------------
echo 'stdin-pass' | expect 1 "$VU" -f "$F" "${IT[@]}" add alice hunter2-on-argv
contains "never taken from the command line"
grep -q 'hunter2-on-argv' "$T/out" && fail "the would-be password was echoed"
[ ! -e "$F" ] || fail "add with a password argument created $F"
echo 'x' | expect 1 "$VU" -f "$F" del alice extra

# While veil-user waits for the password, its command line holds none.
mkfifo "$T/fifo"
"$VU" -f "$F" "${IT[@]}" add alice <"$T/fifo" >"$T/add.out" 2>&1 &
pid=$!
exec 3>"$T/fifo"
for _ in $(seq 1 50); do [ -r "/proc/$pid/cmdline" ] && break; sleep 0.02; done
tr '\0' ' ' <"/proc/$pid/cmdline" >"$T/cmdline" || true
echo 'fifo-secret-1' >&3
exec 3>&-
wait "$pid" || fail "add alice via fifo: $(cat "$T/add.out")"
grep -q 'add alice' "$T/cmdline" || fail "did not see the command line: $(cat "$T/cmdline")"
grep -q 'fifo-secret' "$T/cmdline" && fail "password on the command line"

# --- round trip -------------------------------------------------------------
[ "$(mode_of "$F")" = 600 ] || fail "mode $(mode_of "$F"), expected 600"
echo 'bob-pass' | expect 0 "$VU" -f "$F" "${IT[@]}" add bob
contains "added user bob"
echo 'carol-pass' | expect 0 "$VU" -f "$F" "${IT[@]}" add carol.c-9_x
expect 0 "$VU" -f "$F" list
[ "$(cat "$T/out")" = "$(printf 'alice\nbob\ncarol.c-9_x')" ] || fail "list: $(cat "$T/out")"

# add of an existing user: status 7, nothing changed
cp "$F" "$T/before"
echo 'other' | expect 7 "$VU" -f "$F" "${IT[@]}" add bob
contains "already exists"
cmp -s "$F" "$T/before" || fail "a refused add changed the file"

# passwd: a new salt and keys for bob only
echo 'bob-new-pass' | expect 0 "$VU" -f "$F" "${IT[@]}" passwd bob
contains "new password for user bob"
# (the file's layout is ours: one user per block, closed by "}")
bob_block() { sed -n '/^    "bob": {/,/^    }/p' "$1"; }
others() { sed '/^    "bob": {/,/^    }/d' "$1"; }
[ "$(others "$T/before")" = "$(others "$F")" ] || fail "passwd bob changed other users"
[ -n "$(bob_block "$F")" ] || fail "no bob block"
for f in salt stored_key server_key; do
    [ "$(bob_block "$T/before" | grep "\"$f\"")" != "$(bob_block "$F" | grep "\"$f\"")" ] ||
        fail "passwd bob kept the $f"
done
echo 'x' | expect 7 "$VU" -f "$F" "${IT[@]}" passwd nobody
contains "no user nobody"

# del
expect 0 "$VU" -f "$F" del bob
contains "removed user bob"
expect 7 "$VU" -f "$F" del bob
expect 0 "$VU" -f "$F" list
[ "$(cat "$T/out")" = "$(printf 'alice\ncarol.c-9_x')" ] || fail "list after del: $(cat "$T/out")"
[ "$(mode_of "$F")" = 600 ] || fail "mode after del $(mode_of "$F")"

# no password in the file, in clear or hex
for pw in fifo-secret-1 bob-pass bob-new-pass carol-pass; do
    grep -qF "$pw" "$F" && fail "password $pw in the file"
    hex=$(printf '%s' "$pw" | od -An -tx1 | tr -d ' \n')
    grep -qi "$hex" "$F" && fail "password $pw in hex in the file"
done
grep -q '"stored_key"' "$F" || fail "no verifier in the file"
ls "$T" | grep -q 'tmp-' && fail "temporary files left behind: $(ls "$T")"

# --- password problems: status 8 --------------------------------------------
expect 8 "$VU" -f "$F" "${IT[@]}" add dave </dev/null
contains "no password"
printf '\n' | expect 8 "$VU" -f "$F" "${IT[@]}" add dave
contains "empty"
printf 'a\0b\n' | expect 8 "$VU" -f "$F" "${IT[@]}" add dave
contains "NUL"
head -c 2000 /dev/zero | tr '\0' 'p' | expect 8 "$VU" -f "$F" "${IT[@]}" add dave
contains "too long"
expect 0 "$VU" -f "$F" list
grep -q dave "$T/out" && fail "dave was added"

# --- unsafe modes: status 6, with the fix ------------------------------------
for m in 644 640 604 660 666; do
    chmod "$m" "$F"
    expect 6 "$VU" -f "$F" list
    contains "has mode 0$m"
    contains "chmod 600 $F"
    echo 'x' | expect 6 "$VU" -f "$F" "${IT[@]}" add eve
    expect 6 "$VU" -f "$F" del alice
done
chmod 600 "$F"
expect 0 "$VU" -f "$F" list

# malformed and missing files: status 6
printf '{"version": 1, "users": {' >"$T/bad.json"
chmod 600 "$T/bad.json"
expect 6 "$VU" -f "$T/bad.json" list
contains "line"
expect 6 "$VU" -f "$T/missing.json" list
contains "no user directory"
expect 6 "$VU" -f "$T/missing.json" del alice
echo 'x' | expect 6 "$VU" -f "$T/missing.json" "${IT[@]}" passwd alice
mkdir -p "$T/ro" && chmod 500 "$T/ro"
if [ "$(id -u)" -ne 0 ]; then
    echo 'x' | expect 6 "$VU" -f "$T/ro/users.json" "${IT[@]}" add alice
fi

# --- the default file, ~/.config/veil/users.json -----------------------------
echo 'home-pass' | expect 0 "$VU" "${IT[@]}" add frank
D="$HOME/.config/veil/users.json"
[ -f "$D" ] || fail "default file not created"
[ "$(mode_of "$D")" = 600 ] || fail "default file mode $(mode_of "$D")"
[ "$(mode_of "$HOME/.config/veil")" = 700 ] || fail "directory mode $(mode_of "$HOME/.config/veil")"
expect 0 "$VU" list
[ "$(cat "$T/out")" = frank ] || fail "default list: $(cat "$T/out")"

# --- default iterations -------------------------------------------------------
echo 'slow-pass' | expect 0 "$VU" -f "$F" add grace
contains "100000 iterations"
grep -q '"iterations": 100000' "$F" || fail "default iterations not written"

# --- concurrent adds: none lost ----------------------------------------------
pids=()
for i in $(seq 1 8); do
    echo "pw$i" | "$VU" -f "$T/conc.json" "${IT[@]}" add "user$i" >"$T/conc$i.out" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent add failed"; done
expect 0 "$VU" -f "$T/conc.json" list
[ "$(wc -l <"$T/out")" -eq 8 ] || fail "concurrent adds lost users: $(cat "$T/out")"

echo "test_veil_user: ok"
