#!/usr/bin/python3
"""Signaling load test: `parley serve` under 1000 WebSocket clients in 100 rooms.

Starts `parley serve` on loopback (ports 0, a fresh data dir, the per-IP request rate limit
off), creates an advisor with `parley admin create-advisor`, and runs bench/signaling_load:
100 rooms of 1 host + 9 guests (rooms.max_participants default 10), every participant sending
chat for ~20 s. Passes if every client joined and every message reached every other
participant of its room, in order (signaling_load exits 0 only then, and lost == 0 and
reordered == 0 are checked here too), and the server then stops cleanly on SIGTERM.
Prints the load generator's summary, including the server's RSS.

Run: PARLEY_BIN=build/release/app/parley SIGNALING_LOAD=build/release/bench/signaling_load \
       /usr/bin/python3 tests/load/signaling_load_test.py
(ctest -L interop -R signaling_load sets both.) Environment knobs: LOAD_ROOMS (100),
LOAD_GUESTS (9), LOAD_SECONDS (20), LOAD_RATE (messages per second per client, 1).
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PARLEY_BIN = os.environ.get("PARLEY_BIN") or os.path.join(REPO, "build", "release", "app", "parley")
SIGNALING_LOAD = os.environ.get("SIGNALING_LOAD") or os.path.join(
    REPO, "build", "release", "bench", "signaling_load")
ROOMS = int(os.environ.get("LOAD_ROOMS", "100"))
GUESTS = int(os.environ.get("LOAD_GUESTS", "9"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
RATE = float(os.environ.get("LOAD_RATE", "1"))
ADVISOR = "loadtest"
READY_TIMEOUT = 30
SHUTDOWN_TIMEOUT = 30


class Server:
    """`parley serve` on loopback; its stderr is collected so that failures can show it."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.lines = []
        self.https_port = None
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [PARLEY_BIN, "serve", "--data-dir", data_dir,
             "--https-port", "0", "--http-port", "0", "--stun-port", "0", "--tls-port", "0",
             "--set", "web.requests_per_second_per_ip=0",
             # 1000 clients plus the REST set-up: far below the limit, set so it stays so.
             "--set", "web.max_connections=20000"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            found = re.search(r"listening on https 127\.0\.0\.1:(\d+)", line)
            if found:
                self.https_port = int(found.group(1))
            if "ready at" in line:
                self.ready.set()
        self.ready.set()  # the server ended: stop waiting

    def wait_ready(self):
        if not self.ready.wait(READY_TIMEOUT) or self.process.poll() is not None:
            raise AssertionError("parley serve did not become ready:\n" + self.log())
        if self.https_port is None:
            raise AssertionError("no 'listening on https' line:\n" + self.log())

    def log(self, last=60):
        return "\n".join(self.lines[-last:])

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def create_advisor(data_dir, password):
    result = subprocess.run(
        [PARLEY_BIN, "admin", "create-advisor", ADVISOR, "--data-dir", data_dir,
         "--password-stdin", "--display-name", "Load Test"],
        input=password + "\n", capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or f"advisor {ADVISOR} created" not in result.stdout:
        raise AssertionError(
            f"create-advisor failed ({result.returncode}): {result.stdout}{result.stderr}")


def run_load(port, server_pid, password):
    # Joins: 1000 TLS handshakes; the bound leaves room for a slow (sanitizer, loaded) machine.
    command = [SIGNALING_LOAD, "--server", f"127.0.0.1:{port}", "--user", ADVISOR,
               "--rooms", str(ROOMS), "--guests", str(GUESTS),
               "--seconds", str(SECONDS), "--rate", str(RATE), "--drain", "10",
               "--join-timeout", "120", "--server-pid", str(server_pid)]
    print("running:", " ".join(command), flush=True)
    environment = dict(os.environ, PARLEY_LOAD_PASSWORD=password)
    result = subprocess.run(command, capture_output=True, text=True, env=environment,
                            timeout=280)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"signaling_load printed no summary (exit {result.returncode})")
    return result.returncode, json.loads(lines[-1])


def main():
    for path in (PARLEY_BIN, SIGNALING_LOAD):
        if not os.access(path, os.X_OK):
            print(f"not executable: {path}", file=sys.stderr)
            return 1
    password = "load-" + secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="parley-load-") as data_dir:
        server = Server(data_dir)
        try:
            server.wait_ready()
            create_advisor(data_dir, password)
            status, summary = run_load(server.https_port, server.process.pid, password)
            alive = server.process.poll() is None
        finally:
            exit_status = server.stop()

        failures = []
        clients = ROOMS * (GUESTS + 1)
        if status != 0:
            failures.append(f"signaling_load exited {status}")
        if summary.get("joined") != clients:
            failures.append(f"joined {summary.get('joined')} of {clients}")
        if summary.get("lost") != 0:
            failures.append(f"lost {summary.get('lost')} deliveries")
        if summary.get("reordered") != 0:
            failures.append(f"reordered {summary.get('reordered')} deliveries")
        if not summary.get("messages_sent"):
            failures.append("no chat message was sent")
        if summary.get("delivered", 0) < summary.get("expected_deliveries", 1):
            failures.append("fewer deliveries than expected")
        if not alive:
            failures.append("parley serve died during the load")
        if exit_status != 0:
            failures.append(f"parley serve exited {exit_status} on SIGTERM (want 0)")

        print(f"clients {clients} in {ROOMS} rooms: joins/s {summary.get('joins_per_second')}, "
              f"sent {summary.get('messages_sent')}, delivered {summary.get('delivered')}"
              f"/{summary.get('expected_deliveries')}, lost {summary.get('lost')}, "
              f"reordered {summary.get('reordered')}, latency p50/p99/max "
              f"{summary.get('latency_ms_p50')}/{summary.get('latency_ms_p99')}/"
              f"{summary.get('latency_ms_max')} ms")
        print(f"server RSS KiB: start {summary.get('server_rss_start_kb')}, peak "
              f"{summary.get('server_rss_peak_kb')}, end {summary.get('server_rss_end_kb')}")
        if failures:
            print("FAILED: " + "; ".join(failures), file=sys.stderr)
            print("server log (last lines):\n" + server.log(), file=sys.stderr)
            return 1
        print("signaling load test passed")
        return 0


if __name__ == "__main__":
    sys.exit(main())
