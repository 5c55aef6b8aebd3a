#!/bin/bash
# No lost update, in both modes: two clients withdraw 1.00 twenty-five
# times each, at the same time, from one account holding 30.00: exactly 30
# withdrawals succeed, 20 are refused, the balance ends at 0.00 and never
# goes below.  Once through one server, once through two server processes
# sharing the ledger file (SQLite transactions serialise them).
source "$(dirname "$0")/lib.sh"

add_user "$T/users.json" alice 'alice pw'
for i in $(seq 1 25); do echo "withdraw 1"; done >"$T/withdraw25.txt"

# race PORT_A PORT_B LABEL: the two withdrawing clients, then the checks.
race() {
    local pa=$1 pb=$2 label=$3
    SPAWN_FD3="$T/alice.pw" spawn wa "$T/withdraw25.txt" "$VCLIENT" "${CMODE[@]}" \
        --fingerprint "$FP" --service bank --user alice --password-fd 3 127.0.0.1 "$pa"
    local a=$LAST_PID
    SPAWN_FD3="$T/alice.pw" spawn wb "$T/withdraw25.txt" "$VCLIENT" "${CMODE[@]}" \
        --fingerprint "$FP" --service bank --user alice --password-fd 3 127.0.0.1 "$pb"
    local b=$LAST_PID
    for p in $a $b; do
        wait_exit "$p" 60 || fail "[$label] a withdrawing client did not finish"
        [ "$WAIT_STATUS" -eq 0 ] || [ "$WAIT_STATUS" -eq 8 ] ||
            fail "[$label] withdrawing client exit status $WAIT_STATUS"
    done
    local ok refused
    ok=$(cat "$T/wa.out" "$T/wb.out" | grep -c '^withdrew 1\.00, balance ')
    refused=$(cat "$T/wa.err" "$T/wb.err" | grep -c 'refused (insufficient_funds)')
    [ "$ok" -eq 30 ] || fail "[$label] $ok withdrawals succeeded, expected 30"
    [ "$refused" -eq 20 ] || fail "[$label] $refused withdrawals refused, expected 20"
    # Every balance from 29.00 down to 0.00 was reported exactly once.
    cat "$T/wa.out" "$T/wb.out" | sed -n -E 's/^withdrew 1\.00, balance ([0-9]+)\.00$/\1/p' |
        sort -n | tr '\n' ' ' >"$T/balances.txt"
    [ "$(cat "$T/balances.txt")" = "$(seq 0 29 | tr '\n' ' ')" ] ||
        fail "[$label] reported balances: $(cat "$T/balances.txt")"
    balance_is alice 0.00
    pass "[$label] 2 x 25 concurrent withdrawals from 30.00: 30 applied, 20 refused, no lost update"
}

for mode in enc plain; do
    set_mode $mode
    DB="$T/bank-$mode.db"
    srv_start "one-$mode" /dev/null "${SMODE[@]}" --services bank --users "$T/users.json" --bank-db "$DB"
    P1=$PORT
    bank d alice 127.0.0.1 "$PORT" deposit 30
    expect_rc 0 "[$mode] deposit"
    race "$P1" "$P1" "$mode, one server"

    # A second server process on the same ledger file (and the same key).
    cp "$T/one-$mode.key" "$T/two-$mode.key"
    srv_start "two-$mode" /dev/null "${SMODE[@]}" --services bank --users "$T/users.json" --bank-db "$DB"
    P2=$PORT
    PORT=$P1
    bank d alice 127.0.0.1 "$PORT" deposit 30
    expect_rc 0 "[$mode] deposit"
    race "$P1" "$P2" "$mode, two servers, one ledger"
    PORT=$P2
    balance_is alice 0.00
done
