#!/usr/bin/env bash
# The benchmark programs work as bench/run.sh uses them: veil-bench's bulk
# server and client move exactly the bytes asked for in every suite, its
# handshake loop completes handshakes against veil-server, and its scale
# mode opens connections, measures memory and round trips, over Veil and over
# raw TCP.  Functional checks only: no figure is compared with a speed.
#     bash test_bench.sh VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN VEIL_BENCH BENCH_DIR
. "$(dirname "$0")/../integration/lib.sh"
VBENCH=${4:?usage: test_bench.sh VEIL_SERVER VEIL_CLIENT VEIL_KEYGEN VEIL_BENCH BENCH_DIR}
BENCH_DIR=${5:?}

kv() { sed -n "s/^$1=//p" "$2"; }

# Usage errors are exit status 1 with one line.
rc=0; "$VBENCH" get >/dev/null 2>"$T/usage.err" || rc=$?
[ "$rc" -eq 1 ] || fail "veil-bench get without a server: exit $rc"
grep -q 'HOST:PORT' "$T/usage.err" || fail "no usage message: $(cat "$T/usage.err")"
rc=0; "$VBENCH" frobnicate >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "unknown command: exit $rc"
"$VBENCH" --help | grep -q 'scale HOST:PORT' || fail "--help does not describe scale"
bash "$BENCH_DIR/run.sh" --help | grep -q -- '--quick' || fail "run.sh --help"
rc=0; bash "$BENCH_DIR/run.sh" --only nothing >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "run.sh --only nothing: exit $rc"

# Bulk: every connection carries exactly --bytes, in every suite.
make_key bulk >/dev/null
BYTES=1000003 # not a multiple of the message size: the last one is short
for suite in aes-256-gcm chacha20-poly1305 aes-256-cbc-hmac-sha256; do
    "$VBENCH" serve --key "$T/bulk.key" --port 0 --port-file "$T/port" --bytes $BYTES --suite "$suite" \
        2>"$T/serve.err" &
    spid=$!
    PIDS+=("$spid")
    wait_for "$T/serve.err" 'listening on' 10 || fail "veil-bench serve did not start"
    timeout 30 "$VBENCH" get "127.0.0.1:$(cat "$T/port")" --suite "$suite" --time 0.3 >"$T/get.out" 2>"$T/get.err" ||
        fail "get ($suite) failed: $(cat "$T/get.err")"
    conns=$(kv conns "$T/get.out")
    [ "$conns" -ge 1 ] || fail "get ($suite): no connection"
    [ "$(kv bytes "$T/get.out")" -eq $((conns * BYTES)) ] ||
        fail "get ($suite): $(kv bytes "$T/get.out") bytes in $conns connections of $BYTES"
    kill -TERM "$spid"
    wait_exit "$spid" 5 || fail "veil-bench serve did not stop on SIGTERM"
    grep -q "served $conns connections* in full (0 incomplete)" "$T/serve.err" ||
        fail "serve ($suite): $(tail -1 "$T/serve.err")"
done

# A wrong suite is refused by the server: get fails, with the reason.
"$VBENCH" serve --key "$T/bulk.key" --port 0 --port-file "$T/port" --suite aes-256-gcm 2>"$T/serve2.err" &
PIDS+=($!)
wait_for "$T/serve2.err" 'listening on' 10 || fail "veil-bench serve did not start"
rc=0; timeout 30 "$VBENCH" get "127.0.0.1:$(cat "$T/port")" --suite chacha20-poly1305 --time 0.2 \
    >/dev/null 2>"$T/get2.err" || rc=$?
[ "$rc" -eq 5 ] || fail "suite mismatch: exit $rc, expected 5"
grep -q 'handshake' "$T/get2.err" || fail "suite mismatch: $(cat "$T/get2.err")"

# Handshakes against veil-server, each closed with close_notify.
start_server hs
timeout 30 "$VBENCH" handshakes "127.0.0.1:$PORT" --time 0.3 >"$T/hs.out" 2>"$T/hs.err" ||
    fail "handshakes failed: $(cat "$T/hs.err")"
n=$(kv handshakes "$T/hs.out")
[ "$n" -ge 1 ] || fail "no handshake completed"
wait_for "$T/hs.log" 'closed by peer' 5 || fail "the server saw no close_notify"
[ "$(grep -c 'handshake done' "$T/hs.log")" -ge "$n" ] || fail "server log shows fewer handshakes than $n"
if grep -E 'WARN|ERROR' "$T/hs.log"; then fail "warnings in the server log"; fi

# Scale: 60 connections, 12 talking; the server's memory is read.
start_server sc --max-conns 100
timeout 60 "$VBENCH" scale "127.0.0.1:$PORT" --conns 60 --active 12 --interval 20 --time 0.5 \
    --server-pid "$SERVER_PID" >"$T/scale.out" 2>"$T/scale.err" || fail "scale failed: $(cat "$T/scale.err")"
[ "$(kv conns "$T/scale.out")" -eq 60 ] || fail "scale: conns"
[ "$(kv missing "$T/scale.out")" -eq 0 ] || fail "scale: replies missing"
[ "$(kv replies "$T/scale.out")" -eq "$(kv sent "$T/scale.out")" ] || fail "scale: replies != sent"
[ "$(kv replies "$T/scale.out")" -ge 12 ] || fail "scale: too few messages"
[ "$(kv server_rss_after_kib "$T/scale.out")" -gt 0 ] || fail "scale: no server memory reading"
awk -v a="$(kv rtt_p50_us "$T/scale.out")" -v b="$(kv rtt_p99_us "$T/scale.out")" 'BEGIN { exit !(a > 0 && b >= a) }' ||
    fail "scale: percentiles $(kv rtt_p50_us "$T/scale.out") / $(kv rtt_p99_us "$T/scale.out")"
[ "$(wc -l <"$T/sc.out")" -eq "$(( $(kv sent "$T/scale.out") + 60 ))" ] ||
    fail "scale: the server printed $(wc -l <"$T/sc.out") messages"

# The same over raw TCP against the echo server.
"$VBENCH" echo --port 0 --port-file "$T/eport" 2>"$T/echo.err" &
PIDS+=($!)
wait_for "$T/echo.err" 'listening on' 10 || fail "veil-bench echo did not start"
timeout 60 "$VBENCH" scale "127.0.0.1:$(cat "$T/eport")" --raw --conns 40 --active 8 --interval 20 --time 0.5 \
    >"$T/raw.out" 2>"$T/raw.err" || fail "scale --raw failed: $(cat "$T/raw.err")"
[ "$(kv missing "$T/raw.out")" -eq 0 ] && [ "$(kv replies "$T/raw.out")" -ge 8 ] || fail "scale --raw: $(cat "$T/raw.out")"

pass "veil-bench: bulk in 3 suites, $n handshakes, scale over Veil and raw TCP"
