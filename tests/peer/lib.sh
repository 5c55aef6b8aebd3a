# tests/peer/lib.sh - shared by the veil-peer tests; sourced, not run.
#
# Every test is invoked by ctest as
#     bash test_NAME.sh VEIL_PEER VEIL_PEER_TESTHOOKS VEIL_KEYGEN
# It works in its own temporary directory (HOME points there too), runs its
# peers on 127.0.0.1 only, feeds each peer's standard input through a fifo
# held open by this shell (so "typing" is `say NAME "bob: hi"` and end of
# input is `end_input NAME`), bounds every wait, and kills whatever it
# started on exit.  Set VEIL_TEST_KEEP=1 to keep the directory.
#
# Ports: a peer's port must be in its contacts' directories before it
# starts, so ports are picked up front (free ones in 20000-31999, below the
# kernel's ephemeral range) and a scenario that loses a port to a race is
# restarted on fresh ones (with_ports).

set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 VEIL_PEER VEIL_PEER_TESTHOOKS VEIL_KEYGEN" >&2
    exit 2
fi
VPEER=$1
VPEERT=$2
VKEYGEN=$3
for p in "$VPEER" "$VPEERT" "$VKEYGEN"; do
    [ -x "$p" ] || { echo "not executable: $p" >&2; exit 2; }
done

TEST_TMP_PREFIX=veil-peer-test
WAIT_DEFAULT=10
declare -A PID=() FD=() PORT=() EXIT=()

# stop_all: closes every peer's input and stops every peer still running
# (SIGTERM, SIGKILL after 2 s).
stop_all() {
    local n fd
    for n in "${!FD[@]}"; do
        fd=${FD[$n]}
        eval "exec ${fd}>&-" 2>/dev/null || true
    done
    FD=()
    for n in "${!PID[@]}"; do
        kill -TERM "${PID[$n]}" 2>/dev/null || true
    done
    for n in "${!PID[@]}"; do
        stop_pid "${PID[$n]}"
    done
    PID=()
}

test_stop_hook() { stop_all; }

# A sanitizer report in any peer's log fails the test (-DVEIL_SANITIZE=ON).
test_check_hook() {
    # -q: a match counts even when a glob matched no file (grep -l would say 2).
    if grep -qsE -D skip 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' \
        "$T"/*.log "$T"/*.err; then
        echo "FAIL: sanitizer report in $(grep -lsE -D skip 'Sanitizer|runtime error:' "$T"/*.log "$T"/*.err)" >&2
        return 1
    fi
    return 0
}

# shellcheck source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

# wait_log NAME PATTERN [SECONDS]: the peer's log shows PATTERN, or fail.
wait_log() {
    wait_for "$T/$1.log" "$2" "${3:-10}" || fail "$1's log never showed /$2/"
}

# no_log NAME PATTERN: the peer's log does not show PATTERN.
no_log() {
    ! grep -qE -- "$2" "$T/$1.log" || fail "$1's log shows /$2/: $(grep -E -- "$2" "$T/$1.log")"
}

# free_port: a port in 20000-31999 on which nothing accepts on 127.0.0.1,
# and not already given to a peer of this test.
free_port() {
    local p used n
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 12000))
        used=0
        for n in "${!PORT[@]}"; do
            [ "${PORT[$n]}" = "$p" ] && used=1
        done
        [ "$used" = 0 ] || continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# entry NAME [JSON-MEMBERS]: one directory entry for NAME at its port.
entry() {
    local name=$1 extra=${2:-}
    printf '{"name":"%s","ip":"127.0.0.1","port":%s%s}' "$name" "${PORT[$name]}" \
        "${extra:+,$extra}"
}

# write_dir FILE ENTRY...: a directory file, mode 0600.
write_dir() {
    local file=$1
    shift
    local IFS=,
    printf '{"version":1,"contacts":[%s]}\n' "$*" >"$file"
    chmod 600 "$file"
}

# start_peer NAME DIRFILE [veil-peer options...]: starts a peer (binary
# $PEER_BIN, default veil-peer; user name $PEER_NAME, default NAME) on
# 127.0.0.1 with stdin from a fifo this shell holds open, stdout in
# $T/NAME.out, the log in $T/NAME.log.  Returns 2 if its port was taken
# meanwhile, fails the test on any other start-up failure.
start_peer() {
    local name=$1 dir=$2
    shift 2
    local bin=${PEER_BIN:-$VPEER} user=${PEER_NAME:-$name} fd
    rm -f "$T/$name.in" "$T/$name.out" "$T/$name.log"
    mkfifo "$T/$name.in"
    # The child must not inherit the write ends of the other peers' fifos,
    # or they would never see the end of their input.
    (
        for f in "${FD[@]}"; do eval "exec ${f}>&-"; done
        exec "$bin" --name "$user" --directory "$dir" --bind 127.0.0.1 "$@" \
            <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.log"
    ) &
    PID[$name]=$!
    exec {fd}>"$T/$name.in"
    FD[$name]=$fd
    for _ in $(seq 1 200); do
        grep -q 'listening on ' "$T/$name.log" 2>/dev/null && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    if grep -q 'cannot bind' "$T/$name.log" 2>/dev/null; then
        return 2
    fi
    fail "peer $name did not start: $(cat "$T/$name.log")"
}

# with_ports "NAME..." FUNCTION: gives each NAME a free port, then runs
# FUNCTION (which writes directories and starts peers); again on fresh ports
# if a port was taken meanwhile (FUNCTION returned 2), at most 5 times.
with_ports() {
    local names=$1 fn=$2 n rc
    for _ in 1 2 3 4 5; do
        PORT=()
        for n in $names; do
            PORT[$n]=$(free_port) || fail "no free port"
        done
        rc=0
        "$fn" || rc=$?
        [ "$rc" = 0 ] && return 0
        [ "$rc" = 2 ] || fail "$fn failed ($rc)"
        stop_all
    done
    fail "could not find free ports in 5 attempts"
}

# say NAME LINE: NAME "types" LINE.
say() {
    printf '%s\n' "$2" >&"${FD[$1]}"
}

# end_input NAME [SECONDS]: closes NAME's stdin and waits for it to exit;
# its status in EXIT[NAME].
end_input() {
    local name=$1 secs=${2:-10} pid=${PID[$1]} fd=${FD[$1]}
    eval "exec ${fd}>&-"
    unset "FD[$name]"
    for _ in $(seq 1 $((secs * 20))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            EXIT[$name]=0
            wait "$pid" || EXIT[$name]=$?
            unset "PID[$name]"
            return 0
        fi
        sleep 0.05
    done
    fail "$name did not exit within $secs s of the end of its input"
}

# stop_peer NAME: SIGTERM and wait (bounded); status in EXIT[NAME].
stop_peer() {
    local name=$1 pid=${PID[$1]}
    kill -TERM "$pid"
    for _ in $(seq 1 200); do
        if ! kill -0 "$pid" 2>/dev/null; then
            EXIT[$name]=0
            wait "$pid" || EXIT[$name]=$?
            unset "PID[$name]"
            if [ -n "${FD[$name]:-}" ]; then
                eval "exec ${FD[$name]}>&-"
                unset "FD[$name]"
            fi
            return 0
        fi
        sleep 0.05
    done
    fail "$name did not exit within 10 s of SIGTERM"
}

# expect_exit NAME STATUS
expect_exit() {
    [ "${EXIT[$1]}" = "$2" ] || fail "$1 exited with ${EXIT[$1]}, expected $2"
}

TS_RE='\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\]'

# shown NAME SENDER TEXT [SECONDS]: NAME printed "[time] SENDER: TEXT"
# (SENDER and TEXT as fixed strings).
shown() {
    local name=$1 sender=$2 text=$3 secs=${4:-10}
    for _ in $(seq 1 $((secs * 20))); do
        if [ -f "$T/$name.out" ] && grep -E "^$TS_RE " "$T/$name.out" | sed -E "s/^$TS_RE //" |
            grep -qxF -- "$sender: $text"; then
            return 0
        fi
        sleep 0.05
    done
    fail "$name's output lacks '[time] $sender: $text': $(cat "$T/$name.out")"
}

# nothing_shown NAME: NAME printed no message.
nothing_shown() {
    [ ! -s "$T/$1.out" ] || fail "$1 showed a message: $(cat "$T/$1.out")"
}
