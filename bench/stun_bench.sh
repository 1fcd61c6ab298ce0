#!/usr/bin/env bash
# STUN Binding benchmark: `parley turn` against coturn's turnserver, one server thread each.
#
# Each server is pinned to CPU 1 and the load generator (bench/stun_load) to CPU 0. For every
# scenario the server's CPU time is read from /proc/PID/stat (utime+stime, all threads) before
# and after the run, giving server CPU microseconds per answered request and answered requests
# per server-core-second. Writes docs/benchmarks.md (or $BENCH_OUT).
#
#   bash bench/stun_bench.sh
#
# Both servers run side by side (the idle one costs nothing) and runs alternate between them,
# REPEATS times per scenario, so drift in the machine's speed hits both alike; tables show the
# median run.
#
# Environment: REPEATS (default 3), BUILD_DIR (default build/bench), BENCH_OUT (default docs/benchmarks.md),
# DURATION (seconds per run, default 10), SERVER_CPU (default 1), CLIENT_CPU (default 0),
# PARLEY_BIN (a prebuilt parley to measure instead of building app/), PARLEY_REVISION (how
# the report names the measured revision; default: git HEAD), TURNSERVER (coturn).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/bench}"
OUT="${BENCH_OUT:-$ROOT/docs/benchmarks.md}"
# Hand-written interpretation appended to the generated report.
NOTES="${BENCH_NOTES:-$ROOT/bench/benchmarks_notes.md}"
DURATION="${DURATION:-10}"
REPEATS="${REPEATS:-3}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
TURNSERVER="${TURNSERVER:-$(command -v turnserver || true)}"

# Scenarios: name|stun_load arguments. Paced runs show cost at a realistic load; the unpaced
# run (a window of outstanding requests, no pacing) shows the saturation throughput.
SCENARIOS=(
  "paced 20k req/s|--rate 20000"
  "paced 50k req/s|--rate 50000"
  "unpaced, window 256|--rate 0 --window 256"
)

die() {
  echo "stun_bench: $*" >&2
  exit 1
}

for tool in taskset cmake ninja ss awk; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -n "$TURNSERVER" ]] || die "turnserver (coturn) not found"
(($(nproc) >= 2)) || die "needs at least 2 CPUs (server and load generator on separate cores)"

WORK="$(mktemp -d /tmp/stun_bench.XXXXXX)"
declare -A SERVER_PID=()  # server name -> pid
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
ninja -C "$BUILD_DIR" stun_load >/dev/null
if [[ -n "${PARLEY_BIN:-}" ]]; then
  # A prebuilt server binary, e.g. to compare two revisions with the same load generator.
  PARLEY="$PARLEY_BIN"
else
  ninja -C "$BUILD_DIR" parley >/dev/null || die "building parley failed (PARLEY_BIN=path uses a prebuilt one)"
  PARLEY="$BUILD_DIR/app/parley"
fi
[[ -x "$PARLEY" ]] || die "$PARLEY is not executable"
LOAD="$BUILD_DIR/bench/stun_load"

# ---- helpers --------------------------------------------------------------------------------
# A port free for both UDP and TCP (parley listens on both).
freePort() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 30000))
    if [[ -z "$(ss -Hln "( sport = :$port )" 2>/dev/null)" ]]; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# Server CPU ticks, all threads (fields 14 and 15 of /proc/PID/stat; comm may hold spaces).
cpuTicks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  stat="${stat##*) }"
  awk '{print $12 + $13}' <<<"$stat"
}
# The same from the scheduler, in nanoseconds: exact rather than tick-sampled; a cross-check.
cpuNs() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'
}
rssKb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# The value of "key" in stun_load's one-line JSON.
jget() { sed -E "s/.*\"$2\":\"?([^,\"}]*).*/\1/" <<<"$1"; }

waitForLog() {  # file pattern pid
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

startParley() {
  local port=$1 pid
  taskset -c "$SERVER_CPU" "$PARLEY" turn --listen 127.0.0.1 --stun-port "$port" --threads 1 --set turn.enabled=false \
    --log-level info >"$WORK/parley.log" 2>&1 &
  pid=$!
  SERVER_PID[parley]=$pid
  SERVER_PORT[parley]=$port
  waitForLog "$WORK/parley.log" "listening on stun+udp 127.0.0.1:$port" "$pid" ||
    die "parley did not start: $(cat "$WORK/parley.log")"
}

startCoturn() {
  local port=$1 pid
  # STUN only, no auth, no TLS/DTLS/CLI, one relay thread (-m 1): with Linux's SO_REUSEPORT
  # coturn's UDP listener then runs in that single "general relay" thread. Its main, auth and
  # admin threads exist but idle; their CPU is counted too.
  taskset -c "$SERVER_CPU" "$TURNSERVER" -n --listening-ip=127.0.0.1 --listening-port="$port" \
    --relay-threads=1 --stun-only --no-auth --no-tls --no-dtls --no-cli --no-rfc5780 \
    --log-file=stdout --simple-log --pidfile="$WORK/turnserver.pid" --userdb="$WORK/turndb" \
    >"$WORK/coturn.log" 2>&1 &
  pid=$!
  SERVER_PID[coturn]=$pid
  SERVER_PORT[coturn]=$port
  waitForLog "$WORK/coturn.log" "Total General servers: 1" "$pid" ||
    die "coturn did not start: $(cat "$WORK/coturn.log")"
  grep -q "Total General servers: 1" "$WORK/coturn.log" || die "coturn runs more than one relay thread"
}

# Proves the server answers Binding before measuring it.
probe() {
  local port=$1 json
  for _ in $(seq 20); do
    json="$("$LOAD" --server "127.0.0.1:$port" --max-requests 100 --duration 1 --window 10 \
      --timeout-ms 200 --quiet || true)"
    [[ -n "$json" && "$(jget "$json" received)" == 100 ]] && return 0
    sleep 0.2
  done
  die "server on port $port does not answer Binding requests: $json"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# One load run against a server that is already up; appends a line to RESULTS.
runOnce() {
  local name=$1 rep=$2 label=$3 args=$4 pid=${SERVER_PID[$1]} port=${SERVER_PORT[$1]}
  local t0 t1 n0 n1 json
  t0=$(cpuTicks "$pid")
  n0=$(cpuNs "$pid")
  # shellcheck disable=SC2086 # args is a word list on purpose
  json="$(taskset -c "$CLIENT_CPU" "$LOAD" --server "127.0.0.1:$port" --duration "$DURATION" \
    $args --quiet)" || die "stun_load failed against $name: $json"
  t1=$(cpuTicks "$pid")
  n1=$(cpuNs "$pid")
  echo "  [$rep/$REPEATS] $name / $label: $json" >&2
  echo -e "$name\t$label\t$((t1 - t0))\t$((n1 - n0))\t$(rssKb "$pid" VmRSS)\t$(rssKb "$pid" VmHWM)\t$rep\t$json" >>"$RESULTS"
}

SERVERS=(parley coturn)
startParley "$(freePort)"
startCoturn "$(freePort)"
for name in "${SERVERS[@]}"; do
  probe "${SERVER_PORT[$name]}"
done
threadCount() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }
PARLEY_THREADS=$(threadCount "${SERVER_PID[parley]}")
COTURN_THREADS=$(threadCount "${SERVER_PID[coturn]}")

# Idle cost: what each server burns with no traffic (timers, housekeeping), for reference.
declare -A IDLE_TICKS=()
for name in "${SERVERS[@]}"; do IDLE_TICKS[$name]=$(cpuTicks "${SERVER_PID[$name]}"); done
sleep 3
for name in "${SERVERS[@]}"; do
  IDLE_TICKS[$name]=$(($(cpuTicks "${SERVER_PID[$name]}") - IDLE_TICKS[$name]))
done

echo "stun_bench: servers on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU," \
  "$REPEATS x ${#SCENARIOS[@]} scenarios x $DURATION s per server" >&2
for rep in $(seq "$REPEATS"); do
  for scenario in "${SCENARIOS[@]}"; do
    for name in "${SERVERS[@]}"; do
      runOnce "$name" "$rep" "${scenario%%|*}" "${scenario#*|}"
    done
  done
done
for name in "${SERVERS[@]}"; do
  kill -0 "${SERVER_PID[$name]}" 2>/dev/null || die "$name exited during the benchmark"
  stopServer "$name"
done

# ---- report ---------------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
COTURN_VERSION="$("$TURNSERVER" --version 2>/dev/null | head -1 || true)"
PARLEY_VERSION="$("$PARLEY" --version 2>/dev/null | head -1 || true)"
COMMIT="${PARLEY_REVISION:-}"
if [[ -z "$COMMIT" ]]; then
  COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]]; then
    COMMIT="$COMMIT (working tree with uncommitted changes)"
  fi
fi
CXX_VERSION="$(awk -F= '/^CMAKE_CXX_COMPILER:/ {print $2}' "$BUILD_DIR/CMakeCache.txt")"
CXX_VERSION="$("$CXX_VERSION" --version 2>/dev/null | head -1 || true)"

# Per-run derived numbers: one line per server, scenario and repeat.
#  1 server  2 label  3 cpu_s  4 cpu_sched_s  5 received  6 achieved_rate  7 sent_rate  8 loss%
#  9 p50_us  10 p99_us  11 busy%  12 us_per_req  13 req_per_core_s  14 rss_kb  15 hwm_kb  16 rep
DERIVED="$WORK/derived.tsv"
while IFS=$'\t' read -r name label ticks ns rss hwm rep json; do
  awk -v name="$name" -v label="$label" -v ticks="$ticks" -v ns="$ns" -v hz="$HZ" \
    -v rss="$rss" -v hwm="$hwm" -v rep="$rep" -v recv="$(jget "$json" received)" \
    -v rate="$(jget "$json" achieved_rate)" -v srate="$(jget "$json" sent_rate)" \
    -v loss="$(jget "$json" loss_percent)" -v p50="$(jget "$json" rtt_p50_us)" \
    -v p99="$(jget "$json" rtt_p99_us)" -v secs="$(jget "$json" total_seconds)" 'BEGIN {
      cpu = ticks / hz; sched = ns / 1e9;
      us = recv > 0 ? cpu * 1e6 / recv : 0; per = cpu > 0 ? recv / cpu : 0;
      printf "%s\t%s\t%.2f\t%.2f\t%d\t%d\t%d\t%.3f\t%.1f\t%.1f\t%.0f\t%.2f\t%.0f\t%d\t%d\t%d\n",
        name, label, cpu, sched, recv, rate, srate, loss, p50, p99, 100 * cpu / secs, us, per,
        rss, hwm, rep }'
done <"$RESULTS" >"$DERIVED"

# The median run (by requests per core-second) of each server and scenario; its other
# columns come from the same run so a table row is never a mix of runs.
MEDIAN="$WORK/median.tsv"
: >"$MEDIAN"
for scenario in "${SCENARIOS[@]}"; do
  for name in "${SERVERS[@]}"; do
    awk -F'\t' -v s="$name" -v l="${scenario%%|*}" '$1 == s && $2 == l' "$DERIVED" |
      sort -t$'\t' -k13,13n | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }' \
      >>"$MEDIAN"
  done
done

field() {  # server label column (of the median run)
  awk -F'\t' -v s="$1" -v l="$2" -v c="$3" '$1 == s && $2 == l {print $c}' "$MEDIAN"
}
range() {  # server label column: "min-max" over all repeats
  awk -F'\t' -v s="$1" -v l="$2" -v c="$3" '$1 == s && $2 == l {
      if (n++ == 0 || $c < lo) lo = $c; if (n == 1 || $c > hi) hi = $c }
    END { print lo "-" hi }' "$DERIVED"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

SECTION="$WORK/section.md"
START_MARK="<!-- stun-bench:start -->"
END_MARK="<!-- stun-bench:end -->"
{
  echo "$START_MARK"
  echo
  echo "## STUN Binding over UDP: parley vs coturn, one server thread"
  echo
  echo "Generated by \`bench/stun_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Do not edit by"
  echo "hand: rerun the script."
  echo
  echo "Goal (milestone 1): at least 2x coturn's Binding requests per server core. Numbers below"
  echo "are as measured, not tuned: each cell is the median of $REPEATS runs of $DURATION s,"
  echo "alternating between the servers."
  echo
  echo "### Reproduce"
  echo
  echo '```sh'
  echo "bash bench/stun_bench.sh   # builds build/bench (Release) if needed, ~4 minutes"
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
  echo "  \`bench/stun_load\` pinned to CPU $CLIENT_CPU; both on 127.0.0.1 (loopback)."
  echo "- parley: \`parley turn --listen 127.0.0.1 --stun-port P --threads 1 --set turn.enabled=false\` (STUN only, as coturn --stun-only)"
  echo "  ($PARLEY_THREADS threads in the process)."
  echo "- coturn: \`turnserver -n --listening-ip=127.0.0.1 --listening-port=P --relay-threads=1"
  echo "  --stun-only --no-auth --no-tls --no-dtls --no-cli --no-rfc5780 --log-file=stdout"
  echo "  --simple-log\` ($COTURN_THREADS threads in the process; one general relay thread serves"
  echo "  UDP, the main, auth and admin threads idle)."
  echo "- Requests: RFC 8489 Binding with FINGERPRINT (28 bytes), one client socket. A response"
  echo "  counts only if it is a Binding success whose XOR-MAPPED-ADDRESS is the client's"
  echo "  address; both servers answer with XOR-MAPPED-ADDRESS, SOFTWARE and FINGERPRINT (coturn"
  echo "  also adds MAPPED-ADDRESS and RESPONSE-ORIGIN)."
  echo "- Each run sends for $DURATION s, then waits up to 1 s for stragglers; unanswered after"
  echo "  1 s counts as lost."
  echo "- **Server CPU** is utime+stime of all server threads from \`/proc/PID/stat\`, read"
  echo "  before and after each run (resolution 1/$HZ s); the scheduler's exact runtime"
  echo "  (\`/proc/PID/task/*/schedstat\`) is shown as a cross-check. **CPU us/req** = server CPU"
  echo "  / answered requests; **req per core-s** = answered requests / server CPU seconds;"
  echo "  **server busy** = server CPU / wall time of the run. The kernel's cost of receiving and"
  echo "  sending the server's datagrams, when charged to the server's thread, is included."
  echo
  echo "### Results"
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    echo
    echo "#### ${label}"
    echo
    echo "| | parley | coturn | parley / coturn |"
    echo "|---|---:|---:|---:|"
    printf "| **req per server core-second** (higher is better) | **%s** | **%s** | **%s** |\n" \
      "$(field parley "$label" 13)" "$(field coturn "$label" 13)" \
      "$(ratio "$(field parley "$label" 13)" "$(field coturn "$label" 13)")"
    printf "| **server CPU us/request** (lower is better) | **%s** | **%s** | **%s** |\n" \
      "$(field parley "$label" 12)" "$(field coturn "$label" 12)" \
      "$(ratio "$(field parley "$label" 12)" "$(field coturn "$label" 12)")"
    printf "| req per core-second, all %s runs | %s | %s | |\n" "$REPEATS" \
      "$(range parley "$label" 13)" "$(range coturn "$label" 13)"
    printf "| server CPU s (stat / schedstat) | %s / %s | %s / %s | |\n" \
      "$(field parley "$label" 3)" "$(field parley "$label" 4)" \
      "$(field coturn "$label" 3)" "$(field coturn "$label" 4)"
    printf "| server busy | %s%% | %s%% | |\n" "$(field parley "$label" 11)" \
      "$(field coturn "$label" 11)"
    printf "| offered req/s | %s | %s | |\n" "$(field parley "$label" 7)" "$(field coturn "$label" 7)"
    printf "| answered req/s | %s | %s | %s |\n" "$(field parley "$label" 6)" \
      "$(field coturn "$label" 6)" \
      "$(ratio "$(field parley "$label" 6)" "$(field coturn "$label" 6)")"
    printf "| answered | %s | %s | |\n" "$(field parley "$label" 5)" "$(field coturn "$label" 5)"
    printf "| lost | %s%% | %s%% | |\n" "$(field parley "$label" 8)" "$(field coturn "$label" 8)"
    printf "| RTT p50 / p99 (us) | %s / %s | %s / %s | |\n" \
      "$(field parley "$label" 9)" "$(field parley "$label" 10)" \
      "$(field coturn "$label" 9)" "$(field coturn "$label" 10)"
    printf "| server RSS / peak RSS (KiB) | %s / %s | %s / %s | |\n" \
      "$(field parley "$label" 14)" "$(field parley "$label" 15)" \
      "$(field coturn "$label" 14)" "$(field coturn "$label" 15)"
  done
  echo
  echo "### Summary (computed from the tables above)"
  echo
  for scenario in "${SCENARIOS[@]}"; do
    label="${scenario%%|*}"
    r="$(ratio "$(field parley "$label" 13)" "$(field coturn "$label" 13)")"
    verdict="$(awk -v r="$r" 'BEGIN { print (r + 0 >= 2) ? "meets" : "misses" }')"
    echo "- ${label}: parley answers ${r}x coturn's requests per server core-second;" \
      "$verdict the 2x goal."
  done
  last="${SCENARIOS[-1]%%|*}"
  for name in "${SERVERS[@]}"; do
    busy="$(field "$name" "$last" 11)"
    if ((busy < 90)); then
      echo "- ${last}: ${name}'s core was only ${busy}% busy, so the load generator (one core)," \
        "not ${name}, set its answered req/s: a lower bound of its capacity. Its CPU per" \
        "request is still a valid measurement."
    else
      echo "- ${last}: ${name}'s core was ${busy}% busy: ${name} itself was the bottleneck."
    fi
  done
  echo
  echo "Idle server CPU over 3 s with no traffic (ticks of 1/$HZ s): parley" \
    "${IDLE_TICKS[parley]}, coturn ${IDLE_TICKS[coturn]}."
  echo
  echo "### Raw load generator output"
  echo
  echo '```'
  awk -F'\t' '{print "[" $7 "] " $1 " / " $2 ": " $8}' "$RESULTS"
  echo '```'
  if [[ -f "$NOTES" ]]; then
    echo
    cat "$NOTES"
  fi
  echo
  echo "$END_MARK"
} >"$SECTION"

# Replace our section of the report (bench/turn_bench.sh owns another one), or start the file.
mkdir -p "$(dirname "$OUT")"
touch "$OUT"
if grep -qF "$START_MARK" "$OUT" && grep -qF "$END_MARK" "$OUT"; then
  awk -v start="$START_MARK" -v end="$END_MARK" -v section="$SECTION" '
    $0 == start { while ((getline line < section) > 0) print line; skip = 1; next }
    $0 == end { skip = 0; next }
    !skip { print }' "$OUT" >"$WORK/out.md"
else
  { echo "# Benchmarks"; echo; cat "$SECTION"; [[ -s "$OUT" ]] && { echo; cat "$OUT"; }; } \
    >"$WORK/out.md"
fi
cat "$WORK/out.md" >"$OUT"

echo "stun_bench: wrote the STUN section of $OUT" >&2
awk -F'\t' '{printf "  %-7s %-22s %8s req/core-s  %6s us/req  busy %s%%  answered %s/s  lost %s%%\n",
  $1, $2, $13, $12, $11, $6, $8}' "$MEDIAN" >&2
