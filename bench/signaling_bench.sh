#!/usr/bin/env bash
# Signaling benchmark: `parley serve` under bench/signaling_load over WSS on loopback.
#
# Measures joins per second (TCP connect to welcome, guests admitted by their host), chat
# fan-out latency p50/p99 under a stated load, and the server's RSS per idle WebSocket
# connection at 10,000 connections (1000 rooms x 10). The server runs pinned to CPU 1 and the
# load generator to CPU 0 (taskset), as in bench/stun_bench.sh. Every run gets a fresh server
# and data directory. Writes its section of docs/benchmarks.md (or $BENCH_OUT), between the
# markers below; the STUN and TURN sections belong to their own scripts.
#
#   bash bench/signaling_bench.sh
#
# Environment: BUILD_DIR (default build/bench), BENCH_OUT (default docs/benchmarks.md),
# REPEATS (chat runs per load, default 3), CHAT_ROOMS (100), CHAT_GUESTS (9), CHAT_SECONDS
# (20), CHAT_RATES (messages per second per participant, one load per value, default "1 2"),
# IDLE_CONNECTIONS (10000), SERVER_CPU (1), CLIENT_CPU (0), PARLEY_BIN (a prebuilt parley to
# measure instead of building app/), PARLEY_REVISION (how the report names the revision),
# QUIET_WAIT (seconds to wait for an idle host before each run, 120), QUIET_BUSY_PERCENT (15),
# REPORT_FROM (a results file an earlier run saved as BUILD_DIR/signaling_bench_results.tsv:
# rewrite the report from it without measuring).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/bench}"
OUT="${BENCH_OUT:-$ROOT/docs/benchmarks.md}"
REPEATS="${REPEATS:-3}"
CHAT_ROOMS="${CHAT_ROOMS:-100}"
CHAT_GUESTS="${CHAT_GUESTS:-9}"
CHAT_SECONDS="${CHAT_SECONDS:-20}"
read -r -a CHAT_RATES <<<"${CHAT_RATES:-1 2}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
START_MARK="<!-- signaling-bench:begin -->"
END_MARK="<!-- signaling-bench:end -->"
ADVISOR=bench

die() {
  echo "signaling_bench: $*" >&2
  exit 1
}

for tool in taskset cmake ninja jq awk /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
(($(nproc) >= 2)) || die "needs at least 2 CPUs (server and load generator on separate cores)"

# 10,000 connections: each process needs more than 10,000 descriptors. Both inherit this.
ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > 10100)) || die "open-file limit $(ulimit -n) is too low for $IDLE_CONNECTIONS connections (raise the hard limit)"

WORK="$(mktemp -d /tmp/signaling_bench.XXXXXX)"
SERVER_PID=""
stopServer() {
  local status=0
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || status=$?
  fi
  SERVER_PID=""
  return "$status"
}
cleanup() {
  stopServer || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------------------------
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF \
    -DPARLEY_BENCH=ON
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" ||
  die "$BUILD_DIR is not a Release build; remove it or set BUILD_DIR"
ninja -C "$BUILD_DIR" signaling_load >/dev/null || die "building signaling_load failed"
if [[ -n "${PARLEY_BIN:-}" ]]; then
  PARLEY="$PARLEY_BIN"
else
  ninja -C "$BUILD_DIR" parley >/dev/null || die "building parley failed (PARLEY_BIN=path uses a prebuilt one)"
  PARLEY="$BUILD_DIR/app/parley"
fi
[[ -x "$PARLEY" ]] || die "$PARLEY is not executable"
LOAD="$BUILD_DIR/bench/signaling_load"
PASSWORD="bench-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
export PARLEY_LOAD_PASSWORD="$PASSWORD"

# ---- one fresh server per run -----------------------------------------------------------------
SERVER_PORT=""
SERVER_COMMAND="parley serve --data-dir DIR --https-port 0 --http-port 0 --stun-port 0 --tls-port 0 --set web.requests_per_second_per_ip=0"
startServer() {  # name
  local data="$WORK/data-$1" log="$WORK/server-$1.log"
  mkdir -p "$data"
  taskset -c "$SERVER_CPU" "$PARLEY" serve --data-dir "$data" --https-port 0 --http-port 0 \
    --stun-port 0 --tls-port 0 --set web.requests_per_second_per_ip=0 2>"$log" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 300); do
    grep -q "ready at" "$log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "parley serve exited: $(tail -20 "$log")"
    sleep 0.1
  done
  grep -q "ready at" "$log" || die "parley serve not ready after 30 s: $(tail -20 "$log")"
  SERVER_PORT="$(sed -nE 's/.*listening on https 127\.0\.0\.1:([0-9]+).*/\1/p' "$log" | head -1)"
  [[ -n "$SERVER_PORT" ]] || die "no 'listening on https' line: $(tail -20 "$log")"
  "$PARLEY" admin create-advisor "$ADVISOR" --data-dir "$data" --password-stdin \
    --display-name "Bench" <<<"$PASSWORD" >/dev/null 2>>"$WORK/admin.log" ||
    die "create-advisor failed: $(tail -5 "$WORK/admin.log")"
}

# Busy ticks of all CPUs together (user nice system irq softirq steal; not idle, iowait).
hostBusyTicks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
# utime + stime of all of a process's threads (fields 14, 15 of /proc/PID/stat).
cpuTicks() {
  local stat
  stat="$(<"/proc/$1/stat")"
  stat="${stat##*) }"
  awk '{print $12 + $13}' <<<"$stat"
}
HZ=$(getconf CLK_TCK)
NPROC=$(nproc)

# Other engineers' builds and tests share this machine. Before a run, wait (at most
# QUIET_WAIT s) until the host is nearly idle; the CPU others used during each run is
# reported beside its numbers either way.
QUIET_WAIT="${QUIET_WAIT:-120}"
QUIET_BUSY_PERCENT="${QUIET_BUSY_PERCENT:-15}"
waitQuiet() {
  local deadline=$((SECONDS + QUIET_WAIT)) b0 b1
  while ((SECONDS < deadline)); do
    b0=$(hostBusyTicks)
    sleep 2
    b1=$(hostBusyTicks)
    (((b1 - b0) * 100 < QUIET_BUSY_PERCENT * 2 * HZ * NPROC)) && return 0
  done
  echo "signaling_bench: host still busy after ${QUIET_WAIT} s; measuring anyway" >&2
}

RESULTS="$WORK/results.tsv"  # label \t rep \t json
: >"$RESULTS"
runLoad() {  # label rep args...
  local label=$1 rep=$2 json status=0 h0 h1 s0 s1 t0 t1 loadavg self
  shift 2
  startServer "$label-$rep"
  waitQuiet
  loadavg="$(cut -d' ' -f1 /proc/loadavg)"
  h0=$(hostBusyTicks)
  s0=$(cpuTicks "$SERVER_PID")
  t0=$(date +%s.%N)
  # shellcheck disable=SC2068 # the arguments are a word list on purpose
  json="$(taskset -c "$CLIENT_CPU" /usr/bin/time -f "%U %S" -o "$WORK/time.txt" "$LOAD" \
    --server "127.0.0.1:$SERVER_PORT" --user "$ADVISOR" --server-pid "$SERVER_PID" --quiet $@ |
    tail -1)" || status=$?
  t1=$(date +%s.%N)
  h1=$(hostBusyTicks)
  s1=$(cpuTicks "$SERVER_PID")
  stopServer || die "parley serve did not exit 0 on SIGTERM after $label"
  [[ "$json" == "{"* ]] || die "signaling_load printed no summary for $label (exit $status)"
  self=$(awk -v hz="$HZ" '/^[0-9.]+ [0-9.]+$/ {printf "%.0f", ($1 + $2) * hz}' "$WORK/time.txt")
  # Loss or reordering is a result, shown in the report; only a run that could not join
  # everybody is no measurement at all.
  json="$(jq -c --argjson server "$((s1 - s0))" --argjson self "${self:-0}" \
    --argjson host "$((h1 - h0))" --argjson hz "$HZ" --argjson cpus "$NPROC" \
    --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
    --argjson loadavg "$loadavg" --argjson status "$status" '. + {
      exit_status: $status, wall_seconds: $wall, loadavg_1min_at_start: $loadavg,
      server_cpu_seconds: ($server / $hz), load_cpu_seconds: ($self / $hz),
      others_cpu_percent: ((($host - $server - $self) * 10000 / ($wall * $hz * $cpus)
        | floor) / 100 | if . < 0 then 0 else . end)}' <<<"$json")"
  echo "  [$rep] $label: $json" >&2
  [[ "$(jq -r .joined <<<"$json")" == "$(jq -r .clients <<<"$json")" ]] ||
    die "not every client joined in $label: $json"
  echo -e "$label\t$rep\t$json" >>"$RESULTS"
}

CHAT_CLIENTS=$((CHAT_ROOMS * (CHAT_GUESTS + 1)))
SAVED="$BUILD_DIR/signaling_bench_results.tsv"
if [[ -n "${REPORT_FROM:-}" ]]; then
  # Only rewrite the report from the results of an earlier run (same settings).
  cp "$REPORT_FROM" "$RESULTS"
else
  echo "signaling_bench: server on CPU $SERVER_CPU, load generator on CPU $CLIENT_CPU" >&2
  for rate in "${CHAT_RATES[@]}"; do
    for rep in $(seq "$REPEATS"); do
      runLoad "chat-$rate" "$rep" --rooms "$CHAT_ROOMS" --guests "$CHAT_GUESTS" \
        --seconds "$CHAT_SECONDS" --rate "$rate" --drain 10
    done
  done
  runLoad idle 1 --idle "$IDLE_CONNECTIONS" --guests 9 --hold 5 --join-timeout 300
  cp "$RESULTS" "$SAVED"
fi

# ---- report ---------------------------------------------------------------------------------
# A jq filter applied to one run's JSON (label, repeat, filter).
field() { jq -r "$3" <<<"$(awk -F'\t' -v l="$1" -v r="$2" '$1 == l && $2 == r {print $3}' "$RESULTS")"; }
medianRep() {  # label field: the repeat whose field is the median
  awk -F'\t' -v l="$1" '$1 == l {print $2 "\t" $3}' "$RESULTS" |
    while IFS=$'\t' read -r rep json; do echo -e "$(jq -r ".$2" <<<"$json")\t$rep"; done |
    sort -g | awk '{ line[NR] = $2 } END { print line[int((NR + 1) / 2)] }'
}
range() {  # label field: "min-max" over the repeats
  awk -F'\t' -v l="$1" '$1 == l {print $3}' "$RESULTS" | jq -r ".$2" | sort -g |
    awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'
}

CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
PARLEY_VERSION="$("$PARLEY" --version 2>/dev/null | head -1 || true)"
COMMIT="${PARLEY_REVISION:-}"
if [[ -z "$COMMIT" ]]; then
  COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)" ]]; then
    COMMIT="$COMMIT (working tree with uncommitted changes)"
  fi
fi
CXX="$(awk -F= '/^CMAKE_CXX_COMPILER:/ {print $2}' "$BUILD_DIR/CMakeCache.txt")"
CXX_VERSION="$("$CXX" --version 2>/dev/null | head -1 || true)"
IDLE_ROOMS=$(((IDLE_CONNECTIONS + 9) / 10))

SECTION="$WORK/section.md"
{
  echo "$START_MARK"
  echo
  echo "## Signaling over WSS: joins, chat fan-out, idle connections"
  echo
  echo "Generated by \`bench/signaling_bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Do not edit"
  echo "by hand: rerun the script."
  echo
  echo "### Reproduce"
  echo
  echo '```sh'
  echo "bash bench/signaling_bench.sh   # builds build/bench (Release) if needed"
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
  echo
  echo "### Setup"
  echo
  echo "- Server: \`$SERVER_COMMAND\` with its default configuration otherwise"
  echo "  (self-signed certificate, SQLite in DIR), pinned to CPU $SERVER_CPU (\`taskset -c"
  echo "  $SERVER_CPU\`, all of its threads). A fresh server and data directory for every run."
  echo "- Load generator: \`bench/signaling_load\` (Boost.Beast WebSocket over TLS, one event-loop"
  echo "  thread) pinned to CPU $CLIENT_CPU; both on 127.0.0.1. It logs in over REST, creates the"
  echo "  rooms and one multi-use invitation per room, then opens 64 connections at a time: each"
  echo "  room's host with the advisor's cookie, its guests with \`hello\` (invitation token)"
  echo "  and \`join\`; the host admits every guest from its lobby. Every connection is a full"
  echo "  TLS handshake (no session resumption), as a first visit from a browser."
  echo "- **Joins per second** = joined clients / time from the first TCP connect to the last"
  echo "  \`welcome\`; a guest's join includes waiting in the lobby for the host's \`admit\`."
  echo "- **Chat fan-out**: $CHAT_ROOMS rooms x $((CHAT_GUESTS + 1)) participants ($CHAT_CLIENTS"
  echo "  WebSockets); once all are in, every participant sends chat for $CHAT_SECONDS s at the"
  echo "  stated rate, paced and spread evenly; each message goes to the $CHAT_GUESTS others of its"
  echo "  room (and back to its sender, not counted)."
  echo "  Latency is from the sender's send call to each receiver's read, in one process with"
  echo "  one clock. Every receiver checks each sender's sequence numbers (no loss, no reorder)."
  echo "- **Idle connections**: $IDLE_CONNECTIONS WebSockets ($IDLE_ROOMS rooms x 10), all"
  echo "  welcomed, no traffic. RSS per connection = (server VmRSS 1 s after the last welcome -"
  echo "  VmRSS after the REST set-up, before the first WebSocket) / connections; it includes"
  echo "  the TLS state, the WebSocket buffers, the room state and the guests' rows in SQLite's"
  echo "  page cache."
  echo "- The machine is shared with other work (builds, browser tests). Each run first waits"
  echo "  up to ${QUIET_WAIT} s for the host to be under ${QUIET_BUSY_PERCENT}% busy, and the report shows how much"
  echo "  CPU other processes used during it: where that is high, latency and joins/s are"
  echo "  pessimistic (the server's core was shared)."
  echo
  echo "### Results"
  echo
  echo "#### Chat fan-out and joins, $CHAT_CLIENTS clients in $CHAT_ROOMS rooms (median of $REPEATS runs by p99)"
  echo
  printf "| messages/s per participant |"
  for rate in "${CHAT_RATES[@]}"; do printf " %s |" "$rate"; done
  echo
  printf "|---|"
  for _ in "${CHAT_RATES[@]}"; do printf -- "---:|"; done
  echo
  row() {  # title jq-filter (of the median run of each load)
    printf "| %s |" "$1"
    for rate in "${CHAT_RATES[@]}"; do
      printf " %s |" "$(field "chat-$rate" "$(medianRep "chat-$rate" latency_ms_p99)" "$2")"
    done
    echo
  }
  row "messages sent per second (all senders)" .messages_per_second
  row "deliveries per second (each message to $CHAT_GUESTS others)" .deliveries_per_second
  row "**fan-out latency p50 (ms)**" '"**\(.latency_ms_p50)**"'
  row "**fan-out latency p99 (ms)**" '"**\(.latency_ms_p99)**"'
  row "fan-out latency max (ms)" .latency_ms_max
  printf "| p99 (ms), all %s runs |" "$REPEATS"
  for rate in "${CHAT_RATES[@]}"; do printf " %s |" "$(range "chat-$rate" latency_ms_p99)"; done
  echo
  row "messages sent" .messages_sent
  row "deliveries expected / delivered" '"\(.expected_deliveries) / \(.delivered)"'
  row "lost / reordered" '"\(.lost) / \(.reordered)"'
  row "**joins per second** ($CHAT_CLIENTS clients)" '"**\(.joins_per_second)**"'
  printf "| joins per second, all %s runs |" "$REPEATS"
  for rate in "${CHAT_RATES[@]}"; do printf " %s |" "$(range "chat-$rate" joins_per_second)"; done
  echo
  row "join time p50 / p99 (ms)" '"\(.join_ms_p50) / \(.join_ms_p99)"'
  row "server RSS start / peak / end (KiB)" \
    '"\(.server_rss_start_kb) / \(.server_rss_peak_kb) / \(.server_rss_end_kb)"'
  row "server CPU per join (ms)" .server_cpu_ms_per_join
  row "server CPU per delivery (us; traffic phase CPU / deliveries)" .server_cpu_us_per_delivery
  row "errors" .errors
  row "server CPU s (whole run: set-up, joins, traffic)" .server_cpu_seconds
  row "CPU used by other processes during the run (% of all CPUs)" .others_cpu_percent
  echo
  echo "#### $IDLE_CONNECTIONS idle WebSocket connections"
  echo
  echo "| | |"
  echo "|---|---:|"
  echo "| connections welcomed | $(field idle 1 '"\(.joined) of \(.clients)"') |"
  echo "| **server RSS per idle connection (KiB)** | **$(field idle 1 .rss_per_connection_kb)** |"
  echo "| server RSS before / with the connections (KiB) | $(field idle 1 '"\(.server_rss_before_kb) / \(.server_rss_idle_kb)"') |"
  echo "| **joins per second** ($IDLE_CONNECTIONS clients) | **$(field idle 1 .joins_per_second)** |"
  echo "| join time p50 / p99 (ms) | $(field idle 1 '"\(.join_ms_p50) / \(.join_ms_p99)"') |"
  echo "| time to open all (s) | $(field idle 1 .join_seconds) |"
  echo "| server CPU per join (ms) | $(field idle 1 .server_cpu_ms_per_join) |"
  echo "| server CPU while idle for $(field idle 1 .hold_seconds) s (s) | $(field idle 1 .server_cpu_hold_seconds) |"
  echo "| server CPU s (whole run) | $(field idle 1 .server_cpu_seconds) |"
  echo "| CPU used by other processes during the run (% of all CPUs) | $(field idle 1 .others_cpu_percent) |"
  echo
  echo "### Reading these numbers"
  echo
  echo "- **lost** counts deliveries that had not arrived when the 10 s drain after the traffic"
  echo "  ended. With errors 0 (no socket closed, no error message) they were not dropped but"
  echo "  still queued: the server had fallen behind, which a p50 latency of seconds also shows."
  echo "  Such a column measures an overloaded server, not its latency."
  echo "- Capacity from CPU cost (median runs; 1 / server CPU per unit, i.e. if the server had a"
  echo "  core to itself):"
  for rate in "${CHAT_RATES[@]}"; do
    rep="$(medianRep "chat-$rate" latency_ms_p99)"
    echo "  at $rate msg/s per participant, $(field "chat-$rate" "$rep" \
      '(1000000 / .server_cpu_us_per_delivery | floor)') deliveries and $(field "chat-$rate" \
      "$rep" '(1000 / .server_cpu_ms_per_join | floor)') joins per server core-second;"
  done
  echo "  with $IDLE_CONNECTIONS connections, $(field idle 1 '(1000 / .server_cpu_ms_per_join | floor)') joins per server core-second."
  echo "- Measured joins per second fall short of that through waiting and a shared core: each"
  echo "  guest's join commits to SQLite several times (the guest, the audit records \"waiting\","
  echo "  \"admitted\", \"joined\"; synchronous=FULL: one fdatasync per commit), a guest waits for"
  echo "  its host's \`admit\`, and the load generator opens 64 connections at a time."
  echo "- **CPU used by other processes**: this machine is shared. Above ~20% the server's core"
  echo "  was shared too, and latency and joins/s are worse than the server alone would give."
  echo
  echo "### Comparison"
  echo
  echo "None. Debian 12 packages no signaling server that speaks this protocol or one close to"
  echo "it (a room service over WebSocket with a lobby, admission and chat fan-out), so there is"
  echo "no like-for-like peer to run the same load against; the numbers above stand alone."
  echo
  echo "### Raw load generator output"
  echo
  echo '```'
  awk -F'\t' '{print "[" $2 "] " $1 ": " $3}' "$RESULTS"
  echo '```'
  echo
  echo "$END_MARK"
} >"$SECTION"

# Replace our section (the markers' lines included), or append it with its markers.
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
echo "signaling_bench: wrote the signaling section of $OUT" >&2
