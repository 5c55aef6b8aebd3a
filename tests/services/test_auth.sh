#!/bin/bash
# User authentication policy of veil-server, in both modes: a wrong
# password and an unknown user get the same error, the same exit status and
# the same delay (>= 0.9 s) without holding other clients up; after N
# failures for a user name, or M from an address, further logins are
# refused at once, even with the right password, while other users (or
# addresses) are still served.
source "$(dirname "$0")/lib.sh"

add_user "$T/users.json" alice 'alice pw'
add_user "$T/users.json" bob 'bob pw'
(umask 077 && printf 'not the password\n' >"$T/wrong.pw")
cp "$T/wrong.pw" "$T/nobody.pw"
cp "$T/wrong.pw" "$T/ghost1.pw"
cp "$T/wrong.pw" "$T/ghost2.pw"

# login OUT USER PWFILE: a msg session logging in; RC, ELAPSED.
login() {
    local out=$1 user=$2 pwfile=$3 t0
    t0=$(ms)
    RC=0
    timeout 30 "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" --user "$user" --password-fd 3 \
        -m "hi from $user" 127.0.0.1 "$PORT" 3<"$pwfile" </dev/null >"$T/$out.out" \
        2>"$T/$out.err" || RC=$?
    ELAPSED=$(($(ms) - t0))
}

for mode in enc plain; do
    set_mode $mode

    # --- the generic error and the delay --------------------------------
    srv_start "gen-$mode" /dev/null "${SMODE[@]}" --users "$T/users.json"
    login ok alice "$T/alice.pw"
    expect_rc 0 "[$mode] right password"
    acked "$T/ok.out" "hi from alice"

    login wrongpw alice "$T/wrong.pw"
    expect_rc 7 "[$mode] wrong password"
    [ "$ELAPSED" -ge 900 ] || fail "[$mode] wrong password answered after $ELAPSED ms (< 900)"
    login unknown nobody "$T/nobody.pw"
    expect_rc 7 "[$mode] unknown user"
    [ "$ELAPSED" -ge 900 ] || fail "[$mode] unknown user answered after $ELAPSED ms (< 900)"
    [ "$(cat "$T/wrongpw.err")" = "veil-client: authentication failed" ] ||
        fail "[$mode] wrong password error: $(cat "$T/wrongpw.err")"
    cmp -s "$T/wrongpw.err" "$T/unknown.err" || fail "[$mode] the two failures are told apart"
    [ ! -s "$T/wrongpw.out" ] && [ ! -s "$T/unknown.out" ] || fail "[$mode] a failed login printed output"
    grep -q "authentication failed for user 'alice' (wrong password)" "$T/gen-$mode.log" ||
        fail "[$mode] server log lacks the wrong password"
    grep -q "authentication failed for user 'nobody' (no such user)" "$T/gen-$mode.log" ||
        fail "[$mode] server log lacks the unknown user"
    pass "[$mode] wrong password and unknown user: one error, exit 7, delayed >= 0.9 s"

    # The delay holds nobody else up.
    (
        for f in "${HELD[@]}"; do eval "exec $f>&-"; done
        exec timeout 30 "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" --user alice --password-fd 3 \
            127.0.0.1 "$PORT" 3<"$T/wrong.pw" </dev/null >/dev/null 2>&1
    ) &
    slow=$!
    PIDS+=("$slow")
    sleep 0.2
    login during bob "$T/bob.pw"
    expect_rc 0 "[$mode] login during another's delay"
    [ "$ELAPSED" -lt 700 ] || fail "[$mode] a login took $ELAPSED ms while another one was delayed"
    wait_exit "$slow" 10 || fail "[$mode] the delayed client did not finish"
    [ "$WAIT_STATUS" -eq 7 ] || fail "[$mode] delayed client exit status $WAIT_STATUS"
    pass "[$mode] a delayed refusal does not hold other clients"
    stop_server "$SERVER_PID"

    # --- rate limit per user name ----------------------------------------
    srv_start "user-$mode" /dev/null "${SMODE[@]}" --users "$T/users.json" --auth-limit 3 \
        --auth-addr-limit 100
    for i in 1 2 3; do
        login f$i alice "$T/wrong.pw"
        expect_rc 7 "[$mode] failure $i"
    done
    login locked alice "$T/alice.pw"
    expect_rc 7 "[$mode] right password while locked"
    cmp -s "$T/locked.err" "$T/f1.err" || fail "[$mode] the lock is told apart: $(cat "$T/locked.err")"
    [ "$ELAPSED" -lt 900 ] || fail "[$mode] a locked login took $ELAPSED ms: not refused at once"
    grep -q "login refused for user 'alice': too many failed logins" "$T/user-$mode.log" ||
        fail "[$mode] no log line for the locked login"
    grep -q "user 'alice' reached 3 failed logins" "$T/user-$mode.log" ||
        fail "[$mode] no log line for reaching the limit"
    login other bob "$T/bob.pw"
    expect_rc 0 "[$mode] another user from the same address"
    pass "[$mode] rate limit per user: refused at once after 3 failures, others served"
    stop_server "$SERVER_PID"

    # --- rate limit per address ------------------------------------------
    srv_start "addr-$mode" /dev/null "${SMODE[@]}" --users "$T/users.json" --auth-limit 100 \
        --auth-addr-limit 2
    login g1 ghost1 "$T/ghost1.pw"
    expect_rc 7 "[$mode] address failure 1"
    login g2 ghost2 "$T/ghost2.pw"
    expect_rc 7 "[$mode] address failure 2"
    login blocked bob "$T/bob.pw"
    expect_rc 7 "[$mode] right password from a blocked address"
    cmp -s "$T/blocked.err" "$T/g1.err" || fail "[$mode] the block is told apart: $(cat "$T/blocked.err")"
    [ "$ELAPSED" -lt 900 ] || fail "[$mode] a blocked session took $ELAPSED ms: not refused at once"
    grep -q "refused: too many failed logins from 127.0.0.1" "$T/addr-$mode.log" ||
        fail "[$mode] no log line for the blocked address"
    pass "[$mode] rate limit per address: refused at once after 2 failures"
    stop_server "$SERVER_PID"

    # --- a login offered to a server without a user directory ------------
    srv_start "nousers-$mode" /dev/null "${SMODE[@]}"
    login nodir alice "$T/alice.pw"
    expect_rc 7 "[$mode] login to a server without --users"
    stop_server "$SERVER_PID"
    pass "[$mode] a login to a server without users fails the same way"
done

# Secrets never on the command line: there is no --password option.
RC=0
"$VCLIENT" --password x 127.0.0.1 1 </dev/null >/dev/null 2>"$T/pwopt.err" || RC=$?
expect_rc 1 "--password"
# No terminal and no --password-fd: a clear error, no prompt on a pipe.
RC=0
setsid timeout 10 "$VCLIENT" --user alice 127.0.0.1 1 </dev/null >/dev/null 2>"$T/notty.err" || RC=$?
expect_rc 1 "no terminal for the password"
grep -q 'no terminal to read the password from' "$T/notty.err" || fail "no-terminal error: $(cat "$T/notty.err")"
pass "passwords only from a terminal or --password-fd"
