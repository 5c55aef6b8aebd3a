#!/usr/bin/env bash
# Many clients at once: 50 in parallel, each with two messages, all acked.
. "$(dirname "$0")/lib.sh"

N=50
FP=$(make_key srv)
start_server srv --allow-plain

pids=()
for i in $(seq 1 $N); do
    mode=()
    [ $((i % 5)) -eq 0 ] && mode=(--plain)
    timeout 30 "$VCLIENT" "${mode[@]}" --fingerprint "$FP" -m "client $i first" -m "client $i second" \
        127.0.0.1 "$PORT" </dev/null >"$T/c$i.out" 2>"$T/c$i.err" &
    pids+=($!)
done
failed=0
for i in $(seq 1 $N); do
    rc=0
    wait "${pids[$((i - 1))]}" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "client $i: exit $rc: $(cat "$T/c$i.err")" >&2
        failed=$((failed + 1))
    fi
done
[ "$failed" -eq 0 ] || fail "$failed of $N clients failed"
for i in $(seq 1 $N); do
    acked "$T/c$i.out" "client $i first"
    acked "$T/c$i.out" "client $i second"
    server_shows "$T/srv.out" "client $i first"
    server_shows "$T/srv.out" "client $i second"
done
[ "$(wc -l <"$T/srv.out")" -eq $((2 * N)) ] || fail "server printed $(wc -l <"$T/srv.out") lines"
[ "$(grep -c 'closed by peer (close_notify)' "$T/srv.log")" -eq $N ] || fail "not every session closed cleanly"
if grep -E 'WARN|ERROR' "$T/srv.log"; then fail "warnings in the server log"; fi
pass "$N parallel clients, $((2 * N)) messages, all acknowledged"
