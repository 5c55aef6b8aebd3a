#!/bin/bash
# The chat service end to end, in both modes, with and without user
# authentication: the server console (a fifo on the server's stdin) and two
# clients typing through fifos each see the others' lines with the sender's
# name and not their own; EXIT or END ends one participant (the others see
# it leave); a client reading a pipe sends every line and closes at its
# end; EXIT on the console stops the server cleanly (close_notify to the
# clients still there, which exit 0).
source "$(dirname "$0")/lib.sh"

add_user "$T/users.json" alice 'alice pw'
add_user "$T/users.json" bob 'bob pw'
add_user "$T/users.json" carol 'carol pw'

# chat_client NAME USER|-: starts a chat client typing through fifo
# $T/NAME.in (fd in CFD[NAME]); logs in as USER unless "-".
declare -A CFD CPID
chat_client() {
    local name=$1 user=$2
    hold_fifo "$name"
    CFD[$name]=$HFD
    if [ "$user" = - ]; then
        SPAWN_FD3='' spawn "$name" "$T/$name.in" "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" \
            --service chat 127.0.0.1 "$PORT"
    else
        SPAWN_FD3="$T/$user.pw" spawn "$name" "$T/$name.in" "$VCLIENT" "${CMODE[@]}" \
            --fingerprint "$FP" --service chat --user "$user" --password-fd 3 127.0.0.1 "$PORT"
    fi
    CPID[$name]=$LAST_PID
    wait_for "$T/$name.out" '^\* you are ' 10 || fail "[$ROUND] $name got no welcome"
}

# name_of NAME: the chat name the server gave NAME (from its welcome).
name_of() {
    sed -n -E 's/^\* you are (.*); in the chat: .*/\1/p' "$T/$1.out" | head -n1
}

# say NAME TEXT: NAME types a line.
say() { printf '%s\n' "$2" >&"${CFD[$1]}"; }

# sees FILE LINE: FILE gets exactly the line LINE within 5 s.
sees() {
    local i
    for i in $(seq 1 100); do
        grep -qxF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "[$ROUND] $(basename "$1") did not show: $2"
}

for mode in enc plain; do
    for auth in users anon; do
        set_mode $mode
        ROUND="$mode/$auth"
        users=()
        [ $auth = users ] && users=(--users "$T/users.json")
        hold_fifo "con-$mode-$auth"
        CON=$HFD
        srv_start "srv-$mode-$auth" "$T/con-$mode-$auth.in" "${SMODE[@]}" --services chat "${users[@]}"
        S="$T/srv-$mode-$auth.out"

        if [ $auth = users ]; then
            chat_client a alice
            chat_client b bob
        else
            chat_client a -
            chat_client b -
        fi
        A=$(name_of a)
        B=$(name_of b)
        if [ $auth = users ]; then
            [ "$A" = alice ] && [ "$B" = bob ] || fail "[$ROUND] names '$A' '$B', expected alice bob"
        else
            [[ "$A" =~ ^client#[0-9]+@127\.0\.0\.1:[0-9]+$ ]] || fail "[$ROUND] anonymous name '$A'"
        fi
        sees "$T/a.out" "* $B joined the chat"
        sees "$S" "* $B joined the chat"

        # Each line reaches everyone else, with the sender's name.
        say a "hello from a"
        sees "$T/b.out" "$A: hello from a"
        sees "$S" "$A: hello from a"
        say b "hi from b, with ünïcödé"
        sees "$T/a.out" "$B: hi from b, with ünïcödé"
        sees "$S" "$B: hi from b, with ünïcödé"
        printf 'operator here\n' >&"$CON"
        sees "$T/a.out" "server: operator here"
        sees "$T/b.out" "server: operator here"
        # A hostile line is shown inert (escapes), never as terminal control.
        say a $'\e[2J bell\a'
        sees "$T/b.out" "$A: \\x1b[2J bell\\x07"
        ! grep -q "hello from a" "$T/a.out" || fail "[$ROUND] a saw its own line"
        pass "[$ROUND] console and two clients see each other's lines with names"

        # A pipe client: every line sent, closed at the end of its input.
        printf 'line one\nline two\n' >"$T/c-lines.txt"
        if [ $auth = users ]; then
            SPAWN_FD3="$T/carol.pw" spawn c "$T/c-lines.txt" "$VCLIENT" "${CMODE[@]}" \
                --fingerprint "$FP" --service chat --user carol --password-fd 3 127.0.0.1 "$PORT"
        else
            SPAWN_FD3='' spawn c "$T/c-lines.txt" "$VCLIENT" "${CMODE[@]}" --fingerprint "$FP" \
                --service chat 127.0.0.1 "$PORT"
        fi
        cpid=$LAST_PID
        wait_exit "$cpid" 10 || fail "[$ROUND] the pipe client did not finish"
        [ "$WAIT_STATUS" -eq 0 ] || fail "[$ROUND] pipe client exit status $WAIT_STATUS: $(cat "$T/c.err")"
        C=$(name_of c)
        sees "$T/b.out" "$C: line one"
        sees "$T/b.out" "$C: line two"
        sees "$T/b.out" "* $C left the chat"
        l1=$(grep -nxF "$C: line one" "$T/b.out" | cut -d: -f1)
        l2=$(grep -nxF "$C: line two" "$T/b.out" | cut -d: -f1)
        [ "$l1" -lt "$l2" ] || fail "[$ROUND] the pipe client's lines arrived out of order"
        pass "[$ROUND] a client reading a pipe sends every line, then leaves"

        # EXIT (users) or END (anon) ends one participant.
        [ $auth = users ] && word=EXIT || word=END
        say a "$word"
        wait_exit "${CPID[a]}" 5 || fail "[$ROUND] $word did not end client a"
        [ "$WAIT_STATUS" -eq 0 ] || fail "[$ROUND] client a exit status $WAIT_STATUS after $word"
        sees "$T/b.out" "* $A left the chat"
        sees "$S" "* $A left the chat"
        ! grep -q "$word" "$T/b.out" || fail "[$ROUND] $word was sent as a chat line"
        close_fifo "${CFD[a]}"
        pass "[$ROUND] $word ends that participant's session"

        # EXIT on the console stops the server; b gets close_notify and exits 0.
        printf 'bye all\nEXIT\n' >&"$CON"
        sees "$T/b.out" "server: bye all"
        wait_exit "$SERVER_PID" 5 || fail "[$ROUND] EXIT on the console did not stop the server"
        [ "$WAIT_STATUS" -eq 0 ] || fail "[$ROUND] server exit status $WAIT_STATUS"
        wait_exit "${CPID[b]}" 5 || fail "[$ROUND] client b still running after the server stopped"
        [ "$WAIT_STATUS" -eq 0 ] || fail "[$ROUND] client b exit status $WAIT_STATUS: $(cat "$T/b.err")"
        grep -q 'the server ended the chat' "$T/b.err" || fail "[$ROUND] b was not told the chat ended"
        grep -q 'shutdown: EXIT typed on the console; closing 1 connection' "$T/srv-$mode-$auth.log" ||
            fail "[$ROUND] no shutdown log line"
        grep -q 'peer answered close_notify' "$T/srv-$mode-$auth.log" ||
            fail "[$ROUND] b did not answer close_notify"
        close_fifo "${CFD[b]}"
        close_fifo "$CON"
        mv "$T/a.out" "$T/a-$mode-$auth.txt"
        mv "$T/b.out" "$T/b-$mode-$auth.txt"
        pass "[$ROUND] EXIT on the console stops the server cleanly"
    done
done
