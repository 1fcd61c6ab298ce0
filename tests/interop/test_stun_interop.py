#!/usr/bin/python3
"""Interop tests: the `parley` STUN server against independent STUN implementations.

Peers, all on loopback (Linux routes the whole of 127.0.0.0/8 to lo, so 127.0.0.1 and
127.0.0.2 are two local addresses, enough for RFC 5780 / RFC 3489 change tests):

* coturn 4.6.1: `turnutils_stunclient` (client) and `turnserver` (reference server);
* the classic Vovida RFC 3489 client `/usr/bin/stun` (requests without magic cookie);
* aioice's `stun` module (python3-aioice) to build and parse messages.

Run: PARLEY_BIN=build/interop/app/parley /usr/bin/python3 tests/interop/test_stun_interop.py
(ctest -L interop sets PARLEY_BIN). Stdlib + aioice only.
"""

import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from aioice import stun

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PARLEY_BIN = os.environ.get("PARLEY_BIN") or os.path.join(REPO, "build", "interop", "app", "parley")

PRIMARY = "127.0.0.1"
ALTERNATE = "127.0.0.2"
COOKIE = stun.COOKIE

TURNUTILS_STUNCLIENT = shutil.which("turnutils_stunclient")
TURNSERVER = shutil.which("turnserver")
CLASSIC_STUN = "/usr/bin/stun" if os.access("/usr/bin/stun", os.X_OK) else None
STDBUF = shutil.which("stdbuf")

# --------------------------------------------------------------------------------------
# Free ports: bind port 0, then check the same number is free for every socket the server
# will open (UDP and TCP, on every address it listens on).
# --------------------------------------------------------------------------------------

_handed_out = set()


def _can_bind(family_type, address, port):
    s = socket.socket(socket.AF_INET, family_type)
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(addresses=(PRIMARY, ALTERNATE), exclude=()):
    """A port free for UDP and TCP on every one of `addresses`."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind((addresses[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        if port in _handed_out or port in exclude:
            continue
        if all(_can_bind(kind, address, port)
               for address in addresses
               for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def free_udp_pair():
    """A port P such that UDP P and P+1 are free on all addresses (the classic client opens both)."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
        probe.close()
        if port >= 65535 or port in _handed_out or port + 1 in _handed_out:
            continue
        if _can_bind(socket.SOCK_DGRAM, "0.0.0.0", port) and \
                _can_bind(socket.SOCK_DGRAM, "0.0.0.0", port + 1):
            _handed_out.update((port, port + 1))
            return port
    raise RuntimeError("no free UDP port pair found")


# --------------------------------------------------------------------------------------
# STUN helpers (aioice builds and parses; raw bytes where a test needs malformed input or
# attributes aioice does not know).
# --------------------------------------------------------------------------------------

def binding_request(fingerprint=True):
    """(aioice Message, wire bytes) of a Binding request, optionally with FINGERPRINT."""
    message = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    if fingerprint:
        message.attributes["FINGERPRINT"] = stun.message_fingerprint(bytes(message))
    return message, bytes(message)


def raw_message(attributes=(), message_type=0x0001, cookie=COOKIE, transaction_id=None,
                fingerprint=True):
    """Wire bytes of a message with raw (type, value) attributes; FINGERPRINT computed."""
    transaction_id = transaction_id if transaction_id is not None else os.urandom(12)
    body = b""
    for attr_type, value in attributes:
        body += struct.pack("!HH", attr_type, len(value)) + value + bytes(-len(value) % 4)
    data = struct.pack("!HHI", message_type, len(body), cookie) + transaction_id + body
    if fingerprint:
        crc = stun.message_fingerprint(data)
        body += struct.pack("!HHI", 0x8028, 4, crc)
        data = struct.pack("!HHI", message_type, len(body), cookie) + transaction_id + body
    return data


def with_length(data, length):
    return data[:2] + struct.pack("!H", length) + data[4:]


def iter_attributes(data):
    """(type, value) of each attribute of a STUN message, raw."""
    pos = 20
    while pos + 4 <= len(data):
        attr_type, length = struct.unpack("!HH", data[pos:pos + 4])
        yield attr_type, data[pos + 4:pos + 4 + length]
        pos += 4 + length + (-length % 4)


def recv_exact(sock, count, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(data), count))
        data += chunk
    return data


def recv_stun_frame(sock, timeout=5.0):
    """One STUN message from a stream (RFC 8489 §6.2.2: the header carries the length)."""
    header = recv_exact(sock, 20, timeout)
    length = struct.unpack("!H", header[2:4])[0]
    return header + recv_exact(sock, length, timeout)


def wait_closed(sock, timeout):
    """True if the peer closes (EOF or reset) within `timeout` seconds; data is discarded."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def udp_transact(sock, data, address, timeout=2.0):
    """Send one datagram, return the first datagram received within `timeout` (or None)."""
    sock.sendto(data, address)
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(4096)[0]
    except socket.timeout:
        return None


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------

class Parley:
    """A running `parley turn`; stderr is collected by a thread so the pipe never fills."""

    def __init__(self, port, alternate_port=None, extra=(), ready_timeout=10.0):
        self.port = port
        self.alternate_port = alternate_port
        args = [PARLEY_BIN, "turn", "--listen", PRIMARY, "--stun-port", str(port),
                "--set", "turn.enabled=false"]  # STUN only here; TURN has its own tests
        if alternate_port is not None:
            args += ["--alternate-address", ALTERNATE,
                     "--set", "stun.alternate_port=%d" % alternate_port]
        args += list(extra)
        self.args = args
        self.lines = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        expected = ["listening on stun+udp %s:%d" % (PRIMARY, port),
                    "listening on stun+tcp %s:%d" % (PRIMARY, port)]
        if alternate_port is not None:
            for address in (PRIMARY, ALTERNATE):
                for p in (port, alternate_port):
                    for transport in ("udp", "tcp"):
                        expected.append("listening on stun+%s %s:%d" % (transport, address, p))
        self._wait_for(expected, ready_timeout)

    def _read(self):
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _wait_for(self, needles, timeout):
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                text = "\n".join(self.lines)
                if all(needle in text for needle in needles):
                    return
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("parley exited with %s before it was ready:\n%s"
                                         % (self.proc.returncode, self.stderr()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("parley not ready after %.0fs (missing %s):\n%s" % (
                        timeout, [n for n in needles if n not in text], self.stderr()))
                self._changed.wait(min(left, 0.2))

    def stderr(self):
        with self._changed:
            return "\n".join(self.lines)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, then wait; SIGKILL if it does not exit. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._reader.join(2)
                raise AssertionError("parley did not exit within %.0fs of SIGTERM:\n%s"
                                     % (timeout, self.stderr()))
        self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        if not self._reader.is_alive():
            self.proc.stderr.close()


class Coturn:
    """coturn's turnserver as a STUN-only reference server on two addresses (RFC 5780 / 3489)."""

    def __init__(self, port, alternate_port, workdir, ready_timeout=10.0):
        self.port = port
        self.alternate_port = alternate_port
        self.log_path = os.path.join(workdir, "turnserver.log")
        self._log = open(self.log_path, "w")
        args = [TURNSERVER, "-n",  # no config file
                "-L", PRIMARY, "-L", ALTERNATE,  # two addresses: RFC 5780 on by default
                "-p", str(port), "--alt-listening-port", str(alternate_port),
                "--no-tls", "--no-dtls", "--no-cli", "--stun-only", "--no-auth",
                "--log-file", "stdout", "--simple-log",
                "--pidfile", os.path.join(workdir, "turnserver.pid")]
        # RFC 3489 answers (MAPPED-ADDRESS, CHANGED-ADDRESS) are on by default in 4.6.1:
        # --no-stun-backward-compatibility would turn them off.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=workdir)
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        targets = [(PRIMARY, self.port), (ALTERNATE, self.alternate_port)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while targets:
                if self.proc.poll() is not None:
                    raise AssertionError("turnserver exited with %s:\n%s"
                                         % (self.proc.returncode, self.log()))
                if time.monotonic() > deadline:
                    raise AssertionError("turnserver does not answer on %s:\n%s"
                                         % (targets, self.log()))
                _, request = binding_request()
                if udp_transact(sock, request, targets[0], timeout=0.2) is not None:
                    targets.pop(0)

    def log(self):
        self._log.flush()
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class InteropTestCase(unittest.TestCase):
    """Servers started through start_parley/start_coturn are stopped in tearDown, always.
    parley must exit 0 on SIGTERM: a non-zero status (or a hang) is reported there."""

    def setUp(self):
        if not os.access(PARLEY_BIN, os.X_OK):
            self.fail("parley binary not found: %s (set PARLEY_BIN)" % PARLEY_BIN)
        self._parleys = []
        self._coturns = []
        self._tmp = tempfile.TemporaryDirectory(prefix="parley-interop-")

    def tearDown(self):
        problems = []
        try:
            for server in self._parleys:
                try:
                    status = server.stop()
                    if status != 0:
                        problems.append("parley exited with status %s on SIGTERM:\n%s"
                                        % (status, server.stderr()[-3000:]))
                except AssertionError as error:
                    problems.append(str(error))
        finally:
            for server in self._parleys:
                server.kill()
            for server in self._coturns:
                server.kill()
            self._tmp.cleanup()
        if problems:
            raise AssertionError("\n".join(problems))

    def start_parley(self, alternate=False, extra=()):
        port = free_port()
        alternate_port = free_port(exclude=(port,)) if alternate else None
        server = Parley(port, alternate_port, extra)
        self._parleys.append(server)
        return server

    def start_coturn(self):
        if TURNSERVER is None:
            self.skipTest("turnserver (coturn) not installed")
        port = free_port()
        alternate_port = free_port(exclude=(port,))
        server = Coturn(port, alternate_port, self._tmp.name)
        self._coturns.append(server)
        return server

    def run_tool(self, args, timeout=30):
        try:
            return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            self.fail("%s timed out after %ss; stdout so far:\n%s" % (args, timeout, expired.stdout))


# --------------------------------------------------------------------------------------
# 1. coturn's turnutils_stunclient
# --------------------------------------------------------------------------------------

# Its output lines, e.g. "0: : IPv4. UDP reflexive addr: 127.0.0.1:38012".
REFLEXIVE_RE = re.compile(r"UDP reflexive addr: ([0-9.]+):(\d+)\s*$", re.M)
ORIGIN_RE = re.compile(r"Response origin: : ([0-9.]+):(\d+)\s*$", re.M)
OTHER_RE = re.compile(r"Other addr: : ([0-9.]+):(\d+)\s*$", re.M)
TURNUTILS_ERROR_RE = re.compile(
    r"error|not a|not well formed|Cannot|Wrong|unrecognized", re.I)


def udp_ports_of(pid):
    """Local ports of the UDP sockets process `pid` holds (from /proc)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            match = re.fullmatch(r"socket:\[(\d+)\]", link)
            if match:
                inodes.add(match.group(1))
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@unittest.skipIf(TURNUTILS_STUNCLIENT is None, "turnutils_stunclient (coturn) not installed")
class TurnutilsStunclientTest(InteropTestCase):

    def test_reflexive_address_over_udp(self):
        # Without an alternate address parley sends no OTHER-ADDRESS, so the tool makes one
        # plain Binding transaction and exits. It has no option to fix its local port (-L is
        # an address only), so the port can only be checked for plausibility here; the RFC 5780
        # test below checks it exactly.
        server = self.start_parley()
        result = self.run_tool([TURNUTILS_STUNCLIENT, "-p", str(server.port), PRIMARY], timeout=15)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        # The tool logs each line twice (its log goes to stdout, and so does its printf).
        reflexive = set(REFLEXIVE_RE.findall(output))
        self.assertEqual(len(reflexive), 1, output)
        address, port = reflexive.pop()
        self.assertEqual(address, PRIMARY, output)
        self.assertTrue(1024 <= int(port) <= 65535, output)
        self.assertNotEqual(int(port), server.port, output)
        self.assertNotIn("RFC 5780", output)
        self.assertIsNone(TURNUTILS_ERROR_RE.search(output), output)
        self.assertTrue(server.alive())

    def test_rfc5780_other_address(self):
        # With -f (and anyway once the response has OTHER-ADDRESS) the tool runs RFC 5780:
        #  1. plain Binding             -> prints response origin, other address, reflexive addr;
        #  2. CHANGE-REQUEST(ip+port) + RESPONSE-PORT=first_port+1, read on a new socket bound
        #     to first_port+1 after closing the first one;
        #  3. CHANGE-REQUEST(ip+port) + PADDING.
        # parley honours RESPONSE-PORT and PADDING (src/stun/binding.cpp), so the tool must
        # finish with three answers, like against coturn; its second socket is bound to its first
        # port + 1, which makes the reflexive port of answer 3 exact.
        server = self.start_parley(alternate=True)
        args = [TURNUTILS_STUNCLIENT, "-f", "-p", str(server.port), PRIMARY]
        if STDBUF:
            args = [STDBUF, "-oL"] + args
        # The tool sends its first request once and never retransmits it: on a loaded machine
        # (a CI run with browsers beside it) one lost datagram leaves it silent. Up to three
        # runs, each bounded; what they must print is asserted on the run that answered.
        for attempt in range(3):
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            lines = []
            reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
            reader.start()
            deadline = time.monotonic() + 10
            while not REFLEXIVE_RE.search("".join(lines)) and proc.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            first = REFLEXIVE_RE.search("".join(lines))
            if first is not None or attempt == 2:
                break
            proc.kill()
            proc.wait(5)
            reader.join(5)
            proc.stdout.close()
        try:
            self.assertIsNotNone(first, "no reflexive address printed:\n" + "".join(lines))
            reflexive_port = int(first.group(2))
            ports_seen = set()
            deadline = time.monotonic() + 3
            while proc.poll() is None and time.monotonic() < deadline \
                    and reflexive_port + 1 not in ports_seen:
                ports_seen |= udp_ports_of(proc.pid)
                time.sleep(0.02)
            try:
                proc.wait(2)
                blocked = False
            except subprocess.TimeoutExpired:
                blocked = True
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            reader.join(5)
            proc.stdout.close()
        output = "".join(lines)
        block1 = output.split("RFC 5780 response 2")[0]
        self.assertIn("RFC 5780 response 1", block1, output)
        self.assertEqual(set(ORIGIN_RE.findall(block1)), {(PRIMARY, str(server.port))}, output)
        self.assertEqual(set(OTHER_RE.findall(block1)), {(ALTERNATE, str(server.alternate_port))},
                         output)
        self.assertEqual(set(REFLEXIVE_RE.findall(block1)), {(PRIMARY, str(reflexive_port))},
                         output)
        self.assertTrue(1024 <= reflexive_port <= 65535, output)
        self.assertIsNone(TURNUTILS_ERROR_RE.search(output), output)
        self.assertFalse(blocked, "the tool did not finish:\n" + output)
        self.assertEqual(proc.returncode, 0, output)
        self.assertIn("RFC 5780 response 3", output, output)
        block3 = output.split("RFC 5780 response 3")[1]
        self.assertEqual(set(REFLEXIVE_RE.findall(block3)), {(PRIMARY, str(reflexive_port + 1))},
                         output)
        self.assertTrue(server.alive())


# --------------------------------------------------------------------------------------
# 2. the classic Vovida RFC 3489 client (/usr/bin/stun)
# --------------------------------------------------------------------------------------

CLASSIC_BLOCK_RE = re.compile(
    r"Received stun message: \d+ bytes\n(.*?)Received message of type (\d+)\s+id=(\d+)", re.S)
CLASSIC_FIELD_RE = re.compile(r"^(\w+) = (.*)$", re.M)
CLASSIC_SUMMARY_RE = re.compile(
    r"^(test I|test II|test III|test I\(2\)|is nat|mapped IP same|hairpin|preserver port)"
    r"\s*= (\d+)\s*$", re.M)
CLASSIC_VERDICT_RE = re.compile(r"^Primary: (.*?)\s*$", re.M)
CLASSIC_RETURN_RE = re.compile(r"^Return value is (0x[0-9a-fA-F]+)\s*$", re.M)


class ClassicRun:
    """One run of `stun HOST:PORT -v -p SRCPORT`: verdict on stdout, details on stderr."""

    def __init__(self, result, source_port):
        self.source_port = source_port
        self.stdout = result.stdout
        self.stderr = result.stderr
        verdict = CLASSIC_VERDICT_RE.search(result.stdout)
        self.verdict = verdict.group(1) if verdict else None
        returned = CLASSIC_RETURN_RE.search(result.stdout)
        self.return_value = returned.group(1) if returned else None
        self.summary = CLASSIC_SUMMARY_RE.findall(result.stderr)
        self.responses = {}  # test id -> (message type, {field: value})
        for body, message_type, test_id in CLASSIC_BLOCK_RE.findall(result.stderr):
            self.responses.setdefault(int(test_id), (int(message_type),
                                                     dict(CLASSIC_FIELD_RE.findall(body))))

    def __str__(self):
        return "stdout:\n%s\nstderr:\n%s" % (self.stdout, self.stderr)


@unittest.skipIf(CLASSIC_STUN is None, "/usr/bin/stun (stun-client) not installed")
class ClassicStunClientTest(InteropTestCase):

    def classic(self, host, port, attempts=3):
        """Runs the classic client; retried only when a run yields no verdict at all."""
        run = None
        for _ in range(attempts):
            source_port = free_udp_pair()
            # Its usage: `stun HOST[:PORT] [testNumber] [-v] [-p srcPort]`.
            result = self.run_tool([CLASSIC_STUN, "%s:%d" % (host, port), "-v",
                                    "-p", str(source_port)], timeout=30)
            run = ClassicRun(result, source_port)
            if run.verdict is not None:
                return run
        self.fail("classic client gave no verdict in %d runs:\n%s" % (attempts, run))

    def test_mapped_address_is_exact(self):
        server = self.start_parley()
        run = self.classic(PRIMARY, server.port)
        self.assertIn(1, run.responses, run)
        message_type, fields = run.responses[1]
        self.assertEqual(message_type, 0x0101, run)  # Binding success response
        self.assertEqual(fields.get("MappedAddress"), "%s:%d" % (PRIMARY, run.source_port), run)
        self.assertEqual(fields.get("SourceAddress"), "%s:%d" % (PRIMARY, server.port), run)
        self.assertNotIn("ChangedAddress", fields, run)  # no alternate address configured
        self.assertTrue(server.alive())

    def test_change_request_and_verdict_match_coturn(self):
        coturn = self.start_coturn()
        server = self.start_parley(alternate=True)
        reference = self.classic(PRIMARY, coturn.port)
        ours = self.classic(PRIMARY, server.port)

        # The classic client's own view of parley's CHANGE-REQUEST handling (RFC 3489 §9.2):
        # test 1 plain, 2 change IP (from the second socket, source port + 1), 3 change port,
        # 10 = test I(2), sent to CHANGED-ADDRESS's IP.
        p, q, src = server.port, server.alternate_port, ours.source_port
        expected = {
            1: ("%s:%d" % (PRIMARY, src), "%s:%d" % (PRIMARY, p), "%s:%d" % (ALTERNATE, q)),
            2: ("%s:%d" % (PRIMARY, src + 1), "%s:%d" % (ALTERNATE, p), "%s:%d" % (ALTERNATE, q)),
            3: ("%s:%d" % (PRIMARY, src + 1), "%s:%d" % (PRIMARY, q), "%s:%d" % (ALTERNATE, q)),
            10: ("%s:%d" % (PRIMARY, src), "%s:%d" % (ALTERNATE, p), "%s:%d" % (PRIMARY, q)),
        }
        for test_id, (mapped, source, changed) in expected.items():
            self.assertIn(test_id, ours.responses, ours)
            message_type, fields = ours.responses[test_id]
            self.assertEqual(message_type, 0x0101, "test %d\n%s" % (test_id, ours))
            self.assertEqual(fields.get("MappedAddress"), mapped, "test %d\n%s" % (test_id, ours))
            self.assertEqual(fields.get("SourceAddress"), source, "test %d\n%s" % (test_id, ours))
            self.assertEqual(fields.get("ChangedAddress"), changed,
                             "test %d\n%s" % (test_id, ours))

        # The verdict: identical to coturn's (loopback has no NAT: "Open").
        self.assertEqual(ours.verdict, reference.verdict,
                         "parley:\n%s\ncoturn:\n%s" % (ours, reference))
        self.assertEqual(reference.verdict, "Open", reference)
        self.assertEqual(ours.return_value, reference.return_value)
        self.assertEqual(ours.summary, reference.summary,
                         "parley:\n%s\ncoturn:\n%s" % (ours, reference))
        self.assertEqual(len(ours.summary), 8, ours)
        self.assertTrue(server.alive())


# --------------------------------------------------------------------------------------
# 3. STUN over TCP with aioice
# --------------------------------------------------------------------------------------

class TcpAioiceTest(InteropTestCase):

    def connect(self, server):
        sock = socket.create_connection((PRIMARY, server.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(sock.close)
        return sock

    def check_response(self, data, request, sock, server):
        response = stun.parse_message(data)  # verifies FINGERPRINT when present
        self.assertEqual(response.message_method, stun.Method.BINDING)
        self.assertEqual(response.message_class, stun.Class.RESPONSE)
        self.assertEqual(response.transaction_id, request.transaction_id)
        self.assertEqual(data[4:8], struct.pack("!I", COOKIE))
        self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"], sock.getsockname())
        self.assertEqual(response.attributes["RESPONSE-ORIGIN"], (PRIMARY, server.port))
        self.assertIn("FINGERPRINT", response.attributes)
        return response

    def test_binding_and_framing(self):
        server = self.start_parley()
        sock = self.connect(server)

        # One request, one response.
        request, data = binding_request()
        sock.sendall(data)
        self.check_response(recv_stun_frame(sock), request, sock, server)

        # Two requests in one segment: two responses, in order.
        first, first_data = binding_request()
        second, second_data = binding_request(fingerprint=False)
        sock.sendall(first_data + second_data)
        self.check_response(recv_stun_frame(sock), first, sock, server)
        self.check_response(recv_stun_frame(sock), second, sock, server)

        # One request in 3 segments (inside the header, inside the body), then another:
        # nothing is answered before the last byte of the first, then both, in order.
        split, split_data = binding_request()
        after, after_data = binding_request()
        for part in (split_data[:7], split_data[7:25]):
            sock.sendall(part)
            time.sleep(0.3)
            readable, _, _ = select.select([sock], [], [], 0)
            self.assertEqual(readable, [], "answered before the request was complete")
        sock.sendall(split_data[25:])
        self.check_response(recv_stun_frame(sock), split, sock, server)
        sock.sendall(after_data)
        self.check_response(recv_stun_frame(sock), after, sock, server)
        self.assertTrue(server.alive())


# --------------------------------------------------------------------------------------
# 4. Bad input on the live server
# --------------------------------------------------------------------------------------

UNKNOWN_REQUIRED = 0x7F01  # comprehension-required (< 0x8000), unassigned
UNKNOWN_OPTIONAL = 0xC0DE  # comprehension-optional: ignored


class BadInputTest(InteropTestCase):

    def udp_socket(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((PRIMARY, 0))
        self.addCleanup(sock.close)
        return sock

    def assert_still_serves_udp(self, server, sock):
        request, data = binding_request()
        reply = udp_transact(sock, data, (PRIMARY, server.port))
        self.assertIsNotNone(reply, "no answer to a valid request")
        response = stun.parse_message(reply)
        self.assertEqual(response.message_class, stun.Class.RESPONSE)
        self.assertEqual(response.transaction_id, request.transaction_id)
        self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"], sock.getsockname())
        self.assertTrue(server.alive(), server.stderr())

    def test_tcp_garbage_is_closed(self):
        server = self.start_parley()
        cases = {
            "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "tls hello": bytes.fromhex("16030100a5010000a10303") + bytes(32),
            "bad cookie": raw_message(cookie=0x2112A443),
            "length not a multiple of 4": with_length(raw_message(fingerprint=False), 2),
            "binary junk": bytes(range(0xC0, 0x100)),
        }
        for name, payload in cases.items():
            with self.subTest(name), socket.create_connection((PRIMARY, server.port), 5) as sock:
                sock.sendall(payload)
                start = time.monotonic()
                self.assertTrue(wait_closed(sock, 3.0), "%s: connection not closed" % name)
                self.assertLess(time.monotonic() - start, 3.0)
        with socket.create_connection((PRIMARY, server.port), 5) as sock:
            request, data = binding_request()
            sock.sendall(data)
            response = stun.parse_message(recv_stun_frame(sock))
            self.assertEqual(response.transaction_id, request.transaction_id)
        self.assertTrue(server.alive())

    def test_tcp_slowloris_closed_after_idle_timeout(self):
        server = self.start_parley(extra=["--set", "stun.tcp_idle_timeout_seconds=2"])
        _, data = binding_request()
        with socket.create_connection((PRIMARY, server.port), 5) as sock:
            start = time.monotonic()
            closed_after = None
            for i in range(len(data)):  # one byte per second of a valid request
                try:
                    sock.sendall(data[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - start
                    break
                if wait_closed(sock, 1.0):
                    closed_after = time.monotonic() - start
                    break
            self.assertIsNotNone(closed_after, "slowloris connection never closed")
            self.assertGreaterEqual(closed_after, 1.5)
            self.assertLess(closed_after, 5.0)
        # An active client on a fresh connection is still served.
        with socket.create_connection((PRIMARY, server.port), 5) as sock:
            request, data = binding_request()
            sock.sendall(data)
            self.assertEqual(stun.parse_message(recv_stun_frame(sock)).transaction_id,
                             request.transaction_id)
        self.assertTrue(server.alive())

    def test_udp_malformed_datagrams_are_dropped(self):
        server = self.start_parley()
        sock = self.udp_socket()
        _, valid = binding_request()
        cases = {
            "truncated header": valid[:12],
            "truncated body": valid[:-4],
            # Larger than the 4096-byte datagram buffer: truncated by the kernel, dropped.
            "oversized (5000 bytes)": raw_message([(0x8022, b"x" * 4968)]),
            "length says more": with_length(valid, len(valid) - 20 + 8),
            "length says less": with_length(valid, len(valid) - 20 - 8),
            "length not a multiple of 4": with_length(valid + b"\0\0", len(valid) - 20 + 2),
            "attribute overruns message": struct.pack("!HHI", 0x0001, 8, COOKIE)
            + os.urandom(12) + struct.pack("!HH", 0x8022, 100) + b"abcd",
            "bad fingerprint": valid[:-4] + bytes(b ^ 0xFF for b in valid[-4:]),
            "top bits set": b"\xC0" + valid[1:],
            "response, not request": raw_message(message_type=0x0101),
            "indication": raw_message(message_type=0x0011),
            "empty": b"",
        }
        self.assertEqual(len(cases["oversized (5000 bytes)"]), 5000)
        for name, payload in cases.items():
            with self.subTest(name):
                reply = udp_transact(sock, payload, (PRIMARY, server.port), timeout=0.3)
                self.assertIsNone(reply, "%s: got a reply %r" % (name, reply))
                self.assertTrue(server.alive(), server.stderr())
        self.assert_still_serves_udp(server, sock)

    def test_udp_rfc3489_request_without_cookie(self):
        # RFC 5389 §12: no magic cookie = RFC 3489 client. Answer with MAPPED-ADDRESS (no XOR)
        # and echo all 16 bytes of its transaction ID. (So over UDP a "bad cookie" is not an
        # error: it is how such a client is recognised. Over TCP it is; see the garbage test.)
        server = self.start_parley()
        sock = self.udp_socket()
        for cookie_bytes in (os.urandom(4), struct.pack("!I", COOKIE ^ 1)):
            transaction_id = cookie_bytes + os.urandom(12)
            request = struct.pack("!HH", 0x0001, 0) + transaction_id
            reply = udp_transact(sock, request, (PRIMARY, server.port))
            self.assertIsNotNone(reply, "no answer to an RFC 3489 request")
            self.assertEqual(struct.unpack("!HH", reply[:4]), (0x0101, len(reply) - 20))
            self.assertEqual(reply[4:20], transaction_id)
            attributes = dict(iter_attributes(reply))
            self.assertEqual(stun.unpack_address(attributes[0x0001]), sock.getsockname())
            self.assertEqual(stun.unpack_address(attributes[0x0004]), (PRIMARY, server.port))
            self.assertNotIn(0x0020, attributes)  # no XOR-MAPPED-ADDRESS
            self.assertNotIn(0x8028, attributes)  # no FINGERPRINT
            self.assertNotIn(0x0005, attributes)  # no CHANGED-ADDRESS without an alternate
        self.assert_still_serves_udp(server, sock)

    def test_udp_unknown_comprehension_required_attribute(self):
        server = self.start_parley()
        sock = self.udp_socket()
        transaction_id = os.urandom(12)
        request = raw_message([(UNKNOWN_OPTIONAL, b"ok"), (UNKNOWN_REQUIRED, b"\0\0\0\0")],
                              transaction_id=transaction_id)
        reply = udp_transact(sock, request, (PRIMARY, server.port))
        self.assertIsNotNone(reply, "no answer to a request with an unknown attribute")
        response = stun.parse_message(reply)  # checks FINGERPRINT
        self.assertEqual(response.message_method, stun.Method.BINDING)
        self.assertEqual(response.message_class, stun.Class.ERROR)
        self.assertEqual(response.transaction_id, transaction_id)
        self.assertEqual(response.attributes["ERROR-CODE"][0], 420)
        attributes = dict(iter_attributes(reply))
        self.assertIn(0x000A, attributes)
        unknown = struct.unpack("!%dH" % (len(attributes[0x000A]) // 2), attributes[0x000A])
        self.assertEqual(unknown, (UNKNOWN_REQUIRED,))  # the optional one is not listed
        self.assertNotIn("XOR-MAPPED-ADDRESS", response.attributes)
        self.assert_still_serves_udp(server, sock)

    def test_tcp_connection_limit(self):
        server = self.start_parley(extra=["--set", "stun.tcp_max_connections=3"])

        def served(sock):
            request, data = binding_request()
            sock.sendall(data)
            return stun.parse_message(recv_stun_frame(sock)).transaction_id == \
                request.transaction_id

        open_connections = []
        try:
            for _ in range(3):
                sock = socket.create_connection((PRIMARY, server.port), 5)
                open_connections.append(sock)
                self.assertTrue(served(sock))
            with socket.create_connection((PRIMARY, server.port), 5) as fourth:
                start = time.monotonic()
                self.assertTrue(wait_closed(fourth, 3.0), "4th connection was not closed")
                self.assertLess(time.monotonic() - start, 1.0, "4th not closed at once")
            for sock in open_connections:  # the 3 are still open and served
                self.assertTrue(served(sock))
            # Closing one frees a slot.
            open_connections.pop().close()
            deadline = time.monotonic() + 3
            while True:
                with socket.create_connection((PRIMARY, server.port), 5) as sock:
                    try:
                        if served(sock):
                            break
                    except (ConnectionError, socket.timeout):
                        pass
                self.assertLess(time.monotonic(), deadline, "slot not freed after a close")
                time.sleep(0.1)
        finally:
            for sock in open_connections:
                sock.close()
        self.assertTrue(server.alive())


# --------------------------------------------------------------------------------------
# 5. Several worker threads
# --------------------------------------------------------------------------------------

class ThreadsTest(InteropTestCase):

    def test_200_requests_from_20_sockets(self):
        server = self.start_parley(extra=["--threads", "2"])
        sockets = []
        try:
            for _ in range(20):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((PRIMARY, 0))
                sock.setblocking(False)
                sockets.append(sock)
            expected = {}  # transaction id -> the socket's own address
            for round_ in range(10):
                for sock in sockets:
                    request, data = binding_request(fingerprint=round_ % 2 == 0)
                    expected[request.transaction_id] = sock.getsockname()
                    sock.sendto(data, (PRIMARY, server.port))
            self.assertEqual(len(expected), 200)
            answered = {}
            deadline = time.monotonic() + 10
            while len(answered) < 200 and time.monotonic() < deadline:
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for sock in readable:
                    while True:
                        try:
                            data, origin = sock.recvfrom(4096)
                        except BlockingIOError:
                            break
                        self.assertEqual(origin, (PRIMARY, server.port))
                        response = stun.parse_message(data)
                        self.assertEqual(response.message_class, stun.Class.RESPONSE)
                        tid = response.transaction_id
                        self.assertIn(tid, expected)
                        self.assertNotIn(tid, answered, "duplicate response")
                        self.assertEqual(expected[tid], sock.getsockname(), "wrong socket")
                        self.assertEqual(response.attributes["XOR-MAPPED-ADDRESS"],
                                         sock.getsockname())
                        answered[tid] = True
            self.assertEqual(len(answered), 200, "%d of 200 answered" % len(answered))
        finally:
            for sock in sockets:
                sock.close()
        self.assertTrue(server.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
