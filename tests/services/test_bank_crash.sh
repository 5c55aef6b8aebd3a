#!/bin/bash
# Durability of the bank, in both modes: the server is killed with SIGKILL
# in the middle of a session streaming deposits; restarted on the same
# ledger, it passes its consistency check, every acknowledged deposit is
# there, and the one request whose reply was lost, repeated with its
# request id (as the client's message says), is applied at most once: the
# balance ends exactly at the number of deposits made.
source "$(dirname "$0")/lib.sh"

add_user "$T/users.json" alice 'alice pw'
for i in $(seq 1 3000); do echo "deposit 1"; done >"$T/stream.txt"

for mode in enc plain; do
    set_mode $mode
    DB="$T/bank-$mode.db"
    srv_start "first-$mode" /dev/null "${SMODE[@]}" --services bank --users "$T/users.json" \
        --bank-db "$DB"
    SPAWN_FD3="$T/alice.pw" spawn "stream-$mode" "$T/stream.txt" "$VCLIENT" "${CMODE[@]}" \
        --fingerprint "$FP" --service bank --user alice --password-fd 3 127.0.0.1 "$PORT"
    cpid=$LAST_PID
    # Mid-session: after 40 acknowledged deposits.
    wait_for "$T/stream-$mode.out" '^deposited 1\.00, balance 40\.00$' 30 ||
        fail "[$mode] the deposits did not start"
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    wait_exit "$cpid" 10 || fail "[$mode] the client did not notice the server's death"
    [ "$WAIT_STATUS" -eq 5 ] || fail "[$mode] client exit status $WAIT_STATUS after the kill (expected 5)"
    acked=$(grep -c '^deposited 1\.00, balance ' "$T/stream-$mode.out")
    [ "$acked" -lt 3000 ] || fail "[$mode] the server was killed too late to test anything"
    # The acknowledged balances are 1..acked in order: nothing skipped or doubled.
    seq 1 "$acked" | sed 's/.*/deposited 1.00, balance &.00/' | cmp -s - "$T/stream-$mode.out" ||
        fail "[$mode] acknowledged balances are not 1..$acked"
    rid=$(sed -n -E 's/^veil-client: request ([0-9a-f]{32}) \(deposit 1\) may or may not have been applied.*/\1/p' \
        "$T/stream-$mode.err")
    [ -n "$rid" ] || fail "[$mode] the client did not name the request in doubt: $(cat "$T/stream-$mode.err")"
    pass "[$mode] SIGKILL after $acked acknowledged deposits; the client names the request in doubt"

    # Restart on the same ledger.
    srv_start "second-$mode" /dev/null "${SMODE[@]}" --services bank --users "$T/users.json" \
        --bank-db "$DB"
    grep -q "bank: ledger .* opened; consistency check passed" "$T/second-$mode.log" ||
        fail "[$mode] the restarted server did not check the ledger"
    bank b1 alice 127.0.0.1 "$PORT" balance
    expect_rc 0 "[$mode] balance after restart"
    before=$(sed -n -E 's/^balance ([0-9]+)\.00$/\1/p' "$T/b1.out")
    [ "$before" = "$acked" ] || [ "$before" = $((acked + 1)) ] ||
        fail "[$mode] balance $before after restart, $acked deposits acknowledged"
    # Repeat the request in doubt with its id: applied exactly once overall.
    bank retry alice 127.0.0.1 "$PORT" deposit 1 --request-id "$rid"
    expect_rc 0 "[$mode] retry of the request in doubt"
    if [ "$before" = "$acked" ]; then
        grep -qx "deposited 1.00, balance $((acked + 1)).00" "$T/retry.out" ||
            fail "[$mode] retry not applied: $(cat "$T/retry.out")"
    else
        grep -qx "deposited 1.00, balance $((acked + 1)).00 (a repeated request: it had been applied already, not applied again)" \
            "$T/retry.out" || fail "[$mode] retry applied twice: $(cat "$T/retry.out")"
    fi
    bank again alice 127.0.0.1 "$PORT" deposit 1 --request-id "$rid"
    grep -q 'a repeated request' "$T/again.out" || fail "[$mode] second retry: $(cat "$T/again.out")"
    balance_is alice "$((acked + 1)).00"
    # The history agrees: acked+1 deposits, distinct request ids, balances 1..acked+1.
    bank h alice 127.0.0.1 "$PORT" history 100
    n=$(grep -cE '^  #[0-9]+ ' "$T/h.out")
    want=$((acked + 1 > 100 ? 100 : acked + 1))
    [ "$n" -eq "$want" ] || fail "[$mode] history lists $n operations, expected $want"
    [ "$(grep -oE 'request [0-9a-f]{32}$' "$T/h.out" | sort -u | wc -l)" -eq "$n" ] ||
        fail "[$mode] a request id appears twice in the history"
    [ "$(grep -c "request $rid\$" "$T/h.out")" -eq 1 ] ||
        fail "[$mode] the request in doubt is not in the history exactly once"
    stop_server "$SERVER_PID"
    pass "[$mode] restart: ledger consistent, nothing acknowledged lost, the retried request applied once"
done
