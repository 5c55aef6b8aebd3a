#!/usr/bin/env bash
# bench/run.sh - Veil's benchmarks, each against its anchor measured in the
# same invocation (OpenSSL TLS 1.3, `openssl speed`, raw TCP, tshark), so that
# every claim is a ratio taken on one machine at one time.  See bench/README.md.
#
# Usage: bash bench/run.sh [--quick] [--only SECTIONS] [--results FILE] [--build DIR]
#   --quick           shorter runs and 2,000 instead of 10,000 connections (a smoke
#                     run: its figures are noisier and its scale row is not the target's)
#   --only SECTIONS   comma-separated subset of: speed,bulk,handshake,scale,decode
#   --results FILE    also write the table, with a description of the machine, as
#                     Markdown to FILE (bench/RESULTS.md is made this way)
#   --build DIR       the Release build directory (default build-bench)
# Needs: the packages scripts/setup.sh installs (cmake, OpenSSL, tshark, ...).
# Exit status: 0 every benchmark ran (targets met or not: see the table),
# 1 bad arguments, 2 a benchmark could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. bench/lib.sh

QUICK=0
ONLY="speed,bulk,handshake,scale,decode"
RESULTS=""
BUILD=build-bench
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY=${2:?--only needs a list}; shift ;;
    --results) RESULTS=${2:?--results needs a file}; shift ;;
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
  shift
done
case ",$ONLY," in *,speed,*|*,bulk,*|*,handshake,*|*,scale,*|*,decode,*) ;; *)
  echo "bench/run.sh: --only takes speed, bulk, handshake, scale, decode" >&2; exit 1 ;; esac
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

if [ "$QUICK" = 1 ]; then
  T=1; REPS=1; CONNS=2000; ACTIVE=200; RUN_S=3; SPEED_S=1
else
  T=2; REPS=3; CONNS=10000; ACTIVE=1000; RUN_S=5; SPEED_S=3
fi
HS_CLIENTS=4 # concurrent clients for the server-CPU measurement

bash scripts/setup.sh >&2 # installs what is missing (nothing, after the README's set-up)
for tool in cmake openssl ss awk; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing: run 'bash scripts/setup.sh' first" >&2; exit 2; }
done

step() { printf '\n==== %s ====\n' "$*" >&2; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
step "Release build in $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVEIL_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
BENCH=$ROOT/$BUILD/bench/veil-bench
SERVER=$ROOT/$BUILD/apps/veil-server
KEYGEN=$ROOT/$BUILD/apps/veil-keygen
for f in "$BENCH" "$SERVER" "$KEYGEN"; do [ -x "$f" ] || { echo "bench/run.sh: $f was not built" >&2; exit 2; }; done

# Work files (the bulk file among them) live in memory, like the anchor's.
BASE=/dev/shm
[ -d "$BASE" ] && [ -w "$BASE" ] || BASE=${TMPDIR:-/tmp}
WORK=$(mktemp -d "$BASE/veil-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ROWS=$WORK/rows NOTES=$WORK/notes
: >"$ROWS"; : >"$NOTES"
note() { bench_note "$@"; printf -- '- %s\n' "$(echo "$*" | sed 's/^ *//')" >>"$NOTES"; }
row() { bench_row "$@" | tee -a "$ROWS" >/dev/null; printf '  %s: %s %s (anchor %s: %s) ratio %s\n' "$1" "$2" "$3" "$4" "$5" "$6" >&2; }

# free_port: a TCP port no socket uses, in any state, below the ephemeral
# range (the load generators' own connections take ports from that range, and
# a listener cannot bind a port a connection holds).
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$EPHEMERAL_LOW" -gt 12000 ] || EPHEMERAL_LOW=32768
free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
    if [ -z "$(ss -Htan "( sport = :$p or dport = :$p )")" ]; then echo "$p"; return 0; fi
  done
  echo "bench/run.sh: no free port found" >&2; return 1
}
# wait_listen PORT: until something listens there (5 s at most).
wait_listen() {
  local i
  for i in $(seq 1 100); do
    [ -n "$(ss -Htln "sport = :$1")" ] && return 0
    sleep 0.05
  done
  echo "bench/run.sh: nothing listens on port $1 after 5 s; the servers said:" >&2
  tail -n 3 "$WORK"/*.err >&2 2>/dev/null || true
  return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# cpu_ns PID: CPU time of a (single-threaded) process so far, in ns.
cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }
# cpu_user_ticks PID: user-space CPU time only, in clock ticks (CLK_TCK).
cpu_user_ticks() { awk '{ print $14 }' "/proc/$1/stat"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
kv() { sed -n "s/^$1=//p" "$2"; } # kv KEY FILE: a key=value result of veil-bench
mbs() { awk -v b="$1" 'BEGIN { printf "%.0f\n", b / 1e6 }'; }

# Keys: an Ed25519 Veil identity, and an Ed25519 certificate for OpenSSL.
"$KEYGEN" -q -o "$WORK/id.key" >/dev/null
openssl genpkey -algorithm ed25519 -out "$WORK/tls.key" 2>/dev/null
openssl req -new -x509 -key "$WORK/tls.key" -out "$WORK/tls.crt" -subj /CN=veil-bench -days 2 2>/dev/null

# ---------------------------------------------------------------------------
# speed: what the primitives do alone (the ceilings)
SPEED_DONE=0
speed() {
  step "openssl speed: the primitives alone"
  local o x
  # As PERF.md measures them: 3-second runs (--quick: 1 second).
  o=$(openssl speed -mr -seconds "$SPEED_S" -bytes 16384 -evp aes-256-cbc 2>/dev/null | grep '^+F:')
  CBC_ENC=$(echo "$o" | awk -F: '{ print $4 }')
  o=$(openssl speed -mr -seconds "$SPEED_S" -bytes 16384 -hmac sha256 2>/dev/null | grep '^+F:')
  HMAC=$(echo "$o" | awk -F: '{ print $4 }')
  o=$(openssl speed -mr -seconds "$SPEED_S" ecdhx25519 ed25519 2>/dev/null)
  X25519=$(echo "$o" | awk -F: '/^\+F5:/ { printf "%.0f", $4 }')
  ED_SIGN=$(echo "$o" | awk -F: '/^\+F6:/ { printf "%.0f", $5 }')
  ED_VERIFY=$(echo "$o" | awk -F: '/^\+F6:/ { printf "%.0f", $6 }')
  for x in "$CBC_ENC" "$HMAC" "$X25519" "$ED_SIGN"; do
    [ -n "$x" ] || { echo "bench/run.sh: could not read openssl speed's output" >&2; exit 2; }
  done
  # Encrypt-then-MAC on the sending side: both passes over every byte.
  CBC_CEILING=$(awk -v a="$CBC_ENC" -v b="$HMAC" 'BEGIN { printf "%.0f\n", 1 / (1 / a + 1 / b) }')
  # The server's public-key work per handshake: X25519 key generation (one
  # scalar multiplication, priced as a derive), X25519 derive, Ed25519 sign.
  PK_US=$(awk -v x="$X25519" -v s="$ED_SIGN" 'BEGIN { printf "%.1f\n", 1e6 * (2 / x + 1 / s) }')
  note "  AES-256-CBC $(mbs "$CBC_ENC") MB/s, HMAC-SHA256 $(mbs "$HMAC") MB/s -> CBC+HMAC ceiling $(mbs "$CBC_CEILING") MB/s"
  note "  X25519 $X25519/s, Ed25519 sign $ED_SIGN/s verify $ED_VERIFY/s -> server public-key work $PK_US us per handshake"
  SPEED_DONE=1
}

# ---------------------------------------------------------------------------
# bulk: one stream, the server sends, the client decrypts and discards
bulk() {
  [ "$SPEED_DONE" = 1 ] || speed
  step "bulk throughput over loopback (${REPS}x ${T}s per side and suite)"
  local file=$WORK/bulk.bin size=$((1 << 30))
  head -c "$size" /dev/zero >"$file"
  local suite tls veil_rates tls_rates i port spid t0 t1 out
  for suite in aes-256-gcm chacha20-poly1305 aes-256-cbc-hmac-sha256; do
    case $suite in
      aes-256-gcm) tls=TLS_AES_256_GCM_SHA384 ;;
      chacha20-poly1305) tls=TLS_CHACHA20_POLY1305_SHA256 ;;
      *) tls="" ;;
    esac
    veil_rates=""; tls_rates=""
    for i in $(seq 1 "$REPS"); do
      # Veil: veil-bench serve / get.
      port=$(free_port)
      "$BENCH" serve --key "$WORK/id.key" --port "$port" --bytes "$size" --suite "$suite" 2>"$WORK/serve.err" &
      spid=$!; PIDS+=("$spid")
      wait_listen "$port"
      t0=$(bench_now)
      timeout 120 "$BENCH" get "127.0.0.1:$port" --suite "$suite" --time "$T" >"$WORK/get.out" ||
        { cat "$WORK/serve.err" >&2; echo "bench/run.sh: veil-bench get failed" >&2; exit 2; }
      t1=$(bench_now)
      stop "$spid"
      veil_rates+="$(awk -v b="$(kv bytes "$WORK/get.out")" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.0f", b / (z - a) }')"$'\n'
      # OpenSSL: s_server -WWW serving the same file, s_time -www -new.
      [ -n "$tls" ] || continue
      port=$(free_port)
      (cd "$WORK" && exec openssl s_server -quiet -accept "127.0.0.1:$port" -cert tls.crt -key tls.key \
         -WWW -tls1_3 -ciphersuites "$tls" -groups X25519 </dev/null >/dev/null 2>"$WORK/tls.err") &
      spid=$!; PIDS+=("$spid")
      wait_listen "$port"
      t0=$(bench_now)
      out=$(timeout 120 openssl s_time -connect "127.0.0.1:$port" -www /bulk.bin -new -time "$T" 2>&1 | grep 'real seconds')
      t1=$(bench_now)
      stop "$spid"
      # "N connections in S real seconds, B bytes read per connection"
      tls_rates+="$(echo "$out" | awk -v a="$t0" -v z="$t1" '{ printf "%.0f", $1 * $(NF - 4) / (z - a) }')"$'\n'
      [ "$(echo "$out" | awk '{ print $(NF - 4) }')" -ge "$size" ] ||
        { echo "bench/run.sh: s_time did not read the whole file: $out" >&2; exit 2; }
    done
    local v a
    v=$(printf '%s' "$veil_rates" | median)
    if [ -n "$tls" ]; then
      a=$(printf '%s' "$tls_rates" | median)
      local r; r=$(bench_div "$v" "$a")
      row "bulk $suite" "$(mbs "$v")" "MB/s" "OpenSSL TLS 1.3 s_server/s_time" "$(mbs "$a")" "$r" "≥ 1.5×" \
        "$(bench_met ge "$v" "$a" 1.5)"
    else
      local r; r=$(bench_div "$v" "$CBC_CEILING")
      row "bulk $suite" "$(mbs "$v")" "MB/s" "CBC+HMAC ceiling (openssl speed)" "$(mbs "$CBC_CEILING")" "$r" "≥ 0.85×" \
        "$(bench_met ge "$v" "$CBC_CEILING" 0.85)"
    fi
  done
  rm -f "$file"
}

# ---------------------------------------------------------------------------
# handshake: sequential rate, then server CPU per handshake under load
start_veil_server() { # start_veil_server PORT [ARGS...]: sets SPID
  local port=$1; shift
  "$SERVER" -q -k "$WORK/id.key" --idle-timeout 0 "$@" "$port" >/dev/null 2>"$WORK/server.err" &
  SPID=$!; PIDS+=("$SPID")
  wait_listen "$port"
}
start_tls_server() { # start_tls_server PORT: sets SPID
  (cd "$WORK" && exec openssl s_server -quiet -accept "127.0.0.1:$1" -cert tls.crt -key tls.key -www -tls1_3 \
     -groups X25519 -num_tickets 0 </dev/null >/dev/null 2>"$WORK/tls.err") &
  SPID=$!; PIDS+=("$SPID")
  wait_listen "$1"
}
# tls_handshakes PORT SECONDS: s_time -new; prints "count wall_seconds".
tls_handshakes() {
  local t0 t1 out
  t0=$(bench_now)
  out=$(timeout 120 openssl s_time -connect "127.0.0.1:$1" -new -time "$2" 2>&1 | grep 'real seconds')
  t1=$(bench_now)
  echo "$out" | awk -v a="$t0" -v z="$t1" '{ print $1, z - a }'
}

# cpu_run veil|tls: HS_CLIENTS clients make handshakes against a fresh server
# for T seconds; sets CPU_US (user + system) and USER_US, the server's CPU time
# per handshake completed, in microseconds.
cpu_run() {
  local c0 c1 u0 u1 n=0 p f pids=() i
  rm -f "$WORK"/hs.[0-9]* "$WORK"/tls.[0-9]*
  port=$(free_port)
  if [ "$1" = veil ]; then start_veil_server "$port"; else start_tls_server "$port"; fi
  c0=$(cpu_ns "$SPID"); u0=$(cpu_user_ticks "$SPID")
  for i in $(seq 1 "$HS_CLIENTS"); do
    if [ "$1" = veil ]; then
      timeout 120 "$BENCH" handshakes "127.0.0.1:$port" --time "$T" >"$WORK/hs.$i" & pids+=($!)
    else
      (tls_handshakes "$port" "$T" >"$WORK/tls.$i") & pids+=($!)
    fi
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "bench/run.sh: a handshake client failed ($1)" >&2; exit 2; }; done
  c1=$(cpu_ns "$SPID"); u1=$(cpu_user_ticks "$SPID"); stop "$SPID"
  if [ "$1" = veil ]; then
    for f in "$WORK"/hs.[0-9]*; do n=$((n + $(kv handshakes "$f"))); done
  else
    for f in "$WORK"/tls.[0-9]*; do n=$((n + $(awk '{ print $1 }' "$f"))); done
  fi
  [ "$n" -gt 0 ] || { echo "bench/run.sh: no handshake completed ($1)" >&2; exit 2; }
  CPU_US=$(awk -v c="$((c1 - c0))" -v n="$n" 'BEGIN { printf "%.1f", c / n / 1000 }')
  USER_US=$(awk -v t="$((u1 - u0))" -v hz="$(bench_hz)" -v n="$n" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
}

handshake() {
  [ "$SPEED_DONE" = 1 ] || speed
  step "handshakes: sequential rate (${REPS}x ${T}s per side)"
  local i port v_rates="" t_rates="" out t0 t1
  for i in $(seq 1 "$REPS"); do
    port=$(free_port); start_veil_server "$port"
    t0=$(bench_now)
    timeout 120 "$BENCH" handshakes "127.0.0.1:$port" --time "$T" >"$WORK/hs.out" ||
      { cat "$WORK/server.err" >&2; echo "bench/run.sh: veil-bench handshakes failed" >&2; exit 2; }
    t1=$(bench_now)
    stop "$SPID"
    # The wall time of the whole command, as for s_time below.
    v_rates+="$(awk -v n="$(kv handshakes "$WORK/hs.out")" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", n / (z - a) }')"$'\n'
    port=$(free_port); start_tls_server "$port"
    out=$(tls_handshakes "$port" "$T")
    stop "$SPID"
    t_rates+="$(echo "$out" | awk '{ printf "%.1f", $1 / $2 }')"$'\n'
  done
  local v a r
  v=$(printf '%s' "$v_rates" | median); a=$(printf '%s' "$t_rates" | median); r=$(bench_div "$v" "$a")
  row "handshakes, sequential" "$v" "per s" "OpenSSL TLS 1.3 s_time -new (X25519, Ed25519)" "$a" "$r" "≥ 2×" \
    "$(bench_met ge "$v" "$a" 2)"

  step "handshakes: server CPU per handshake, $HS_CLIENTS clients at once for ${T}s (${REPS}x per side)"
  local v_cpu="" v_user="" t_cpu="" t_user=""
  for i in $(seq 1 "$REPS"); do
    cpu_run veil; v_cpu+="$CPU_US"$'\n'; v_user+="$USER_US"$'\n'
    cpu_run tls; t_cpu+="$CPU_US"$'\n'; t_user+="$USER_US"$'\n'
  done
  local veil_us user_us tls_us tls_user_us
  veil_us=$(printf '%s' "$v_cpu" | median); user_us=$(printf '%s' "$v_user" | median)
  tls_us=$(printf '%s' "$t_cpu" | median); tls_user_us=$(printf '%s' "$t_user" | median)
  note "  server CPU per handshake, user + system (user space alone), each run: veil-server $(printf '%s' "$v_cpu" | tr '\n' ' ')($(printf '%s' "$v_user" | tr '\n' ' ' | sed 's/ $//')) us; openssl s_server $(printf '%s' "$t_cpu" | tr '\n' ' ')($(printf '%s' "$t_user" | tr '\n' ' ' | sed 's/ $//')) us"
  r=$(bench_div "$veil_us" "$tls_us" 3) # three decimals: the target is a third
  row "server CPU per handshake" "$veil_us" "µs" "OpenSSL TLS 1.3 s_server" "$tls_us" "$r" "≤ 1/3×" \
    "$(bench_met le "$veil_us" "$tls_us" 0.333333)"
  r=$(bench_div "$user_us" "$tls_user_us")
  row "server CPU per handshake, user space only" "$user_us" "µs" "OpenSSL TLS 1.3 s_server, user space" "$tls_user_us" "$r" \
    "reported" "-"
  r=$(bench_div "$veil_us" "$PK_US")
  row "server CPU per handshake" "$veil_us" "µs" "its public-key ops (openssl speed)" "$PK_US" "$r" "≤ 1.5×" \
    "$(bench_met le "$veil_us" "$PK_US" 1.5)"
  r=$(bench_div "$user_us" "$PK_US")
  row "server CPU per handshake, user space only" "$user_us" "µs" "its public-key ops (openssl speed)" "$PK_US" "$r" \
    "reported" "-"
}

# ---------------------------------------------------------------------------
# scale: CONNS connections to one veil-server, ACTIVE of them talking
scale() {
  step "scale: $CONNS encrypted connections, $ACTIVE active (a 64-byte message every 100 ms each)"
  local port out=$WORK/scale.out raw=$WORK/raw.out
  port=$(free_port)
  start_veil_server "$port" --max-conns $((CONNS + 100))
  timeout 600 "$BENCH" scale "127.0.0.1:$port" --conns "$CONNS" --active "$ACTIVE" --time "$RUN_S" \
    --server-pid "$SPID" >"$out" || { tail -5 "$WORK/server.err" >&2; echo "bench/run.sh: veil-bench scale failed" >&2; exit 2; }
  stop "$SPID"
  step "scale anchor: the same load over raw TCP to an echo server"
  port=$(free_port)
  "$BENCH" echo --port "$port" 2>/dev/null & SPID=$!; PIDS+=("$SPID")
  wait_listen "$port"
  timeout 600 "$BENCH" scale "127.0.0.1:$port" --raw --conns "$CONNS" --active "$ACTIVE" --time "$RUN_S" >"$raw" ||
    { echo "bench/run.sh: veil-bench scale --raw failed" >&2; exit 2; }
  stop "$SPID"
  local b r
  b=$(kv bytes_per_conn "$out"); r=$(bench_div "$b" 16384)
  row "memory per connection ($CONNS established)" "$b" "bytes" "target: 16 KiB" 16384 "$r" "≤ 1×" \
    "$( [ "$CONNS" -ge 10000 ] && bench_met le "$b" 16384 1 || echo "- (quick run)")"
  local q
  for q in p50 p99; do
    r=$(bench_div "$(kv rtt_${q}_us "$out")" "$(kv rtt_${q}_us "$raw")")
    row "round trip $q, $ACTIVE active clients" "$(kv rtt_${q}_us "$out")" "µs" "raw TCP echo, same load" \
      "$(kv rtt_${q}_us "$raw")" "$r" "reported" "-"
  done
}

# ---------------------------------------------------------------------------
# decode: veil-capture against tshark with the plugin (bench/decode.sh)
decode() {
  step "decoding: veil-capture against tshark with the Veil plugin"
  [ -f bench/decode.sh ] || { echo "bench/run.sh: bench/decode.sh is missing" >&2; exit 2; }
  local out
  local env=(RUNS="$REPS")
  [ "$QUICK" = 1 ] && env+=(SESSIONS=50)
  out=$(env "${env[@]}" bash bench/decode.sh "$ROOT/$BUILD") || { echo "bench/run.sh: bench/decode.sh failed" >&2; exit 2; }
  echo "$out" | grep '^ROW|' >>"$ROWS" || { echo "bench/run.sh: bench/decode.sh printed no result" >&2; exit 2; }
}

want speed && speed
want bulk && bulk
want handshake && handshake
want scale && scale
want decode && decode

# ---------------------------------------------------------------------------
# The table
table() { # table FORMAT: text or md
  awk -F'|' -v fmt="$1" '
    BEGIN {
      if (fmt == "md") {
        print "| benchmark | Veil | anchor | anchor figure | ratio (Veil/anchor) | target | met |"
        print "|---|---|---|---|---|---|---|"
      } else {
        printf "%-44s %14s  %-46s %14s %7s  %-9s %s\n", "benchmark", "Veil", "anchor", "anchor", "ratio", "target", "met"
      }
    }
    $1 == "ROW" {
      v = $3 " " $4; a = $6 " " $4
      if (fmt == "md") printf "| %s | %s | %s | %s | %s | %s | %s |\n", $2, v, $5, a, $7, $8, $9
      else printf "%-44s %14s  %-46s %14s %7s  %-9s %s\n", $2, v, $5, a, $7, $8, $9
    }' "$ROWS"
}
step "results (ratio = Veil / anchor, measured in this run)"
table text

if [ -n "$RESULTS" ]; then
  {
    echo "# Benchmark results"
    echo
    echo "Made by \`bash bench/run.sh$([ "$QUICK" = 1 ] && echo " --quick") --results ${RESULTS}\` on $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')."
    echo "Every ratio compares two figures measured in this same run (bench/README.md)."
    echo
    echo "## Machine"
    echo
    echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores online"
    echo "- CPU flags used by OpenSSL: $(grep -o -w -E 'aes|sha_ni|avx2|avx512f|vaes|vpclmulqdq' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "- Memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- Kernel: $(uname -sr); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "- $(openssl version); $(cmake --version | head -1); $(cc --version | head -1)"
    echo "- $(tshark --version 2>/dev/null | head -1 || echo 'tshark: not installed')"
    echo "- Load average when the run started: $LOAD0 (1, 5, 15 min)"
    echo
    echo "## Results"
    echo
    table md
    if [ -s "$NOTES" ]; then
      echo
      echo "## Details of this run"
      echo
      cat "$NOTES"
    fi
  } >"$RESULTS.tmp"
  mv "$RESULTS.tmp" "$RESULTS"
  echo "bench/run.sh: wrote $RESULTS" >&2
fi
