#!/bin/bash
# The bank service end to end, in both modes: deposit, withdraw, balance,
# history (command line and pipe forms); overdraft refused with the balance
# unchanged; malformed, zero and negative amounts refused; a repeated
# request id applied once; a reused id with another amount refused; the
# server refuses to offer the bank without a user directory.
source "$(dirname "$0")/lib.sh"

add_user "$T/users.json" alice 'alice pw'
add_user "$T/users.json" bob 'bob pw'

# Configuration errors: bank needs --users; client needs --user.
RC=0
"$VSERVER" --key "$T/x.key" --gen-key --services bank 0 </dev/null >/dev/null 2>"$T/nousers.err" || RC=$?
expect_rc 1 "bank without --users"
grep -q 'needs --users' "$T/nousers.err" || fail "no reason for refusing bank without --users"
RC=0
"$VCLIENT" --service bank 127.0.0.1 1 balance </dev/null >/dev/null 2>"$T/nouser.err" || RC=$?
expect_rc 1 "bank without --user"
RC=0
"$VCLIENT" --service bank --user alice 127.0.0.1 1 fly </dev/null >/dev/null 2>"$T/badop.err" || RC=$?
expect_rc 1 "unknown bank operation"
pass "configuration errors refused"

for mode in enc plain; do
    set_mode $mode
    srv_start "srv-$mode" /dev/null "${SMODE[@]}" --services msg,bank --users "$T/users.json" \
        --bank-db "$T/bank-$mode.db"

    # Happy path, command-line form.
    bank dep alice 127.0.0.1 "$PORT" deposit 12.34
    expect_rc 0 "[$mode] deposit"
    grep -qx 'deposited 12.34, balance 12.34' "$T/dep.out" || fail "[$mode] deposit output: $(cat "$T/dep.out")"
    bank wd alice 127.0.0.1 "$PORT" withdraw 2.3 balance
    expect_rc 0 "[$mode] withdraw"
    grep -qx 'withdrew 2.30, balance 10.04' "$T/wd.out" || fail "[$mode] withdraw output: $(cat "$T/wd.out")"
    grep -qx 'balance 10.04' "$T/wd.out" || fail "[$mode] balance after withdraw"
    # Pipe form: several operations, one per line, comments and blank lines skipped.
    printf '# a script\ndeposit 100\n\nwithdraw 0.04\nbalance\nhistory 10\n' >"$T/ops.txt"
    BANK_IN="$T/ops.txt" bank pipe alice 127.0.0.1 "$PORT"
    expect_rc 0 "[$mode] pipe form"
    grep -qx 'deposited 100.00, balance 110.04' "$T/pipe.out" || fail "[$mode] pipe deposit"
    grep -qx 'withdrew 0.04, balance 110.00' "$T/pipe.out" || fail "[$mode] pipe withdraw"
    grep -qx 'balance 110.00' "$T/pipe.out" || fail "[$mode] pipe balance"
    [ "$(grep -cE '^  #[0-9]+ ' "$T/pipe.out")" -eq 4 ] || fail "[$mode] history should list 4 operations"
    grep -qE '^  #1 .* deposit +12\.34  balance +12\.34  request [0-9a-f]{32}$' "$T/pipe.out" ||
        fail "[$mode] history lacks the first deposit"
    # Accounts are per user.
    balance_is bob 0.00
    pass "[$mode] deposit, withdraw, balance, history; accounts per user"

    # Overdraft: refused, exit 8, balance unchanged.
    bank od alice 127.0.0.1 "$PORT" withdraw 110.01
    expect_rc 8 "[$mode] overdraft"
    grep -q 'refused (insufficient_funds): insufficient funds: the balance is 110.00' "$T/od.err" ||
        fail "[$mode] overdraft message: $(cat "$T/od.err")"
    [ ! -s "$T/od.out" ] || fail "[$mode] overdraft printed a result"
    balance_is alice 110.00
    pass "[$mode] overdraft refused, balance unchanged"

    # Malformed, zero and negative amounts (the negative one from a pipe,
    # where it is not an option).
    for amount in abc 1.234 0 0.00 1e3 12. .5; do
        bank bad alice 127.0.0.1 "$PORT" deposit "$amount"
        expect_rc 8 "[$mode] amount '$amount'"
        grep -q 'refused (bad_amount)' "$T/bad.err" || fail "[$mode] amount '$amount': $(cat "$T/bad.err")"
    done
    printf 'withdraw -5\ndeposit -5\n' >"$T/neg.txt"
    BANK_IN="$T/neg.txt" bank neg alice 127.0.0.1 "$PORT"
    expect_rc 8 "[$mode] negative amounts"
    [ "$(grep -c 'refused (bad_amount)' "$T/neg.err")" -eq 2 ] || fail "[$mode] negative amounts: $(cat "$T/neg.err")"
    balance_is alice 110.00
    pass "[$mode] malformed, zero and negative amounts refused"

    # The same request id twice: applied once, the repeat says so.
    rid="retry-$mode-0123456789abcdef"
    bank r1 alice 127.0.0.1 "$PORT" deposit 5 --request-id "$rid"
    expect_rc 0 "[$mode] first request"
    grep -qx 'deposited 5.00, balance 115.00' "$T/r1.out" || fail "[$mode] first request: $(cat "$T/r1.out")"
    bank r2 alice 127.0.0.1 "$PORT" deposit 5 --request-id "$rid"
    expect_rc 0 "[$mode] repeated request"
    grep -qx 'deposited 5.00, balance 115.00 (a repeated request: it had been applied already, not applied again)' \
        "$T/r2.out" || fail "[$mode] repeated request: $(cat "$T/r2.out")"
    balance_is alice 115.00
    # The same id for another amount is refused, and changes nothing.
    bank r3 alice 127.0.0.1 "$PORT" deposit 6 --request-id "$rid"
    expect_rc 8 "[$mode] reused request id"
    grep -q 'refused (request_mismatch)' "$T/r3.err" || fail "[$mode] reused id: $(cat "$T/r3.err")"
    balance_is alice 115.00
    bank hist alice 127.0.0.1 "$PORT" history 100
    [ "$(grep -c "request $rid\$" "$T/hist.out")" -eq 1 ] || fail "[$mode] the repeated request is in the history twice"
    # A refused withdrawal repeated stays refused (same outcome), balance unchanged.
    rid2="over-$mode-0123456789abcdef"
    bank o1 alice 127.0.0.1 "$PORT" withdraw 500 --request-id "$rid2"
    expect_rc 8 "[$mode] refused withdrawal"
    bank o2 alice 127.0.0.1 "$PORT" withdraw 500 --request-id "$rid2"
    expect_rc 8 "[$mode] repeated refused withdrawal"
    grep -q 'insufficient_funds' "$T/o2.err" || fail "[$mode] repeated refusal: $(cat "$T/o2.err")"
    balance_is alice 115.00
    pass "[$mode] a repeated request id is applied once"

    # msg still works on the same server (with a login, as every session here).
    RC=0
    timeout 30 "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" --user bob --password-fd 3 -m hello \
        127.0.0.1 "$PORT" 3<"$T/bob.pw" </dev/null >"$T/msg.out" 2>"$T/msg.err" || RC=$?
    expect_rc 0 "[$mode] msg with a login"
    acked "$T/msg.out" hello
    # ... and a session without a login is refused on a server with --users.
    RC=0
    timeout 30 "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" -m hello 127.0.0.1 "$PORT" \
        </dev/null >"$T/anon.out" 2>"$T/anon.err" || RC=$?
    expect_rc 7 "[$mode] msg without a login"
    grep -qx 'veil-client: authentication failed' "$T/anon.err" || fail "[$mode] anonymous: $(cat "$T/anon.err")"
    pass "[$mode] msg beside bank; every session logs in"

    stop_server "$SERVER_PID"
    [ "$WAIT_STATUS" -eq 0 ] || fail "[$mode] server exit status $WAIT_STATUS"
    grep -q "mode=$([ $mode = plain ] && echo plaintext || echo encrypted) .*service=bank user=alice" \
        "$T/srv-$mode.log" || fail "[$mode] server log lacks the bank sessions"
done
