#!/usr/bin/env bash
# TURN relay benchmark: `parley turn` against coturn's turnserver, one relay thread each.
#
# Each server is pinned to CPU 1 and the load generator (bench/turn_load) to CPU 0. Measures,
# for both servers, alternating between them:
#   (a) relayed packets at fixed offered loads (100 and 1200 byte payloads): server CPU per
#       relayed packet and relayed packets per server core-second,
#   (b) the same unpaced (saturation),
#   (c) RSS per 1000 idle allocations (each on a freshly started server),
#   (d) allocations per second (allocate + delete cycles; each repeat on a fresh server).
# Server CPU is utime+stime of all server threads from /proc/PID/stat, read by turn_load right
# around the measured phase (set-up and tear-down of allocations are not counted).
#
#   bash bench/turn_bench.sh
#
# Writes only its own section of docs/benchmarks.md (or $BENCH_OUT), between the markers
# <!-- turn-bench:start --> and <!-- turn-bench:end -->; the rest of the file is kept. Without
# the markers the section is appended.
#
# Environment: REPEATS (default 3), DURATION (seconds of traffic per relay run, default 4),
# BUILD_DIR (default build/tbench), BENCH_OUT (default docs/benchmarks.md), BENCH_NOTES
# (default bench/turn_benchmarks_notes.md), SERVER_CPU (1), CLIENT_CPU (0), ALLOCATIONS
# (allocations carrying traffic, 64), IDLE_COUNTS (idle allocations, "1000 5000"),
# ALLOC_CYCLES (allocate+delete cycles per allocs run, 10000), ALLOC_LANES (parallel client
# lanes, 16), QUIET_WAIT (seconds to wait for other processes to go quiet, 60), PARLEY_BIN (a
# prebuilt parley), PARLEY_REVISION, TURNSERVER (coturn).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/tbench}"
OUT="${BENCH_OUT:-$ROOT/docs/benchmarks.md}"
NOTES="${BENCH_NOTES:-$ROOT/bench/turn_benchmarks_notes.md}"
DURATION="${DURATION:-4}"
REPEATS="${REPEATS:-3}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
ALLOCATIONS="${ALLOCATIONS:-64}"
IDLE_COUNTS="${IDLE_COUNTS:-1000 5000}"
ALLOC_CYCLES="${ALLOC_CYCLES:-10000}"
ALLOC_LANES="${ALLOC_LANES:-16}"
TURNSERVER="${TURNSERVER:-$(command -v turnserver || true)}"
START_MARK="<!-- turn-bench:start -->"
END_MARK="<!-- turn-bench:end -->"

# Relay scenarios: label|turn_load arguments. --rate is what the clients send (packets/s);
# every packet is relayed twice (client -> peer, and the echo peer -> client), so the server
# relays twice that.
SCENARIOS=(
  "paced 20k relayed/s, 100 B|--rate 10000 --size 100"
  "paced 50k relayed/s, 100 B|--rate 25000 --size 100"
  "paced 20k relayed/s, 1200 B|--rate 10000 --size 1200"
  "paced 50k relayed/s, 1200 B|--rate 25000 --size 1200"
  "unpaced (window 256), 100 B|--rate 0 --window 256 --size 100"
  "unpaced (window 256), 1200 B|--rate 0 --window 256 --size 1200"
)

die() {
  echo "turn_bench: $*" >&2
  exit 1
}

for tool in taskset cmake ninja ss awk sed; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -n "$TURNSERVER" ]] || die "turnserver (coturn) not found"
(($(nproc) >= 2)) || die "needs at least 2 CPUs (server and load generator on separate cores)"
(($(ulimit -n) >= 12000)) || ulimit -n 12000 2>/dev/null ||
  die "needs 12000 open files (ulimit -n) for the idle allocations"

WORK="$(mktemp -d /tmp/turn_bench.XXXXXX)"
declare -A SERVER_PID=() # server name -> pid
declare -A SERVER_PORT=()

stopServer() {
  local pid=${SERVER_PID[$1]:-}
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  unset "SERVER_PID[$1]"
}
cleanup() {
  local name
  for name in "${!SERVER_PID[@]}"; do
    stopServer "$name"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------------------------
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" ||
  die "$BUILD_DIR is not a Release build; remove it or set BUILD_DIR"
ninja -C "$BUILD_DIR" turn_load >/dev/null
if [[ -n "${PARLEY_BIN:-}" ]]; then
  PARLEY="$PARLEY_BIN"
else
  ninja -C "$BUILD_DIR" parley >/dev/null || die "building parley failed (PARLEY_BIN=path uses a prebuilt one)"
  PARLEY="$BUILD_DIR/app/parley"
fi
[[ -x "$PARLEY" ]] || die "$PARLEY is not executable"
LOAD="$BUILD_DIR/bench/turn_load"

# ---- helpers --------------------------------------------------------------------------------
# Listening ports come from 10000-19999; relay ports are 20000-25999 (parley) and 26000-31999
# (coturn), disjoint from each other and from the kernel's ephemeral range (32768-60999 by
# default), where the load generator's client sockets live.
PARLEY_RELAY_PORTS=(20000 25999)
COTURN_RELAY_PORTS=(26000 31999)
freePort() {
  local port
  for _ in $(seq 200); do
    port=$((10000 + RANDOM % 10000))
    if [[ -z "$(ss -Hantu "( sport = :$port )" 2>/dev/null)" ]]; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# The value of "key" in turn_load's one-line JSON.
jget() { sed -E "s/.*\"$2\":\"?([^,\"}]*).*/\1/" <<<"$1"; }

waitForLog() { # file pattern pid
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

PARLEY_CMD=""
startParley() {
  local port=$1 pid
  mkdir -p "$WORK/parley-data"
  PARLEY_CMD="parley turn --listen 127.0.0.1 --stun-port P --relay-address 127.0.0.1
  --turn-user bench:benchpassword --allow-peer 127.0.0.0/8 --no-tls --threads 1 --data-dir DIR
  --set turn.max_allocations_per_user=10000 --set turn.max_allocations=100000
  --set turn.bandwidth_per_allocation_kbps=0 --set turn.unauthenticated_per_second=100000
  --set turn.relay_port_min=${PARLEY_RELAY_PORTS[0]} --set turn.relay_port_max=${PARLEY_RELAY_PORTS[1]}"
  taskset -c "$SERVER_CPU" "$PARLEY" turn --listen 127.0.0.1 --stun-port "$port" \
    --relay-address 127.0.0.1 --turn-user bench:benchpassword --allow-peer 127.0.0.0/8 --no-tls \
    --threads 1 --data-dir "$WORK/parley-data" --log-level info \
    --set turn.max_allocations_per_user=10000 --set turn.max_allocations=100000 \
    --set turn.bandwidth_per_allocation_kbps=0 --set turn.unauthenticated_per_second=100000 \
    --set turn.relay_port_min="${PARLEY_RELAY_PORTS[0]}" \
    --set turn.relay_port_max="${PARLEY_RELAY_PORTS[1]}" >"$WORK/parley.log" 2>&1 &
  pid=$!
  SERVER_PID[parley]=$pid
  SERVER_PORT[parley]=$port
  waitForLog "$WORK/parley.log" "listening on stun+udp 127.0.0.1:$port" "$pid" ||
    die "parley did not start: $(cat "$WORK/parley.log")"
}

COTURN_CMD=""
startCoturn() {
  local port=$1 pid
  # One general relay thread (-m 1) owns the UDP listener and every relay socket; the main,
  # two auth and the admin threads exist too and are counted. No TLS/DTLS/CLI, no RFC 5780
  # second port; quotas and bandwidth limits off (0 = unlimited), loopback peers allowed.
  COTURN_CMD="turnserver -n --listening-ip=127.0.0.1 --listening-port=P --relay-ip=127.0.0.1
  --relay-threads=1 --user=bench:benchpassword --realm=parley --lt-cred-mech --no-tls --no-dtls
  --no-cli --no-rfc5780 --allow-loopback-peers --min-port=${COTURN_RELAY_PORTS[0]}
  --max-port=${COTURN_RELAY_PORTS[1]} --total-quota=0 --user-quota=0 --max-bps=0
  --log-file=stdout --simple-log"
  taskset -c "$SERVER_CPU" "$TURNSERVER" -n --listening-ip=127.0.0.1 --listening-port="$port" \
    --relay-ip=127.0.0.1 --relay-threads=1 --user=bench:benchpassword --realm=parley \
    --lt-cred-mech --no-tls --no-dtls --no-cli --no-rfc5780 --allow-loopback-peers \
    --min-port="${COTURN_RELAY_PORTS[0]}" --max-port="${COTURN_RELAY_PORTS[1]}" \
    --total-quota=0 --user-quota=0 --max-bps=0 --log-file=stdout --simple-log \
    --pidfile="$WORK/turnserver.pid" --userdb="$WORK/turndb" >"$WORK/coturn.log" 2>&1 &
  pid=$!
  SERVER_PID[coturn]=$pid
  SERVER_PORT[coturn]=$port
  waitForLog "$WORK/coturn.log" "Total General servers: 1" "$pid" ||
    die "coturn did not start: $(cat "$WORK/coturn.log")"
  grep -q "Total General servers: 1" "$WORK/coturn.log" || die "coturn runs more than one relay thread"
}

startServer() { # name
  case $1 in
    parley) startParley "$(freePort)" ;;
    coturn) startCoturn "$(freePort)" ;;
  esac
  probe "$1"
}

# One allocate+delete cycle proves the server relays-ready (and warms it up) before measuring.
probe() {
  local json=""
  for _ in $(seq 20); do
    json="$(taskset -c "$CLIENT_CPU" "$LOAD" --mode allocs --server "127.0.0.1:${SERVER_PORT[$1]}" \
      --count 1 --sockets 1 --quiet 2>/dev/null || true)"
    [[ -n "$json" && "$(jget "$json" completed)" == 1 ]] && return 0
    sleep 0.2
  done
  die "$1 does not complete an Allocate: $json"
}

# turn_load against a running server; prints its JSON line. label is for the progress log.
load() { # name label args...
  local name=$1 label=$2 json
  shift 2
  json="$(taskset -c "$CLIENT_CPU" "$LOAD" --server "127.0.0.1:${SERVER_PORT[$name]}" \
    --server-pid "${SERVER_PID[$name]}" "$@" --quiet)" ||
    die "turn_load failed against $name ($label): $json
$(tail -20 "$WORK/$name.log")"
  kill -0 "${SERVER_PID[$name]}" 2>/dev/null || die "$name died during $label: $(tail -20 "$WORK/$name.log")"
  echo "$json"
}

RESULTS="$WORK/results.tsv" # kind  server  label  rep  json
: >"$RESULTS"
record() { echo -e "$1\t$2\t$3\t$4\t$5" >>"$RESULTS"; }

# Other processes on this 2-core machine distort everything: wait (at most QUIET_WAIT seconds,
# default 60) until the machine is quiet, and report how busy it was.
hostBusy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
QUIET_NOTE=""
for _ in $(seq $((${QUIET_WAIT:-60} / 2))); do
  b0=$(hostBusy)
  sleep 1
  busy=$(($(hostBusy) - b0)) # ticks in one second over all CPUs; $HZ = one core
  QUIET_NOTE="$((100 * busy / $(getconf CLK_TCK)))% of a core"
  ((100 * busy / $(getconf CLK_TCK) <= 10)) && break
  echo "turn_bench: machine busy ($QUIET_NOTE used by other processes); waiting for quiet" >&2
  sleep 1
done

SERVERS=(parley coturn)
START_TIME=$(date +%s)
threadCount() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }

# ---- (c) idle allocations: RSS, each measurement on a fresh server ---------------------------
echo "turn_bench: idle allocations (${IDLE_COUNTS// /, }), $REPEATS repeats" >&2
for rep in $(seq "$REPEATS"); do
  for count in $IDLE_COUNTS; do
    for name in "${SERVERS[@]}"; do
      startServer "$name"
      json="$(load "$name" "idle $count" --mode idle --allocations "$count" --concurrency 64 \
        --hold 2)"
      echo "  [$rep/$REPEATS] $name / idle $count: $json" >&2
      record idle "$name" "$count" "$rep" "$json"
      stopServer "$name"
    done
  done
done

# ---- (a), (b) relayed traffic ----------------------------------------------------------------
for name in "${SERVERS[@]}"; do startServer "$name"; done
PARLEY_THREADS=$(threadCount "${SERVER_PID[parley]}")
COTURN_THREADS=$(threadCount "${SERVER_PID[coturn]}")
echo "turn_bench: relay, $REPEATS x ${#SCENARIOS[@]} scenarios x $DURATION s per server," \
  "$ALLOCATIONS allocations" >&2
for rep in $(seq "$REPEATS"); do
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    for name in "${SERVERS[@]}"; do
      # shellcheck disable=SC2086 # the scenario's arguments are a word list on purpose
      json="$(load "$name" "$label" --mode relay --allocations "$ALLOCATIONS" \
        --duration "$DURATION" ${scenario#*|})"
      echo "  [$rep/$REPEATS] $name / $label: $json" >&2
      record relay "$name" "$label" "$rep" "$json"
    done
  done
done
for name in "${SERVERS[@]}"; do stopServer "$name"; done

# ---- (d) allocations per second, each repeat on a fresh server --------------------------------
# A fresh server per run: coturn keeps a deleted allocation's session (and its memory) for a
# while, which would otherwise burden the next run.
echo "turn_bench: allocations/s, $ALLOC_CYCLES cycles from $ALLOC_LANES lanes" >&2
for rep in $(seq "$REPEATS"); do
  for name in "${SERVERS[@]}"; do
    startServer "$name"
    json="$(load "$name" allocs --mode allocs --count "$ALLOC_CYCLES" --sockets "$ALLOC_LANES" \
      --duration 60)"
    echo "  [$rep/$REPEATS] $name / allocs: $json" >&2
    record allocs "$name" allocs "$rep" "$json"
    stopServer "$name"
  done
done
ELAPSED=$(($(date +%s) - START_TIME))

# ---- derived numbers ----------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
# relay: 1 server 2 label 3 rep 4 cpu_s 5 sched_s 6 relayed 7 relayed/s 8 us/pkt 9 pkt/core-s
#        10 busy% 11 sent/s 12 loss% 13 lost_to_peer 14 p50 15 p99 16 recv Mbit/s 17 rss
#        18 invalid+unmatched+peer_invalid 19 generator busy% 20 other processes' CPU (% of a core)
RELAY="$WORK/relay.tsv"
# allocs: 1 server 2 label 3 rep 4 cpu_s 5 sched_s 6 completed 7 allocs/s 8 us/alloc
#         9 allocs/core-s 10 busy% 11 p50 12 p99 13 failed 14 retransmissions 15 generator busy%
#         16 other processes' CPU (% of a core)
ALLOCS="$WORK/allocs.tsv"
# idle: 1 server 2 count 3 rep 4 ready 5 rss_before 6 rss_after 7 per1000 8 setup/s
#       9 hold cpu ms per s 10 failed
IDLE="$WORK/idle.tsv"
: >"$RELAY"
: >"$ALLOCS"
: >"$IDLE"
while IFS=$'\t' read -r kind name label rep json; do
  case $kind in
    relay)
      awk -v name="$name" -v label="$label" -v rep="$rep" -v hz="$HZ" \
        -v ticks="$(jget "$json" server_cpu_ticks)" -v ns="$(jget "$json" server_cpu_ns)" \
        -v relayed="$(jget "$json" relayed)" -v rate="$(jget "$json" relayed_rate)" \
        -v secs="$(jget "$json" total_seconds)" -v sent="$(jget "$json" sent_rate)" \
        -v loss="$(jget "$json" loss_percent)" -v ltp="$(jget "$json" lost_to_peer)" \
        -v p50="$(jget "$json" rtt_p50_us)" -v p99="$(jget "$json" rtt_p99_us)" \
        -v mbps="$(jget "$json" received_mbps)" -v rss="$(jget "$json" server_rss_kb)" \
        -v bad="$(($(jget "$json" invalid) + $(jget "$json" unmatched) + $(jget "$json" peer_invalid)))" \
        -v lt="$(jget "$json" load_cpu_ticks)" -v ht="$(jget "$json" host_cpu_ticks)" \
        'BEGIN { cpu = ticks / hz; sched = ns / 1e9;
          us = relayed > 0 ? cpu * 1e6 / relayed : 0; per = cpu > 0 ? relayed / cpu : 0;
          other = (ht - ticks - lt) / hz; if (other < 0) other = 0;
          printf "%s\t%s\t%d\t%.2f\t%.2f\t%d\t%d\t%.2f\t%.0f\t%.0f\t%d\t%.3f\t%d\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.0f\t%.0f\n",
            name, label, rep, cpu, sched, relayed, rate, us, per, 100 * cpu / secs, sent, loss,
            ltp, p50, p99, mbps, rss, bad, 100 * lt / hz / secs, 100 * other / secs }' >>"$RELAY"
      ;;
    allocs)
      awk -v name="$name" -v label="$label" -v rep="$rep" -v hz="$HZ" \
        -v ticks="$(jget "$json" server_cpu_ticks)" -v ns="$(jget "$json" server_cpu_ns)" \
        -v done="$(jget "$json" completed)" -v rate="$(jget "$json" allocs_per_s)" \
        -v secs="$(jget "$json" seconds)" -v p50="$(jget "$json" cycle_p50_us)" \
        -v p99="$(jget "$json" cycle_p99_us)" -v failed="$(jget "$json" failed)" \
        -v rtx="$(jget "$json" retransmissions)" \
        -v lt="$(jget "$json" load_cpu_ticks)" -v ht="$(jget "$json" host_cpu_ticks)" \
        'BEGIN { cpu = ticks / hz; sched = ns / 1e9;
          us = done > 0 ? cpu * 1e6 / done : 0; per = cpu > 0 ? done / cpu : 0;
          other = (ht - ticks - lt) / hz; if (other < 0) other = 0;
          printf "%s\t%s\t%d\t%.2f\t%.2f\t%d\t%d\t%.1f\t%.0f\t%.0f\t%.1f\t%.1f\t%d\t%d\t%.0f\t%.0f\n",
            name, label, rep, cpu, sched, done, rate, us, per, 100 * cpu / secs, p50, p99,
            failed, rtx, 100 * lt / hz / secs, 100 * other / secs }' >>"$ALLOCS"
      ;;
    idle)
      awk -v name="$name" -v count="$label" -v rep="$rep" -v ready="$(jget "$json" ready)" \
        -v before="$(jget "$json" rss_before_kb)" -v after="$(jget "$json" rss_after_kb)" \
        -v per="$(jget "$json" rss_per_1000_kb)" -v setup="$(jget "$json" setup_allocs_per_s)" \
        -v holdns="$(jget "$json" hold_cpu_ns)" -v hold="$(jget "$json" hold_seconds)" \
        -v failed="$(jget "$json" failed)" \
        'BEGIN { printf "%s\t%s\t%d\t%d\t%d\t%d\t%.0f\t%d\t%.2f\t%d\n", name, count, rep, ready,
            before, after, per, setup, (hold > 0 ? holdns / 1e6 / hold : 0), failed }' >>"$IDLE"
      ;;
  esac
done <"$RESULTS"

# The median run (by column `col`) of each server and label; a table row then comes from one
# run, never a mix of runs.
median() { # file server label col -> the whole line
  awk -F'\t' -v s="$2" -v l="$3" '$1 == s && $2 == l' "$1" | sort -t$'\t' -k"$4,$4"n |
    awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'
}
col() { awk -F'\t' -v c="$1" '{print $c}' <<<"$2"; }
range() { # file server label col: "min-max" over all repeats
  awk -F'\t' -v s="$2" -v l="$3" -v c="$4" '$1 == s && $2 == l {
      if (n++ == 0 || $c + 0 < lo) lo = $c; if (n == 1 || $c + 0 > hi) hi = $c }
    END { print lo "-" hi }' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# ---- report -----------------------------------------------------------------------------------
CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
COTURN_VERSION="$("$TURNSERVER" --version 2>/dev/null | head -1 || true)"
PARLEY_VERSION="$("$PARLEY" --version 2>/dev/null | head -1 || true)"
COMMIT="${PARLEY_REVISION:-}"
if [[ -z "$COMMIT" ]]; then
  COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n "$(git -C "$ROOT" status --porcelain -- src app 2>/dev/null | head -1)" ]]; then
    COMMIT="$COMMIT (working tree with uncommitted changes under src/ or app/)"
  fi
fi
CXX_VERSION="$(awk -F= '/^CMAKE_CXX_COMPILER:/ {print $2}' "$BUILD_DIR/CMakeCache.txt")"
CXX_VERSION="$("$CXX_VERSION" --version 2>/dev/null | head -1 || true)"
LAST_COUNT="${IDLE_COUNTS##* }"

SECTION="$WORK/section.md"
{
  echo "$START_MARK"
  echo
  echo "## TURN relay over UDP: parley vs coturn, one relay thread"
  echo
  echo "Generated by \`bench/turn_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${ELAPSED} s. Do not"
  echo "edit by hand: rerun the script (it replaces only this section)."
  echo
  echo "Goals (TURN issue): relayed packets per server core-second at least 2x coturn's; memory"
  echo "per allocation at most 1/10 of coturn's; allocations per second at least 5x coturn's."
  echo "Numbers are as measured, not tuned: each cell is the median of $REPEATS runs, alternating"
  echo "between the servers."
  echo
  echo "### Reproduce"
  echo
  echo '```sh'
  echo "bash bench/turn_bench.sh   # builds build/tbench (Release) if needed, ~5 minutes"
  echo '```'
  echo
  echo "### Machine"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| CPUs (nproc) | $(nproc) |"
  echo "| CPU model | $CPU_MODEL |"
  echo "| Memory | $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
  echo "| Kernel | $(uname -sr) |"
  echo "| Compiler | $CXX_VERSION, Release (-O3) |"
  echo "| parley | ${PARLEY_VERSION:-parley} at $COMMIT |"
  echo "| coturn | ${COTURN_VERSION:-unknown} (Debian package) |"
  echo
  echo "### Setup"
  echo
  echo "- Server pinned to CPU $SERVER_CPU (\`taskset -c $SERVER_CPU\`), load generator"
  echo "  \`bench/turn_load\` (one thread) pinned to CPU $CLIENT_CPU; everything on loopback."
  echo "- parley ($PARLEY_THREADS threads in the process: one worker, the main thread waits for signals):"
  echo
  echo "  \`\`\`"
  echo "  $PARLEY_CMD"
  echo "  \`\`\`"
  echo
  echo "  \`turn.unauthenticated_per_second\` is raised because all clients come from 127.0.0.0/8"
  echo "  and the default (10 401s per second per source address) would throttle set-up; coturn"
  echo "  has no such limiter. \`turn.max_allocations_per_user\` is at its maximum (10000)."
  echo "- coturn ($COTURN_THREADS threads in the process; the one general relay thread owns the UDP"
  echo "  listener and all relay sockets, \"Total General servers: 1\" is checked; the main, auth"
  echo "  and admin threads are counted too):"
  echo
  echo "  \`\`\`"
  echo "  $COTURN_CMD"
  echo "  \`\`\`"
  echo
  echo "- Relay runs: $ALLOCATIONS allocations, each from its own client socket (Allocate, 401,"
  echo "  Allocate with MD5 long-term MESSAGE-INTEGRITY, ChannelBind 0x4000 to one of 4 peer"
  echo "  sockets in the load generator). Clients send ChannelData round-robin over the"
  echo "  allocations; the peers echo every datagram to the relay address it came from, so each"
  echo "  packet is relayed twice (client → peer, peer → client). **Relayed packets** count both"
  echo "  directions: datagrams that reached a peer plus ChannelData that came back. \"Paced 20k"
  echo "  relayed/s\" means clients send 10k packets/s. Payload = the ChannelData payload (100 or"
  echo "  1200 bytes; carries a sequence number and a send timestamp). Each run sends for"
  echo "  $DURATION s, then waits up to 1 s for stragglers; later counts as lost. Every datagram"
  echo "  is checked: channel, length, sender's index, and at the peer, that it came from the"
  echo "  sending allocation's relay address."
  echo "- **Server CPU** = utime+stime of all server threads from \`/proc/PID/stat\`"
  echo "  (1/$HZ s ticks), read by turn_load just before the first and after the last data packet"
  echo "  (set-up of allocations excluded); scheduler runtime (\`/proc/PID/task/*/schedstat\`) as"
  echo "  a cross-check. **CPU us/pkt** = server CPU / relayed packets; **pkts per core-s** ="
  echo "  relayed packets / server CPU seconds; **busy** = server CPU / wall time. Over loopback"
  echo "  the sender of a datagram pays for the receiver's delivery, so the server's figure holds"
  echo "  its own sends into the peer and client sockets, not the generator's sends into its own."
  echo "- Idle allocations: a freshly started server, one warm-up allocate+delete, then RSS"
  echo "  (\`VmRSS\` of \`/proc/PID/status\`) before and 0.2 s after creating K allocations (each"
  echo "  with a channel bound, as above); **KiB per 1000** = (RSS with K - RSS before) / K x 1000."
  echo "  User-space memory only: kernel socket memory is not in RSS for either server."
  echo "- Allocations/s: $ALLOC_CYCLES cycles of Allocate (401) → Allocate (authenticated) → Refresh"
  echo "  LIFETIME 0, from $ALLOC_LANES lanes in parallel, each cycle on a new client socket with a new"
  echo "  source address in 127.0.0.0/8 (coturn answers 437 to a new Allocate from the 5-tuple of"
  echo "  an allocation it just deleted). Each repeat on a freshly started server."
  echo
  echo "### Results against the goals"
  echo
  echo "| goal | measured parley / coturn | verdict |"
  echo "|---|---|---|"
  lo=""
  hi=""
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    p="$(col 9 "$(median "$RELAY" parley "$label" 9)")"
    c="$(col 9 "$(median "$RELAY" coturn "$label" 9)")"
    r="$(ratio "$p" "$c")"
    if [[ -z "$lo" ]] || awk -v a="$r" -v b="$lo" 'BEGIN { exit !(a < b) }'; then lo=$r; fi
    if [[ -z "$hi" ]] || awk -v a="$r" -v b="$hi" 'BEGIN { exit !(a > b) }'; then hi=$r; fi
  done
  verdict="$(awk -v lo="$lo" -v hi="$hi" 'BEGIN {
      if (lo >= 2) print "meets in every scenario";
      else if (hi >= 2) print "meets in some scenarios, misses in others (by up to " sprintf("%.0f", (1 - lo / 2) * 100) "%)";
      else print "misses in every scenario (best " hi "x, " sprintf("%.0f", (1 - hi / 2) * 100) "% short)" }')"
  echo "| relayed packets per server core-second ≥ 2x | ${lo}x – ${hi}x over the ${#SCENARIOS[@]} scenarios below | $verdict |"
  pm="$(col 7 "$(median "$IDLE" parley "$LAST_COUNT" 7)")"
  cm="$(col 7 "$(median "$IDLE" coturn "$LAST_COUNT" 7)")"
  r="$(ratio "$pm" "$cm")"
  verdict="$(awk -v r="$r" 'BEGIN { if (r <= 0.1) print "meets"; else printf "misses (%.1fx too much)", r / 0.1 }')"
  echo "| memory per allocation ≤ 1/10 | $r ($pm vs $cm KiB per 1000 idle allocations, K = $LAST_COUNT) | $verdict |"
  pa="$(col 7 "$(median "$ALLOCS" parley allocs 7)")"
  ca="$(col 7 "$(median "$ALLOCS" coturn allocs 7)")"
  r="$(ratio "$pa" "$ca")"
  pc="$(col 9 "$(median "$ALLOCS" parley allocs 9)")"
  cc="$(col 9 "$(median "$ALLOCS" coturn allocs 9)")"
  rc="$(ratio "$pc" "$cc")"
  verdict="$(awk -v r="$r" 'BEGIN { if (r >= 5) print "meets"; else printf "misses (%.0f%% short)", (1 - r / 5) * 100 }')"
  echo "| allocations per second ≥ 5x | ${r}x ($pa vs $ca/s); per server core-second ${rc}x | $verdict |"
  echo
  echo "### Relayed packets (a, b)"
  echo
  echo "| scenario | pkts per core-s parley | coturn | **ratio** | CPU us/pkt parley | coturn | ratio | relayed pkts/s parley | coturn | busy parley | coturn |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    P="$(median "$RELAY" parley "$label" 9)"
    C="$(median "$RELAY" coturn "$label" 9)"
    printf "| %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s%% | %s%% |\n" "$label" \
      "$(col 9 "$P")" "$(col 9 "$C")" "$(ratio "$(col 9 "$P")" "$(col 9 "$C")")" \
      "$(col 8 "$P")" "$(col 8 "$C")" "$(ratio "$(col 8 "$P")" "$(col 8 "$C")")" \
      "$(col 7 "$P")" "$(col 7 "$C")" "$(col 10 "$P")" "$(col 10 "$C")"
  done
  echo
  echo "The same runs in detail (median run by packets per core-second):"
  echo
  echo "| scenario | server | pkts per core-s, all $REPEATS runs | CPU s stat / schedstat | client pkts/s offered | payload Mbit/s back | lost (of it before the peer) | RTT p50 / p99 us | bad datagrams | RSS KiB | generator busy | other processes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    for name in "${SERVERS[@]}"; do
      M="$(median "$RELAY" "$name" "$label" 9)"
      printf "| %s | %s | %s | %s / %s | %s | %s | %s%% (%s) | %s / %s | %s | %s | %s%% | %s%% |\n" \
        "$label" "$name" "$(range "$RELAY" "$name" "$label" 9)" "$(col 4 "$M")" "$(col 5 "$M")" \
        "$(col 11 "$M")" "$(col 16 "$M")" "$(col 12 "$M")" "$(col 13 "$M")" "$(col 14 "$M")" \
        "$(col 15 "$M")" "$(col 18 "$M")" "$(col 17 "$M")" "$(col 19 "$M")" "$(col 20 "$M")"
    done
  done
  echo
  echo "*generator busy*: turn_load's own CPU / wall time (it is one thread: 100% = its core is"
  echo "saturated). *other processes*: CPU time of everything else on the machine during the run,"
  echo "in % of one core (from \`/proc/stat\`); more than a few % means the run was disturbed."
  echo
  echo "### Memory per idle allocation (c)"
  echo
  echo "| K idle allocations | server | RSS before / with K (KiB) | **KiB per 1000** | all $REPEATS runs | parley / coturn | set-up allocations/s | CPU while idle (ms/s) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for count in $IDLE_COUNTS; do
    P="$(median "$IDLE" parley "$count" 7)"
    C="$(median "$IDLE" coturn "$count" 7)"
    r="$(ratio "$(col 7 "$P")" "$(col 7 "$C")")"
    for name in "${SERVERS[@]}"; do
      M="$(median "$IDLE" "$name" "$count" 7)"
      printf "| %s | %s | %s / %s | **%s** | %s | %s | %s | %s |\n" "$count" "$name" \
        "$(col 5 "$M")" "$(col 6 "$M")" "$(col 7 "$M")" "$(range "$IDLE" "$name" "$count" 7)" \
        "$([[ $name == parley ]] && echo "**$r**" || echo)" "$(col 8 "$M")" "$(col 9 "$M")"
    done
  done
  echo
  echo "### Allocations per second (d)"
  echo
  echo "| | parley | coturn | parley / coturn |"
  echo "|---|---:|---:|---:|"
  P="$(median "$ALLOCS" parley allocs 7)"
  C="$(median "$ALLOCS" coturn allocs 7)"
  printf "| **allocations/s** (allocate + delete cycles) | **%s** | **%s** | **%s** |\n" \
    "$(col 7 "$P")" "$(col 7 "$C")" "$(ratio "$(col 7 "$P")" "$(col 7 "$C")")"
  printf "| allocations/s, all %s runs | %s | %s | |\n" "$REPEATS" \
    "$(range "$ALLOCS" parley allocs 7)" "$(range "$ALLOCS" coturn allocs 7)"
  printf "| server CPU us per cycle | %s | %s | %s |\n" "$(col 8 "$P")" "$(col 8 "$C")" \
    "$(ratio "$(col 8 "$P")" "$(col 8 "$C")")"
  printf "| cycles per server core-second | %s | %s | %s |\n" "$(col 9 "$P")" "$(col 9 "$C")" \
    "$(ratio "$(col 9 "$P")" "$(col 9 "$C")")"
  printf "| server busy | %s%% | %s%% | |\n" "$(col 10 "$P")" "$(col 10 "$C")"
  printf "| cycle time p50 / p99 (us) | %s / %s | %s / %s | |\n" "$(col 11 "$P")" \
    "$(col 12 "$P")" "$(col 11 "$C")" "$(col 12 "$C")"
  printf "| failed cycles / retransmissions | %s / %s | %s / %s | |\n" "$(col 13 "$P")" \
    "$(col 14 "$P")" "$(col 13 "$C")" "$(col 14 "$C")"
  printf "| generator busy / other processes | %s%% / %s%% | %s%% / %s%% | |\n" "$(col 15 "$P")" \
    "$(col 16 "$P")" "$(col 15 "$C")" "$(col 16 "$C")"
  echo
  echo "### Summary (computed from the tables above)"
  echo
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    P="$(median "$RELAY" parley "$label" 9)"
    C="$(median "$RELAY" coturn "$label" 9)"
    r="$(ratio "$(col 9 "$P")" "$(col 9 "$C")")"
    line="- ${label}: parley relays ${r}x coturn's packets per server core-second"
    line="$line ($(awk -v r="$r" 'BEGIN { print (r >= 2) ? "meets" : "misses" }') the 2x goal)"
    for name in parley coturn; do
      M="$(median "$RELAY" "$name" "$label" 9)"
      if [[ "$label" == unpaced* ]]; then
        if (($(col 10 "$M") < 90)); then
          line="$line; ${name}'s core only $(col 10 "$M")% busy (generator $(col 19 "$M")%):"
          line="$line the load generator, not ${name}, capped the rate"
        else
          line="$line; ${name} saturated ($(col 10 "$M")% busy) at $(col 7 "$M") relayed/s"
        fi
      fi
      if awk -v l="$(col 12 "$M")" 'BEGIN { exit !(l > 0.1) }'; then
        line="$line; ${name} lost $(col 12 "$M")%"
      fi
    done
    echo "$line."
  done
  disturbed="$(awk -F'\t' '$20 > 10' "$RELAY" | wc -l)"
  disturbed=$((disturbed + $(awk -F'\t' '$16 > 10' "$ALLOCS" | wc -l)))
  if ((disturbed > 0)); then
    echo "- **$disturbed runs were disturbed**: other processes used more than 10% of a core"
    echo "  while they ran (see \"other processes\"); their numbers are less trustworthy."
  else
    echo "- No run was disturbed by other processes (each below 10% of a core)."
  fi
  echo
  echo "Wall time of the whole benchmark: ${ELAPSED} s. Machine load before it started: ${QUIET_NOTE}."
  echo
  echo "<details><summary>Raw load generator output (JSON, one line per run)</summary>"
  echo
  echo '```'
  awk -F'\t' '{print "[" $4 "] " $2 " / " $1 " " $3 ": " $5}' "$RESULTS"
  echo '```'
  echo
  echo "</details>"
  if [[ -f "$NOTES" ]]; then
    echo
    cat "$NOTES"
  fi
  echo
  echo "$END_MARK"
} >"$SECTION"

# Replace our section of the report, or append it; leave everything else as it is.
mkdir -p "$(dirname "$OUT")"
touch "$OUT"
if grep -qF "$START_MARK" "$OUT" && grep -qF "$END_MARK" "$OUT"; then
  awk -v start="$START_MARK" -v end="$END_MARK" -v section="$SECTION" '
    $0 == start { while ((getline line < section) > 0) print line; skip = 1; next }
    $0 == end { skip = 0; next }
    !skip { print }' "$OUT" >"$WORK/out.md"
else
  { cat "$OUT"; [[ -s "$OUT" ]] && echo; cat "$SECTION"; } >"$WORK/out.md"
fi
cat "$WORK/out.md" >"$OUT"

echo "turn_bench: wrote the TURN section of $OUT (${ELAPSED} s)" >&2
awk -F'\t' '{printf "  %-7s %-30s %8s pkts/core-s  %6s us/pkt  busy %s%%  relayed %s/s  lost %s%%\n",
  $1, $2, $9, $8, $10, $7, $12}' "$RELAY" | sort -s -k2 >&2
