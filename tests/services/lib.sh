# tests/services/lib.sh - shared by the service tests (chat, bank, user
# authentication, key exchanges); sourced, not run.
#
# Every test is invoked by ctest as
#     bash test_NAME.sh VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN VEIL_USER
# It builds on tests/integration/lib.sh (own temporary directory, HOME
# inside it, port 0, bounded waits, everything started is killed on exit)
# and adds: user directories, a server whose standard input is a fifo held
# open by the test (the chat console), chat clients typing through fifos,
# bank clients, and the two modes (set_mode enc|plain).

if [ $# -lt 4 ]; then
    echo "usage: $0 VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN VEIL_USER" >&2
    exit 2
fi
VUSER=$4
[ -x "$VUSER" ] || { echo "not executable: $VUSER" >&2; exit 2; }
# shellcheck source=../integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

HELD=() # fifo descriptors this shell holds open (closed in every child)

# set_mode enc|plain: CMODE (client options) and SMODE (server options).
set_mode() {
    MODE=$1
    if [ "$MODE" = plain ]; then
        CMODE=(--plain)
        SMODE=(--allow-plain)
    else
        CMODE=()
        SMODE=()
    fi
}

ms() { date +%s%3N; }

# add_user FILE NAME PASSWORD: adds NAME to the user directory FILE (fast
# PBKDF2 for tests) and keeps the password in $T/NAME.pw (mode 0600).
add_user() {
    local file=$1 name=$2 pw=$3
    (umask 077 && printf '%s\n' "$pw" >"$T/$name.pw")
    printf '%s\n' "$pw" | "$VUSER" -f "$file" --iterations 4096 add "$name" >/dev/null ||
        fail "veil-user add $name"
}

# hold_fifo NAME: creates $T/NAME.in and holds it open read-write (so
# opening it never blocks and EOF comes only from close_fifo); HFD = the fd.
hold_fifo() {
    rm -f "$T/$1.in"
    mkfifo -m 600 "$T/$1.in"
    exec {HFD}<>"$T/$1.in"
    HELD+=("$HFD")
}

# close_fifo FD: end of input for whoever reads that fifo.
close_fifo() {
    local fd=$1 i
    eval "exec $fd>&-"
    for i in "${!HELD[@]}"; do
        [ "${HELD[$i]}" = "$fd" ] && unset 'HELD[i]'
    done
    HELD=("${HELD[@]}")
}

# spawn OUT STDIN CMD...: runs CMD in the background (bounded by timeout
# 60) with stdin from STDIN, stdout $T/OUT.out, stderr $T/OUT.err, and fd 3
# from the file $SPAWN_FD3 if set (a password); the fifos this shell holds
# are closed in the child, so closing one here is an EOF for its reader.
# LAST_PID is the process.
spawn() {
    local out=$1 in=$2
    shift 2
    (
        for f in "${HELD[@]}"; do eval "exec $f>&-"; done
        if [ -n "${SPAWN_FD3:-}" ]; then exec 3<"$SPAWN_FD3"; fi
        exec timeout 60 "$@" <"$in" >"$T/$out.out" 2>"$T/$out.err"
    ) &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# srv_start NAME STDIN [options...]: veil-server with key $T/NAME.key
# (made if missing), stdout $T/NAME.out, log $T/NAME.log; PORT, SERVER_PID,
# FP (its fingerprint).
srv_start() {
    local name=$1 in=$2
    shift 2
    [ -f "$T/$name.key" ] || make_key "$name" >/dev/null
    FP=$("$VKEYGEN" --show "$T/$name.key")
    (
        for f in "${HELD[@]}"; do eval "exec $f>&-"; done
        exec "$VSERVER" --key "$T/$name.key" "$@" 0 <"$in" >"$T/$name.out" 2>"$T/$name.log"
    ) &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_for "$T/$name.log" 'listening on ' 10 || fail "server $name did not start"
    PORT=$(grep -m1 -oE 'listening on [^ ]*:[0-9]+' "$T/$name.log" | sed -E 's/.*:([0-9]+)$/\1/')
    [ -n "$PORT" ] || fail "no port in the log of server $name"
}

# bank OUT USER [arguments...]: one bank client run as USER (password from
# $T/USER.pw on fd 3), stdin from $BANK_IN (default /dev/null); status in RC,
# elapsed ms in ELAPSED.
bank() {
    local out=$1 user=$2
    shift 2
    local t0
    t0=$(ms)
    RC=0
    timeout 30 "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" --service bank --user "$user" \
        --password-fd 3 "$@" 3<"$T/$user.pw" <"${BANK_IN:-/dev/null}" \
        >"$T/$out.out" 2>"$T/$out.err" || RC=$?
    ELAPSED=$(($(ms) - t0))
}

# balance_is USER AMOUNT: the bank says USER's balance is AMOUNT.
balance_is() {
    bank bal "$1" 127.0.0.1 "$PORT" balance
    [ "$RC" -eq 0 ] || fail "[$MODE] balance of $1: exit status $RC: $(cat "$T/bal.err")"
    grep -qx "balance $2" "$T/bal.out" || fail "[$MODE] balance of $1 is $(cat "$T/bal.out"), expected $2"
}
