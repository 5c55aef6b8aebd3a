#!/bin/bash
# The terminal paths, driven through pseudo-terminals (python3's pty module;
# skipped without python3): a chat client keeps the line being typed intact
# when a line arrives (the line is printed above, the prompt and the partial
# input are redrawn); the server console does the same and stops the
# server on EXIT; the bank client reads the password from the terminal with
# echo off and runs its menu.
source "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "skipped: no python3 for the pty driver"; exit 77; }

add_user "$T/users.json" alice 'alice pw'

cat >"$T/ptydrive.py" <<'EOF'
import os, pty, select, sys, time

def spawn(argv):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    return pid, fd

def read_until(fd, want, secs=10.0, out=b''):
    """Reads the terminal until want (bytes) appears in out + what is read;
    returns all of it."""
    end = time.time() + secs
    while want not in out:
        if time.time() > end:
            sys.exit('timed out waiting for %r; got %r' % (want, out))
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out

def wait(pid, secs=10.0):
    end = time.time() + secs
    while time.time() < end:
        p, status = os.waitpid(pid, os.WNOHANG)
        if p:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    sys.exit('process %d did not exit' % pid)

scenario = sys.argv[1]
if scenario == 'chat':
    client, port, fp, console = sys.argv[2:6]
    pid, fd = spawn([client, '--fingerprint', fp, '--service', 'chat', '127.0.0.1', port])
    read_until(fd, b'* you are ')
    os.write(fd, b'half a li')                       # typing, not finished
    read_until(fd, b'> half a li')
    with open(console, 'w') as f:                    # a line arrives meanwhile
        f.write('interrupting line\n')
    out = read_until(fd, b'server: interrupting line')
    at = out.index(b'server: interrupting line')
    tail = read_until(fd, b'> half a li', out=out[at:])  # prompt and partial input redrawn
    assert tail.startswith(b'server: interrupting line\r\n'), tail  # a line of its own
    assert out[:at].endswith(b'\r\x1b[K'), out     # the prompt line was cleared first
    os.write(fd, b'ne\x7f\x7fne!\r')                 # backspace works; Enter sends
    read_until(fd, b'me: half a line!')
    os.write(fd, b'EXIT\r')
    code = wait(pid)
    assert code == 0, code
    print('chat client ok')
elif scenario == 'console':
    server, key = sys.argv[2:4]
    pid, fd = spawn([server, '--key', key, '--services', 'chat', '0'])
    out = read_until(fd, b'listening on ')
    out = read_until(fd, b'server> ', out=out[out.index(b'listening on '):])
    port = out.split(b'listening on ')[1].split(b' ')[0].rsplit(b':', 1)[1].decode()
    os.write(fd, b'partial')
    read_until(fd, b'server> partial')
    sys.stdout.write(port + '\n')
    sys.stdout.flush()
    # The test connects a client now; its join notice and log lines must
    # come out above the prompt, which is then redrawn with "partial".
    out = read_until(fd, b'joined the chat\r\n')
    out = read_until(fd, b'server> partial', out=out[out.index(b'joined the chat'):])
    os.write(fd, b'\x15EXIT\r')                      # Ctrl-U clears; EXIT stops
    read_until(fd, b'shutdown complete')
    code = wait(pid)
    assert code == 0, code
    print('console ok')
elif scenario == 'bank':
    client, port, fp, password = sys.argv[2:6]
    pid, fd = spawn([client, '--fingerprint', fp, '--service', 'bank', '--user', 'alice',
                     '127.0.0.1', port])
    read_until(fd, b'Password for alice@127.0.0.1:' + port.encode() + b': ')
    os.write(fd, password.encode() + b'\n')
    out = read_until(fd, b'Choice: ')
    assert password.encode() not in out, 'password echoed'
    os.write(fd, b'1\n')
    read_until(fd, b'Amount to deposit: ')
    os.write(fd, b'7.25\n')
    read_until(fd, b'deposited 7.25, balance 7.25')
    os.write(fd, b'2\n')
    read_until(fd, b'Amount to withdraw: ')
    os.write(fd, b'10\n')
    read_until(fd, b'insufficient funds')
    os.write(fd, b'3\n')
    read_until(fd, b'balance 7.25')
    os.write(fd, b'4\n')
    read_until(fd, b'deposit          7.25')
    os.write(fd, b'5\n')
    code = wait(pid)
    assert code == 0, code
    print('bank menu ok')
EOF

for mode in enc plain; do
    set_mode $mode
    # Chat client on a terminal.
    hold_fifo "con-$mode"
    srv_start "chat-$mode" "$T/con-$mode.in" "${SMODE[@]}" --services chat
    # The pty driver passes only the listed arguments: wrap the client for --plain.
    printf '#!/bin/bash\nexec %q %s "$@"\n' "$VCLIENT" "${CMODE[*]}" >"$T/client.sh"
    chmod +x "$T/client.sh"
    timeout 30 python3 "$T/ptydrive.py" chat "$T/client.sh" "$PORT" "$FP" "$T/con-$mode.in" \
        >"$T/pty-chat.out" 2>&1 || fail "[$mode] chat client on a terminal: $(cat "$T/pty-chat.out")"
    grep -qE '^client#[0-9]+@127\.0\.0\.1:[0-9]+: half a line!$' "$T/chat-$mode.out" ||
        fail "[$mode] the typed line did not arrive"
    stop_server "$SERVER_PID"
    close_fifo "$HFD"
    pass "[$mode] chat client on a terminal: incoming lines do not garble the typed one"

    # Bank menu and password on a terminal.
    srv_start "bank-$mode" /dev/null "${SMODE[@]}" --services bank --users "$T/users.json" \
        --bank-db "$T/bank-$mode.db"
    timeout 30 python3 "$T/ptydrive.py" bank "$T/client.sh" "$PORT" "$FP" 'alice pw' \
        >"$T/pty-bank.out" 2>&1 || fail "[$mode] bank menu: $(cat "$T/pty-bank.out")"
    stop_server "$SERVER_PID"
    pass "[$mode] bank: password from the terminal without echo, menu 1-5"
done

# The server console on a terminal.
make_key console >/dev/null
FP=$("$VKEYGEN" --show "$T/console.key")
set_mode enc
hold_fifo drv
OUT=$HFD
(
    timeout 30 python3 "$T/ptydrive.py" console "$VSERVER" "$T/console.key" >"$T/drv.in" 2>"$T/pty-console.err"
    echo "status $?" >"$T/pty-console.status"
) &
PIDS+=("$!")
read -r -t 10 -u "$OUT" PORT || fail "the console server did not start: $(cat "$T/pty-console.err")"
printf 'hello console\n' >"$T/c.txt"
RC=0
timeout 10 "$VCLIENT" --fingerprint "$FP" --service chat 127.0.0.1 "$PORT" <"$T/c.txt" \
    >"$T/cc.out" 2>"$T/cc.err" || RC=$?
expect_rc 0 "chat client to the console server"
wait_for "$T/pty-console.status" 'status' 15 || fail "the console driver did not finish"
grep -qx 'status 0' "$T/pty-console.status" ||
    fail "server console on a terminal: $(cat "$T/pty-console.status" "$T/pty-console.err")"
pass "server console on a terminal: output above the prompt, EXIT stops the server"
