#!/usr/bin/env python3
"""HTTP and WebSocket tests against a running `parley serve` (docs/api.md is the contract),
plus the `parley admin` commands.

Standard library only: HTTPS through http.client with an unverifying ssl context (the server's
certificate is self-signed), and a small RFC 6455 client written here so that tests can send
malformed frames and see close codes. One server per test class, on ports 0 in a temporary
data directory; advisors are created with `parley admin create-advisor`. The binary comes from
$PARLEY_BIN (set by CTest)."""

import base64
import calendar
import collections
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import select
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

PARLEY = os.path.abspath(os.environ["PARLEY_BIN"]) if os.environ.get("PARLEY_BIN") else ""
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT_DIR = os.path.join(SOURCE_DIR, "client")
START_TIMEOUT = 30  # seconds until "ready at"
CLI_TIMEOUT = 30  # any admin command
IO_TIMEOUT = 10  # any single network read
FOREIGN_ORIGIN = "https://evil.example"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def tls_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def new_password():
    return "Parley-test-" + secrets.token_hex(8)


# --- the server ---------------------------------------------------------------------------


class Server:
    """One `parley serve` on 127.0.0.1 with every port 0; parses the start-up log for the
    ports it picked and keeps the whole log for failure messages."""

    def __init__(self, settings=(), data_dir=None):
        self._dir = None
        if data_dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="parley-api-")
            data_dir = self._dir.name
        self.data_dir = data_dir
        self.log_lines = []
        self._log_changed = threading.Condition()
        args = [PARLEY, "serve", "--data-dir", data_dir, "--https-port", "0", "--http-port", "0",
                "--stun-port", "0", "--tls-port", "0",
                # Every test talks from loopback; the per-IP request limit would mix them up.
                "--set", "web.requests_per_second_per_ip=0"]
        for setting in settings:
            args += ["--set", setting]
        self.proc = subprocess.Popen(args, cwd=data_dir, env=clean_env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        ready = self.wait_for_log(r"ready at (https://\S+?)/?$", START_TIMEOUT)
        if ready is None:
            self.stop()
            raise RuntimeError("parley serve did not become ready:\n" + self.log())
        self.origin = ready.group(1)
        self.https_port = self._port(r"listening on https (\S+)")
        self.http_port = self._port(r"listening on http (\S+) \(redirects")
        self.stun_port = self._port(r"listening on stun\+udp (\S+)")
        self.tls_port = self._port(r"listening on turn\+tls (\S+)")
        setup = self.find_log(r"first advisor set-up: (\S+)")
        self.setup_link = setup.group(1) if setup else None

    def _read_log(self):
        for line in self.proc.stderr:
            with self._log_changed:
                self.log_lines.append(line.rstrip("\n"))
                self._log_changed.notify_all()
        with self._log_changed:
            self._log_changed.notify_all()

    def find_log(self, pattern):
        with self._log_changed:
            for line in self.log_lines:
                match = re.search(pattern, line)
                if match:
                    return match
        return None

    def wait_for_log(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        seen = 0
        with self._log_changed:
            while True:
                for line in self.log_lines[seen:]:
                    match = re.search(pattern, line)
                    if match:
                        return match
                seen = len(self.log_lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._log_changed.wait(min(remaining, 0.2))

    def _port(self, pattern):
        match = self.find_log(pattern)
        return int(match.group(1).rsplit(":", 1)[1]) if match else None

    def log(self, last=60):
        with self._log_changed:
            return "\n".join(self.log_lines[-last:])

    def alive(self):
        return self.proc.poll() is None

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def admin(self, *args, stdin=None):
        return subprocess.run([PARLEY, "admin", *args, "--data-dir", self.data_dir],
                              cwd=self.data_dir, env=clean_env(), input=stdin,
                              capture_output=True, text=True, timeout=CLI_TIMEOUT)

    def create_advisor(self, username, password, display_name=None):
        extra = ["--display-name", display_name] if display_name else []
        result = self.admin("create-advisor", username, "--password-stdin", *extra,
                            stdin=password + "\n")
        if result.returncode != 0:
            raise RuntimeError(f"create-advisor {username} failed ({result.returncode}): "
                               f"{result.stderr}")
        return result

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr:
            self.proc.stderr.close()
        if self._dir:
            self._dir.cleanup()
            self._dir = None


def clean_env():
    return {k: v for k, v in os.environ.items() if k != "PARLEY_CONFIG"}


# --- HTTP ---------------------------------------------------------------------------------


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_all(self, name):
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"HTTP {self.status} {self.body[:300]!r}"


def parse_set_cookie(value):
    """'name=value; Attr; Attr=x' -> (name, value, {attr_lower: value_or_True})."""
    parts = [part.strip() for part in value.split(";")]
    name, _, cookie_value = parts[0].partition("=")
    attributes = {}
    for part in parts[1:]:
        key, sep, attr_value = part.partition("=")
        attributes[key.strip().lower()] = attr_value.strip() if sep else True
    return name.strip(), cookie_value.strip(), attributes


class Browser:
    """An HTTPS client with a cookie jar (the cookies are Secure and the host is 127.0.0.1,
    so the jar is kept by hand), the CSRF token from the last login, and an optional source
    address from 127.0.0.0/8 so tests can play different client IPs."""

    def __init__(self, server, source_ip=None):
        self.server = server
        self.source_ip = source_ip
        self.cookies = {}
        self.csrf = None

    def _connection(self):
        source = (self.source_ip, 0) if self.source_ip else None
        return http.client.HTTPSConnection("127.0.0.1", self.server.https_port,
                                           timeout=IO_TIMEOUT, context=tls_context(),
                                           source_address=source)

    def request(self, method, path, body=None, headers=None, csrf=False, origin=None):
        all_headers = {"Host": f"localhost:{self.server.https_port}"}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if csrf and self.csrf:
            all_headers["X-CSRF-Token"] = self.csrf
        if origin:
            all_headers["Origin"] = origin
        all_headers.update(headers or {})
        connection = self._connection()
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            reply = Reply(response.status, response.getheaders(), response.read())
        finally:
            connection.close()
        for value in reply.header_all("Set-Cookie"):
            name, cookie_value, attributes = parse_set_cookie(value)
            if cookie_value == "" or attributes.get("max-age") == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        return reply

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body=body, **kwargs)

    def login(self, username, password):
        reply = self.post("/api/v1/session", {"username": username, "password": password})
        if reply.status == 200:
            self.csrf = reply.json()["csrfToken"]
        return reply


def raw_https(server, request_bytes, source_ip=None):
    """Sends exactly `request_bytes` over TLS and parses the answer (or returns None when the
    server closes without one)."""
    raw = socket.create_connection(("127.0.0.1", server.https_port), timeout=IO_TIMEOUT,
                                   source_address=(source_ip, 0) if source_ip else None)
    sock = tls_context().wrap_socket(raw, server_hostname="localhost")
    try:
        try:
            sock.sendall(request_bytes)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the server may answer and close before it read everything; read the answer
        response = http.client.HTTPResponse(sock, method="GET")
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError):
            return None
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        sock.close()


def concurrently(count, action):
    """Runs action(n) for n in range(count) on as many threads at once; their results."""
    results = [None] * count
    start = threading.Barrier(count)

    def run(n):
        start.wait(10)
        results[n] = action(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


# --- WebSocket (RFC 6455) -----------------------------------------------------------------


class UpgradeRefused(Exception):
    def __init__(self, reply):
        super().__init__(f"upgrade refused: {reply}")
        self.reply = reply


def mask_bytes(payload, key):
    """RFC 6455 section 5.3 masking, done on big integers so megabytes stay fast."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One frame; `length` overrides the header's payload length (to lie about it)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask else 0
    if size < 126:
        header = struct.pack("!BB", first, mask_bit | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask:
        key = os.urandom(4)
        return header + key + mask_bytes(payload, key)
    return header + payload


class WsClient:
    """A WebSocket client on one TLS socket, single-threaded: reads happen only inside the
    recv/drain calls, so a test can stop reading to play a slow client. Pings are answered;
    a close frame is answered and recorded."""

    TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA

    def __init__(self, server, path="/ws", cookies=None, origin=None, source_ip=None,
                 receive_buffer=None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if source_ip:
            raw.bind((source_ip, 0))
        raw.settimeout(IO_TIMEOUT)
        raw.connect(("127.0.0.1", server.https_port))
        self.sock = tls_context().wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""
        # ("text", str) | ("binary", bytes) | ("close", code, reason) | ("eof", reset)
        self.events = collections.deque()
        self.seen = []  # JSON messages skipped by wait_for
        self.pongs = []
        self.closed = False  # a close frame or EOF arrived
        self.close_sent = False
        self._fragments = None
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: localhost:{server.https_port}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        if origin:
            lines.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during the handshake after {head!r}")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        if status != 101:
            length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
            while len(rest) < length:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.sock.close()
            raise UpgradeRefused(Reply(status, headers, rest[:length]))
        accept = dict((k.lower(), v) for k, v in headers).get("sec-websocket-accept")
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if accept != expected:
            raise ConnectionError(f"bad Sec-WebSocket-Accept {accept!r}")
        self.buffer = rest

    # sending

    def send_raw(self, data):
        """Sends bytes; a server that closes while they are on the way (as it may for an
        oversized frame) is no error here: the test reads what it said."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            pass

    def send_frame(self, opcode, payload=b"", **kwargs):
        self.send_raw(frame(opcode, payload, **kwargs))

    def send_text(self, text):
        self.send_frame(self.TEXT, text.encode("utf-8"))

    def send_json(self, message):
        self.send_text(json.dumps(message))

    def send(self, type_, **fields):
        self.send_json({"v": 1, "type": type_, **fields})

    def close(self, code=1000):
        if not self.close_sent and not self.closed:
            try:
                self.send_frame(self.CLOSE, struct.pack("!H", code))
            except OSError:
                pass
            self.close_sent = True
        try:
            self.sock.close()
        except OSError:
            pass

    # receiving

    def _parse(self):
        while True:
            if len(self.buffer) < 2:
                return
            first, second = self.buffer[0], self.buffer[1]
            size, offset = second & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                size, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                size, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            if second & 0x80:
                raise AssertionError("the server sent a masked frame (RFC 6455 section 5.1)")
            if len(self.buffer) < offset + size:
                return
            payload = self.buffer[offset:offset + size]
            self.buffer = self.buffer[offset + size:]
            self._on_frame(bool(first & 0x80), first & 0x0F, payload)

    def _on_frame(self, fin, opcode, payload):
        if opcode == self.PING:
            if not self.close_sent:
                self.send_frame(self.PONG, payload)
        elif opcode == self.PONG:
            self.pongs.append(payload)
        elif opcode == self.CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.events.append(("close", code, payload[2:].decode("utf-8", "replace")))
            self.closed = True
            if not self.close_sent:
                try:
                    self.send_frame(self.CLOSE, payload[:2])
                except OSError:
                    pass
                self.close_sent = True
        elif opcode in (self.TEXT, self.BINARY):
            self._fragments = (opcode, [payload])
            if fin:
                self._finish_message()
        elif opcode == 0x0 and self._fragments is not None:
            self._fragments[1].append(payload)
            if fin:
                self._finish_message()
        else:
            raise AssertionError(f"unexpected frame opcode {opcode:#x}")

    def _finish_message(self):
        opcode, parts = self._fragments
        self._fragments = None
        data = b"".join(parts)
        if opcode == self.TEXT:
            self.events.append(("text", data.decode("utf-8")))
        else:
            self.events.append(("binary", data))

    def _read(self, timeout):
        """Reads what arrives within `timeout` (0: only what is there already): "data",
        "idle" (nothing came) or "eof"."""
        if self.closed and not self.buffer:
            return "eof"
        if self.sock.pending() == 0:
            readable, _, _ = select.select([self.sock], [], [], max(timeout, 0))
            if not readable:
                return "idle"
        try:
            data = self.sock.recv(262144)
        except (ssl.SSLWantReadError, socket.timeout):
            return "idle"
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            self.events.append(("eof", True))
            self.closed = True
            return "eof"
        if not data:
            self.events.append(("eof", False))
            self.closed = True
            return "eof"
        self.buffer += data
        self._parse()
        return "data"

    def drain(self):
        """Takes in whatever has arrived, without waiting."""
        for _ in range(4000):
            if self._read(0) != "data":
                return

    def next_event(self, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._read(remaining) == "eof" and not self.events:
                return ("eof", False)
        return self.events.popleft()

    def recv(self, timeout=IO_TIMEOUT):
        """The next JSON message; fails on a close, EOF, non-JSON or timeout."""
        event = self.next_event(timeout)
        if event is None:
            raise AssertionError(f"no message within {timeout} s")
        if event[0] != "text":
            raise AssertionError(f"expected a text message, got {event}")
        return json.loads(event[1])

    def wait_for(self, type_, timeout=IO_TIMEOUT, where=None):
        """The next message of `type_` (and matching `where`), keeping the others in seen."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            event = self.next_event(max(remaining, 0))
            if event is None:
                raise AssertionError(f"no {type_!r} within {timeout} s; saw "
                                     f"{[m.get('type') for m in self.seen[-20:]]}")
            if event[0] != "text":
                raise AssertionError(f"waiting for {type_!r}, got {event}; saw "
                                     f"{[m.get('type') for m in self.seen[-20:]]}")
            message = json.loads(event[1])
            if message.get("type") == type_ and (where is None or where(message)):
                return message
            self.seen.append(message)

    def wait_close(self, timeout=IO_TIMEOUT):
        """Skips messages until the close frame; returns (code, reason), or ("eof", reset)
        when TCP closed without one. Fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            event = self.next_event(max(remaining, 0))
            if event is None:
                raise AssertionError(f"socket not closed within {timeout} s")
            if event[0] == "close":
                return event[1], event[2]
            if event[0] == "eof":
                return "eof", event[1]
            if event[0] == "text":
                self.seen.append(json.loads(event[1]))

    def collect(self, predicate, count, timeout):
        """Up to `count` messages matching `predicate`, in arrival order, waiting at most
        `timeout`; the others go to seen."""
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            event = self.next_event(max(deadline - time.monotonic(), 0))
            if event is None or event[0] != "text":
                break
            message = json.loads(event[1])
            (found if predicate(message) else self.seen).append(message)
        return found

    def assert_open(self, testcase):
        """A ping round trip proves the socket still works."""
        token = secrets.randbelow(1 << 30)
        self.send("ping", t=token)
        pong = self.wait_for("pong")
        testcase.assertEqual(pong.get("t"), token)


# --- test base ----------------------------------------------------------------------------


class ServerTestCase(unittest.TestCase):
    """One server per class and an advisor "alice" created with the admin CLI."""

    settings = ()
    create_alice = True

    @classmethod
    def setUpClass(cls):
        if not PARLEY:
            raise unittest.SkipTest("PARLEY_BIN is not set")
        cls.server = Server(cls.settings)
        if cls.create_alice:
            cls.alice_password = new_password()
            try:
                cls.server.create_advisor("alice", cls.alice_password, "Alice Advisor")
            except Exception:
                cls.server.stop()
                raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        if not self.server.alive():
            self.fail(f"the server died (exit {self.server.proc.returncode}):\n"
                      f"{self.server.log()}")

    # assertions

    def assert_error(self, reply, status, code, names=None):
        """Status, JSON content type and {"error":{"code","message"}}; `names`: a field the
        message must name."""
        self.assertIsNotNone(reply, "no HTTP response")
        self.assertEqual(reply.status, status, reply)
        self.assertIn("application/json", reply.header("Content-Type") or "", reply)
        try:
            body = reply.json()
        except ValueError:
            self.fail(f"error body is not JSON: {reply}")
        self.assertIsInstance(body.get("error"), dict, reply)
        self.assertEqual(body["error"].get("code"), code, reply)
        self.assertIsInstance(body["error"].get("message"), str, reply)
        self.assertTrue(body["error"]["message"], reply)
        if names:
            self.assertIn(names, body["error"]["message"], reply)
        return body

    # helpers

    def browser(self, source_ip=None):
        return Browser(self.server, source_ip)

    def alice(self):
        browser = self.browser()
        reply = browser.login("alice", self.alice_password)
        self.assertEqual(reply.status, 200, reply)
        return browser

    def create_room(self, advisor, name="Consultation"):
        reply = advisor.post("/api/v1/rooms", {"name": name}, csrf=True)
        self.assertEqual(reply.status, 201, reply)
        return reply.json()

    def invite(self, advisor, room_id, **body):
        reply = advisor.post(f"/api/v1/rooms/{room_id}/invitations", body, csrf=True)
        self.assertEqual(reply.status, 201, reply)
        return reply.json()

    def join(self, token, name="Customer", browser=None):
        browser = browser or self.browser()
        reply = browser.post("/api/v1/join", {"token": token, "name": name})
        self.assertEqual(reply.status, 200, reply)
        return browser, reply.json()

    def ws(self, room_id=None, browser=None, **kwargs):
        path = f"/ws?room={room_id}" if room_id else "/ws"
        socket_ = WsClient(self.server, path, cookies=browser.cookies if browser else None,
                           **kwargs)
        self.addCleanup(socket_.close)
        return socket_

    def host_in_meeting(self, advisor, room_id):
        host = self.ws(room_id, advisor)
        host.send("join", name="Alice", media={"audio": False, "video": False})
        welcome = host.wait_for("welcome")
        self.assertEqual(welcome["you"]["role"], "host")
        return host, welcome

    def guest_in_lobby(self, host, room_id, token, name):
        browser, joined = self.join(token, name)
        guest = self.ws(room_id, browser)
        guest.send("join", name=name, media={"audio": False, "video": False})
        lobby = guest.wait_for("lobby")
        guest_id = joined["participant"]["id"]
        self.assertEqual(lobby["you"]["id"], guest_id)
        host.wait_for("lobby-update",
                      where=lambda m: any(p["id"] == guest_id for p in m["lobby"]))
        return guest, guest_id, browser

    def admitted_guest(self, host, room_id, token, name):
        guest, guest_id, browser = self.guest_in_lobby(host, room_id, token, name)
        host.send("admit", id=guest_id)
        welcome = guest.wait_for("welcome")
        self.assertEqual(welcome["you"]["id"], guest_id)
        self.assertEqual(welcome["you"]["role"], "guest")
        host.wait_for("participant-joined", where=lambda m: m["participant"]["id"] == guest_id)
        return guest, guest_id, browser


# --- plain HTTP behaviour -----------------------------------------------------------------


class HttpProtocolTest(ServerTestCase):
    def test_healthz(self):
        reply = self.browser().get("/healthz")
        self.assertEqual(reply.status, 200, reply)
        self.assertEqual(reply.json(), {"status": "ok"})

    def test_metrics_prometheus_text(self):
        reply = self.browser().get("/metrics")
        self.assertEqual(reply.status, 200, reply)
        self.assertIn("text/plain", reply.header("Content-Type"))
        self.assertIn("version=0.0.4", reply.header("Content-Type"))
        text = reply.body.decode()
        names = set(re.findall(r"^(parley_[a-z0-9_]+)(?:\{[^}]*\})? \S+$", text, re.M))
        self.assertGreaterEqual(len(names), 5, text[:2000])
        for name in names:
            self.assertIn(f"# TYPE {name} ", text)

    def test_security_headers_on_every_kind_of_response(self):
        browser = self.browser()
        for path in ("/", "/healthz", "/api/v1/setup", "/api/v1/no-such-thing", "/api/v1/rooms"):
            with self.subTest(path=path):
                reply = browser.get(path)
                hsts = reply.header("Strict-Transport-Security") or ""
                self.assertRegex(hsts, r"max-age=\d+", reply)
                self.assertGreaterEqual(int(re.search(r"max-age=(\d+)", hsts).group(1)), 86400)
                csp = reply.header("Content-Security-Policy") or ""
                self.assertIn("default-src 'self'", csp)
                self.assertIn("frame-ancestors 'none'", csp)
                self.assertEqual(reply.header("X-Frame-Options"), "DENY")
                self.assertEqual(reply.header("X-Content-Type-Options"), "nosniff")
                self.assertEqual(reply.header("Referrer-Policy"), "no-referrer")

    def test_unknown_route_is_json_404(self):
        browser = self.browser()
        for path in ("/api/v1/nothing-here", "/api/v2/rooms", "/api/v1/rooms/x/y/z",
                     "/api/v1/session/extra", "/no-such-page.php"):
            with self.subTest(path=path):
                self.assert_error(browser.get(path), 404, "not_found")

    def test_wrong_method_is_405_with_allow(self):
        browser = self.browser()
        cases = [("DELETE", "/api/v1/rooms", {"GET", "POST"}),
                 ("PUT", "/api/v1/join", {"POST"}),
                 ("GET", "/api/v1/join", {"POST"}),
                 ("POST", "/api/v1/ice-servers", {"GET"}),
                 ("PATCH", "/api/v1/session", {"GET", "POST", "DELETE"}),
                 ("POST", "/healthz", {"GET"})]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                reply = browser.request(method, path, body=b"{}" if method != "GET" else None)
                self.assert_error(reply, 405, "method_not_allowed")
                allow = {m.strip() for m in (reply.header("Allow") or "").split(",")}
                self.assertTrue(allowed <= allow, f"Allow: {reply.header('Allow')!r}")
                self.assertNotIn(method, allow)

    def test_bad_json(self):
        browser = self.browser()
        for body in (b"{not json", b"", b"{\"username\": \"alice\",}", b"\xff\xfe{}",
                     b"{\"username\": \"al\xffice\", \"password\": \"x\"}"):
            with self.subTest(body=body):
                reply = browser.request("POST", "/api/v1/session", body=body,
                                        headers={"Content-Type": "application/json"})
                self.assert_error(reply, 400, "bad_json")

    def test_missing_or_wrong_typed_fields_name_the_field(self):
        browser = self.browser()
        cases = [("/api/v1/session", {"username": "alice"}, "password"),
                 ("/api/v1/session", {"password": "x"}, "username"),
                 ("/api/v1/session", {"username": 7, "password": "x"}, "username"),
                 ("/api/v1/session", {"username": "alice", "password": ["x"]}, "password"),
                 ("/api/v1/join", {"name": "Customer"}, "token"),
                 ("/api/v1/join", {"token": 12345, "name": "Customer"}, "token"),
                 ("/api/v1/client-errors", {"stack": "x"}, "message"),
                 ("/api/v1/setup", {"username": "x", "password": "y", "displayName": "z"},
                  "token")]
        for path, body, field in cases:
            with self.subTest(path=path, body=body):
                self.assert_error(browser.post(path, body), 400, "bad_request", names=field)
        # A JSON value that is not an object is a bad request, not bad JSON.
        self.assert_error(browser.post("/api/v1/session", [1, 2]), 400, "bad_request")

    def test_wrong_typed_fields_of_authenticated_writes(self):
        alice = self.alice()
        self.assert_error(alice.post("/api/v1/rooms", {"name": 5}, csrf=True), 400,
                          "bad_request", names="name")
        self.assert_error(alice.post("/api/v1/rooms", {}, csrf=True), 400, "bad_request",
                          names="name")
        self.assert_error(alice.post("/api/v1/rooms", {"name": "x" * 101}, csrf=True), 400,
                          "bad_request", names="name")
        room = self.create_room(alice)
        path = f"/api/v1/rooms/{room['id']}/invitations"
        self.assert_error(alice.post(path, {"expiresInSeconds": "10"}, csrf=True), 400,
                          "bad_request", names="expiresInSeconds")
        self.assert_error(alice.post(path, {"expiresInSeconds": -5}, csrf=True), 400,
                          "bad_request", names="expiresInSeconds")
        self.assert_error(alice.post(path, {"singleUse": "yes"}, csrf=True), 400,
                          "bad_request", names="singleUse")

    def test_oversized_body_is_413(self):
        limit = 1048576  # web.max_body_bytes default
        body = b"{\"username\":\"" + b"a" * (limit + 1024) + b"\",\"password\":\"x\"}"
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: localhost:{self.server.https_port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        self.assert_error(raw_https(self.server, head + body), 413, "body_too_large")

    def test_declared_oversized_body_is_refused_before_it_arrives(self):
        head = (f"POST /api/v1/session HTTP/1.1\r\nHost: localhost:{self.server.https_port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000000000\r\n"
                "Connection: close\r\n\r\n{").encode()
        started = time.monotonic()
        self.assert_error(raw_https(self.server, head), 413, "body_too_large")
        self.assertLess(time.monotonic() - started, 5)

    def test_chunked_oversized_body_is_413(self):
        chunk = b"a" * 65536
        body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
        head = (f"POST /api/v1/client-errors HTTP/1.1\r\nHost: localhost:{self.server.https_port}"
                "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n").encode()
        self.assert_error(raw_https(self.server, head + body, source_ip="127.0.0.91"), 413,
                          "body_too_large")

    def test_http_port_redirects_to_https(self):
        self.assertIsNotNone(self.server.http_port, self.server.log())
        # The target goes to our public origin whatever Host says (no open redirect).
        for host in ("localhost", "evil.example"):
            with self.subTest(host=host):
                connection = http.client.HTTPConnection("127.0.0.1", self.server.http_port,
                                                        timeout=IO_TIMEOUT)
                try:
                    connection.request("GET", "/room/abc?x=1", headers={"Host": host})
                    response = connection.getresponse()
                    response.read()
                finally:
                    connection.close()
                self.assertEqual(response.status, 301)
                self.assertEqual(response.getheader("Location"),
                                 self.server.origin + "/room/abc?x=1")
        for target in (b"http://evil.example/x", b"//evil.example/x", b"/\\evil.example"):
            with self.subTest(target=target):
                raw = socket.create_connection(("127.0.0.1", self.server.http_port),
                                               timeout=IO_TIMEOUT)
                try:
                    raw.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: evil.example\r\n"
                                b"Connection: close\r\n\r\n")
                    response = http.client.HTTPResponse(raw)
                    response.begin()
                    location = response.getheader("Location") or ""
                    response.read()
                finally:
                    raw.close()
                if response.status in (301, 302, 303, 307, 308):
                    self.assertTrue(location.startswith(self.server.origin + "/"), location)

    def test_client_errors_accepted_then_rate_limited(self):
        browser = self.browser(source_ip="127.0.0.77")
        report = {"message": "TypeError: x is undefined", "url": "https://localhost/join#t=SECRET",
                  "stack": "at f (app.js:1:2)"}
        first = browser.post("/api/v1/client-errors", report)
        self.assertEqual(first.status, 204, first)
        self.assertEqual(first.body, b"")
        statuses = [browser.post("/api/v1/client-errors", report) for _ in range(30)]
        limited = [reply for reply in statuses if reply.status == 429]
        self.assertTrue(limited, [r.status for r in statuses])
        self.assert_error(limited[0], 429, "too_many_requests")
        self.assertRegex(limited[0].header("Retry-After") or "", r"^\d+$")
        # Another address is not affected.
        self.assertEqual(self.browser(source_ip="127.0.0.78")
                         .post("/api/v1/client-errors", report).status, 204)
        # The token in the page address never reaches the log.
        self.assertFalse(self.server.find_log("SECRET"), self.server.log())

    def test_server_survives_garbage_requests(self):
        garbage = [b"\x16\x03\x01\x00\x00\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                   b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                   b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                   b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Length: 5\r\n\r\n0\r\n\r\n"]
        for request in garbage:
            with self.subTest(request=request[:40]):
                reply = raw_https(self.server, request)
                if reply is not None:
                    self.assertGreaterEqual(reply.status, 400, reply)
                    self.assertLess(reply.status, 500, reply)
        self.assertEqual(self.browser().get("/healthz").status, 200)

    def test_oversized_request_head_is_431(self):
        request = (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: " + b"a" * 40000 +
                   b"\r\nConnection: close\r\n\r\n")  # web.max_header_bytes = 16384
        reply = raw_https(self.server, request)
        self.assertIsNotNone(reply, "closed without an answer")
        self.assertEqual(reply.status, 431, reply)

    def test_keep_alive_serves_several_requests(self):
        connection = http.client.HTTPSConnection("127.0.0.1", self.server.https_port,
                                                 timeout=IO_TIMEOUT, context=tls_context())
        try:
            for path in ("/healthz", "/api/v1/setup", "/api/v1/nope", "/healthz"):
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                self.assertIn(response.status, (200, 404))
        finally:
            connection.close()


class RequestRateTest(ServerTestCase):
    """web.requests_per_second_per_ip: 429 too_many_requests beyond the burst, per IP."""

    settings = ("web.requests_per_second_per_ip=1", "web.request_burst_per_ip=5")
    create_alice = False

    def test_per_ip_request_rate(self):
        browser = self.browser("127.0.3.1")
        replies = [browser.get("/api/v1/setup") for _ in range(12)]
        self.assertEqual(replies[0].status, 200, replies[0])
        limited = [reply for reply in replies if reply.status == 429]
        self.assertTrue(limited, [reply.status for reply in replies])
        self.assertLessEqual(12 - len(limited), 7, [reply.status for reply in replies])
        self.assert_error(limited[0], 429, "too_many_requests")
        self.assertEqual(self.browser("127.0.3.2").get("/api/v1/setup").status, 200)


# --- static files -------------------------------------------------------------------------


def client_files():
    """Every file under client/ as bytes: the only 200 bodies a static path may return."""
    files = {}
    for root, _, names in os.walk(CLIENT_DIR):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[path] = f.read()
    return files


class StaticFilesTest(ServerTestCase):
    create_alice = False

    def test_app_routes_serve_index_html(self):
        browser = self.browser()
        index = browser.get("/")
        self.assertEqual(index.status, 200, index)
        self.assertIn("text/html", index.header("Content-Type"))
        for path in ("/setup", "/join", "/room/abc123", "/check"):
            with self.subTest(path=path):
                reply = browser.get(path)
                self.assertEqual(reply.status, 200, reply)
                self.assertEqual(reply.body, index.body)

    def test_path_traversal_never_leaves_client_dir(self):
        allowed = set(client_files().values())
        targets = [
            "/../../../../../../etc/passwd",
            "/assets/../../etc/passwd",
            "/assets/../../../../../../../etc/passwd",
            "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/assets/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
            "/assets/.%2e/.%2e/.%2e/.%2e/.%2e/etc/passwd",
            "/assets/%252e%252e/%252e%252e/%252e%252e/%252e%252e/etc/passwd",
            "/assets/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            "/assets/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            "/assets/%2fetc%2fpasswd",
            "/assets//etc/passwd",
            "//etc/passwd",
            "/assets/..\\..\\..\\..\\..\\..\\etc\\passwd",
            "/assets/..%5c..%5c..%5c..%5c..%5c..%5cetc%5cpasswd",
            "/assets/....//....//....//....//etc/passwd",
            "/assets/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
            "/assets/%00/../../../../etc/passwd",
            "/assets/..%00/..%00/..%00/etc/passwd",
            "/assets/x.js%00.html",
            "/room/../../../../etc/passwd",
            "/join/..%2f..%2f..%2f..%2fetc%2fpasswd",
            "/assets/../CMakeLists.txt",
            "/assets/../../CMakeLists.txt",
            "/assets/%2e%2e/%2e%2e/CMakeLists.txt",
            "/assets/..%2f..%2fCMakeLists.txt",
            "/assets/../../src/api/platform.cpp",
            "/assets/../../parley-data/token-key",
            "/assets/~/../../etc/passwd",
            "/assets/.",
            "/assets/..",
            "/assets/",
        ]
        raw_targets = [b"/assets/..\x00/..\x00/etc/passwd", b"/assets/\x00", b"/\x00",
                       b"/assets/../../etc/passwd\x00.js", b"/assets/\\..\\..\\etc\\passwd",
                       b"/assets/\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/etc/passwd"]
        for target in [t.encode() for t in targets] + raw_targets:
            with self.subTest(target=target):
                request = (b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
                           b"Connection: close\r\n\r\n")
                reply = raw_https(self.server, request)
                if reply is None:
                    continue  # closed without an answer: nothing leaked
                self.assertNotIn(b"root:", reply.body, reply)
                self.assertNotIn(b"cmake_minimum_required", reply.body, reply)
                self.assertLess(reply.status, 500, reply)
                if reply.status == 200:
                    self.assertIn(reply.body, allowed,
                                  f"{target!r} returned a body that is no file of client/")
        self.assertEqual(self.browser().get("/healthz").status, 200)

    def test_asset_etag_and_gzip(self):
        assets = sorted(path for path in client_files()
                        if os.path.dirname(path).startswith(os.path.join(CLIENT_DIR, "assets")))
        if not assets:
            self.skipTest("client/assets is empty in this tree")
        relative = os.path.relpath(assets[0], CLIENT_DIR).replace(os.sep, "/")
        browser = self.browser()
        first = browser.get("/" + relative)
        self.assertEqual(first.status, 200, first)
        etag = first.header("ETag")
        self.assertTrue(etag, first.headers)
        again = browser.get("/" + relative, headers={"If-None-Match": etag})
        self.assertEqual(again.status, 304, again)
        self.assertEqual(again.body, b"")
        # The largest asset compresses; the decompressed body is the file.
        largest = max(assets, key=os.path.getsize)
        relative = os.path.relpath(largest, CLIENT_DIR).replace(os.sep, "/")
        compressed = browser.get("/" + relative, headers={"Accept-Encoding": "gzip"})
        self.assertEqual(compressed.status, 200, compressed)
        self.assertEqual(compressed.header("Content-Encoding"), "gzip")
        self.assertIn("accept-encoding", (compressed.header("Vary") or "").lower())
        with open(largest, "rb") as f:
            self.assertEqual(gzip.decompress(compressed.body), f.read())


# --- accounts, sessions, CSRF, ownership --------------------------------------------------


class AuthTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bob_password = new_password()
        cls.server.create_advisor("bob", cls.bob_password, "Bob Advisor")

    def test_login_sets_a_strict_session_cookie_and_returns_csrf(self):
        browser = self.browser()
        reply = browser.login("alice", self.alice_password)
        self.assertEqual(reply.status, 200, reply)
        body = reply.json()
        self.assertEqual(body["advisor"]["username"], "alice")
        self.assertEqual(body["advisor"]["displayName"], "Alice Advisor")
        self.assertIn("id", body["advisor"])
        self.assertIsInstance(body["csrfToken"], str)
        self.assertGreaterEqual(len(body["csrfToken"]), 16)
        cookies = [parse_set_cookie(v) for v in reply.header_all("Set-Cookie")]
        session = [c for c in cookies if c[0] == "parley_session"]
        self.assertEqual(len(session), 1, reply.headers)
        _, value, attributes = session[0]
        self.assertGreaterEqual(len(value), 16)
        self.assertIn("httponly", attributes)
        self.assertIn("secure", attributes)
        self.assertEqual(str(attributes.get("samesite")).lower(), "strict")
        self.assertEqual(attributes.get("path"), "/")
        again = browser.get("/api/v1/session")
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["advisor"]["username"], "alice")
        # The password never reaches the log.
        self.assertFalse(self.server.find_log(re.escape(self.alice_password)))

    def test_wrong_password_and_unknown_user_are_401(self):
        self.assert_error(self.browser("127.0.0.31").login("alice", "wrong-password-123"), 401,
                          "invalid_credentials")
        self.assert_error(self.browser("127.0.0.32").login("nobody", "wrong-password-123"), 401,
                          "invalid_credentials")

    def test_no_session(self):
        browser = self.browser()
        self.assert_error(browser.get("/api/v1/session"), 401, "not_authenticated")
        self.assert_error(browser.get("/api/v1/rooms"), 401, "not_authenticated")
        browser.cookies["parley_session"] = "forged-session-value"
        self.assert_error(browser.get("/api/v1/rooms"), 401, "not_authenticated")
        self.assert_error(browser.post("/api/v1/rooms", {"name": "x"}), 401, "not_authenticated")

    def test_logout_clears_the_cookie_and_ends_the_session(self):
        browser = self.alice()
        old_cookie = browser.cookies["parley_session"]
        self.assert_error(browser.request("DELETE", "/api/v1/session"), 403, "csrf_failed")
        reply = browser.request("DELETE", "/api/v1/session", csrf=True)
        self.assertEqual(reply.status, 204, reply)
        cleared = [parse_set_cookie(v) for v in reply.header_all("Set-Cookie")]
        self.assertTrue(any(name == "parley_session"
                            and (value == "" or attrs.get("max-age") == "0")
                            for name, value, attrs in cleared), reply.headers)
        stale = self.browser()
        stale.cookies["parley_session"] = old_cookie
        self.assert_error(stale.get("/api/v1/session"), 401, "not_authenticated")

    def test_csrf_on_room_creation(self):
        browser = self.alice()
        path = "/api/v1/rooms"
        self.assert_error(browser.post(path, {"name": "No token"}), 403, "csrf_failed")
        self.assert_error(browser.post(path, {"name": "Wrong token"},
                                       headers={"X-CSRF-Token": "0" * len(browser.csrf)}),
                          403, "csrf_failed")
        self.assert_error(browser.post(path, {"name": "Empty token"},
                                       headers={"X-CSRF-Token": ""}), 403, "csrf_failed")
        # Bob's token does not work with Alice's session.
        bob = self.browser()
        self.assertEqual(bob.login("bob", self.bob_password).status, 200)
        self.assert_error(browser.post(path, {"name": "Bob's token"},
                                       headers={"X-CSRF-Token": bob.csrf}), 403, "csrf_failed")
        self.assert_error(browser.post(path, {"name": "Foreign"}, csrf=True,
                                       origin=FOREIGN_ORIGIN), 403, "bad_origin")
        self.assert_error(browser.post(path, {"name": "Foreign"}, csrf=True,
                                       origin="null"), 403, "bad_origin")
        self.assert_error(browser.post(path, {"name": "Other port"}, csrf=True,
                                       origin=self.server.origin + "0"), 403, "bad_origin")
        created = browser.post(path, {"name": "With token"}, csrf=True)
        self.assertEqual(created.status, 201, created)
        room = created.json()
        self.assertEqual(room["name"], "With token")
        self.assertRegex(room["id"], r"^[A-Za-z0-9_-]{22}$")
        self.assertRegex(room["createdAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(room["live"], {"participants": 0, "waiting": 0})
        same_origin = browser.post(path, {"name": "Same origin"}, csrf=True,
                                   origin=self.server.origin)
        self.assertEqual(same_origin.status, 201, same_origin)
        listed = browser.get(path)
        self.assertEqual(listed.status, 200, listed)
        names = [r["name"] for r in listed.json()["rooms"]]
        self.assertEqual(names[:2], ["Same origin", "With token"])  # newest first
        for name in ("No token", "Wrong token", "Empty token", "Bob's token", "Foreign"):
            self.assertNotIn(name, names)

    def test_login_with_foreign_origin_is_refused(self):
        browser = self.browser("127.0.0.33")
        reply = browser.post("/api/v1/session", {"username": "alice",
                                                 "password": self.alice_password},
                             origin=FOREIGN_ORIGIN)
        self.assert_error(reply, 403, "bad_origin")
        self.assertNotIn("parley_session", browser.cookies)

    def test_rooms_of_another_advisor_are_forbidden(self):
        alice = self.alice()
        room = self.create_room(alice, "Alice's room")
        bob = self.browser()
        self.assertEqual(bob.login("bob", self.bob_password).status, 200)
        base = f"/api/v1/rooms/{room['id']}"
        self.assert_error(bob.get(base), 403, "forbidden")
        self.assert_error(bob.get(base + "/audit"), 403, "forbidden")
        self.assert_error(bob.post(base + "/invitations", {}, csrf=True), 403, "forbidden")
        self.assertNotIn(room["id"], [r["id"] for r in bob.get("/api/v1/rooms").json()["rooms"]])
        with self.assertRaises(UpgradeRefused) as refused:
            self.ws(room["id"], bob)
        self.assertEqual(refused.exception.reply.status, 403)
        self.assert_error(bob.get("/api/v1/rooms/AAAAAAAAAAAAAAAAAAAAAA"), 404, "room_not_found")
        self.assertEqual(alice.get(base).status, 200)
        audit = alice.get(base + "/audit")
        self.assertEqual(audit.status, 200, audit)
        self.assertTrue(audit.json()["events"])

    def test_ice_servers(self):
        self.assert_error(self.browser().get("/api/v1/ice-servers"), 401, "not_authenticated")
        alice = self.alice()
        before = int(time.time())
        reply = alice.get("/api/v1/ice-servers")
        after = int(time.time())
        self.assertEqual(reply.status, 200, reply)
        body = reply.json()
        ttl = body["ttlSeconds"]
        self.assertEqual(ttl, 43200)
        urls = [url for server in body["iceServers"] for url in server["urls"]]
        stun, tls = self.server.stun_port, self.server.tls_port
        self.assertIn(f"turn:localhost:{stun}?transport=udp", urls)
        self.assertIn(f"turn:localhost:{stun}?transport=tcp", urls)
        self.assertIn(f"turns:localhost:{tls}?transport=tcp", urls)
        self.assertIn(f"stun:localhost:{stun}", urls)
        # TURN over TLS on the HTTPS port too, before 5349: it passes where only 443 is open.
        https_turn = f"turns:localhost:{self.server.https_port}?transport=tcp"
        self.assertIn(https_turn, urls)
        self.assertLess(urls.index(https_turn), urls.index(f"turns:localhost:{tls}?transport=tcp"))
        turn = [s for s in body["iceServers"] if any(u.startswith("turn") for u in s["urls"])]
        self.assertEqual(len(turn), 1, body)
        username, credential = turn[0]["username"], turn[0]["credential"]
        expiry, _, user = username.partition(":")
        self.assertTrue(user, username)
        self.assertGreaterEqual(int(expiry), before + ttl - 2)
        self.assertLessEqual(int(expiry), after + ttl + 2)
        with open(os.path.join(self.server.data_dir, "turn-secret"), encoding="ascii") as f:
            secret = f.read().strip()
        expected = base64.b64encode(hmac.new(secret.encode(), username.encode(),
                                             hashlib.sha1).digest()).decode()
        self.assertEqual(credential, expected)
        # Fresh per request and per participant: a guest gets its own user name.
        room = self.create_room(alice)
        invitation = self.invite(alice, room["id"])
        guest, joined = self.join(invitation["token"])
        guest_reply = guest.get("/api/v1/ice-servers")
        self.assertEqual(guest_reply.status, 200, guest_reply)
        guest_turn = [s for s in guest_reply.json()["iceServers"] if "username" in s][0]
        self.assertNotEqual(guest_turn["username"].partition(":")[2], user)


class LoginThrottleTest(ServerTestCase):
    """auth.login_max_failures failures per account or per IP lock further attempts (429
    too_many_attempts with Retry-After), even with the right password. Client IPs are played
    with source addresses from 127.0.0.0/8."""

    # Eight worker threads, so that concurrent logins really run in parallel.
    settings = ("auth.login_max_failures=3", "auth.login_window_seconds=300",
                "auth.login_lockout_seconds=60", "server.threads=8")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.carol_password = new_password()
        cls.server.create_advisor("carol", cls.carol_password)
        cls.dave_password = new_password()
        cls.server.create_advisor("dave", cls.dave_password)

    def assert_locked(self, reply):
        self.assert_error(reply, 429, "too_many_attempts")
        retry = reply.header("Retry-After")
        self.assertRegex(retry or "", r"^\d+$", reply.headers)
        self.assertGreaterEqual(int(retry), 1)
        self.assertLessEqual(int(retry), 60)

    def test_per_account(self):
        # Three failures from three different addresses lock the account itself.
        for n in range(3):
            self.assert_error(self.browser(f"127.0.1.{n + 1}").login("carol", "wrong-pass-123"),
                              401, "invalid_credentials")
        browser = self.browser("127.0.1.10")
        reply = browser.login("carol", self.carol_password)
        self.assert_locked(reply)
        self.assertNotIn("parley_session", browser.cookies)
        self.assert_locked(self.browser("127.0.1.11").login("carol", "wrong-pass-123"))
        # The name is matched case-insensitively, so case games do not reset the counter.
        self.assert_locked(self.browser("127.0.1.12").login("CAROL", self.carol_password))
        # Other accounts from fresh addresses are not affected.
        self.assertEqual(self.browser("127.0.1.13").login("dave", self.dave_password).status, 200)

    def test_concurrent_guesses_do_not_exceed_the_limit(self):
        # Guesses sent at once must not all pass the check before the first failure counts:
        # at most auth.login_max_failures wrong passwords get verified, the rest 429.
        password = new_password()
        self.server.create_advisor("victim", password)
        replies = concurrently(24, lambda n: self.browser(f"127.0.4.{n + 1}").login(
            "victim", f"guess-{n}-0123456789"))
        statuses = [reply.status for reply in replies]
        self.assertEqual(len(statuses), 24)
        self.assertEqual(set(statuses) - {401, 429}, set(), statuses)
        self.assertLessEqual(statuses.count(401), 3,
                             f"{statuses.count(401)} wrong passwords were checked with "
                             f"auth.login_max_failures = 3: {sorted(statuses)}")

    def test_per_ip(self):
        # Three failures from one address on three different (unknown) accounts lock the IP.
        ip = "127.0.2.1"
        for n in range(3):
            self.assert_error(self.browser(ip).login(f"ghost{n}", "wrong-pass-123"), 401,
                              "invalid_credentials")
        self.assert_locked(self.browser(ip).login("alice", self.alice_password))
        # Alice herself is fine from elsewhere.
        self.assertEqual(self.browser("127.0.2.2").login("alice", self.alice_password).status,
                         200)


# --- invitations --------------------------------------------------------------------------


class InvitationTest(ServerTestCase):
    settings = ("server.threads=8",)  # concurrent joins really run in parallel

    def setUp(self):
        self.advisor = self.alice()
        self.room = self.create_room(self.advisor, "Invitations")

    def test_invitation_shape(self):
        before = int(time.time())
        invitation = self.invite(self.advisor, self.room["id"], expiresInSeconds=3600,
                                 singleUse=True)
        self.assertTrue(invitation["url"].startswith(self.server.origin + "/join#t="),
                        invitation)
        self.assertEqual(invitation["url"].split("#t=", 1)[1], invitation["token"])
        self.assertTrue(invitation["singleUse"])
        self.assertRegex(invitation["expiresAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        expires = calendar.timegm(time.strptime(invitation["expiresAt"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertAlmostEqual(expires, before + 3600, delta=5)

    def test_join_returns_room_and_guest_cookie(self):
        invitation = self.invite(self.advisor, self.room["id"])
        browser, body = self.join(invitation["token"], "  Erika Muster  ")
        self.assertEqual(body["room"], {"id": self.room["id"], "name": "Invitations"})
        self.assertEqual(body["participant"]["role"], "guest")
        self.assertEqual(body["participant"]["name"], "Erika Muster")
        self.assertTrue(body["participant"]["id"])
        self.assertIn("parley_guest", browser.cookies)

    def test_guest_cookie_attributes(self):
        invitation = self.invite(self.advisor, self.room["id"])
        reply = self.browser().post("/api/v1/join", {"token": invitation["token"], "name": "G"})
        self.assertEqual(reply.status, 200, reply)
        guest = [parse_set_cookie(v) for v in reply.header_all("Set-Cookie")]
        guest = [c for c in guest if c[0] == "parley_guest"]
        self.assertEqual(len(guest), 1, reply.headers)
        attributes = guest[0][2]
        self.assertIn("httponly", attributes)
        self.assertIn("secure", attributes)
        self.assertEqual(str(attributes.get("samesite")).lower(), "strict")
        self.assertEqual(attributes.get("path"), "/")

    def test_unicode_names_count_characters(self):
        invitation = self.invite(self.advisor, self.room["id"])
        for name in ("Zoë Ünal 😀", "\u00e9" * 60, "\U0001F600" * 60):
            with self.subTest(name=name[:10]):
                _, body = self.join(invitation["token"], name)
                self.assertEqual(body["participant"]["name"], name)
        reply = self.browser().post("/api/v1/join", {"token": invitation["token"],
                                                     "name": "\U0001F600" * 61})
        self.assert_error(reply, 400, "bad_request", names="name")

    def test_missing_token(self):
        self.assert_error(self.browser().post("/api/v1/join", {"name": "G"}), 400,
                          "bad_request", names="token")

    def test_bad_name(self):
        invitation = self.invite(self.advisor, self.room["id"])
        for name in ("", "   ", "x" * 61, "a\u0000b", "line\nbreak", 42):
            with self.subTest(name=name):
                reply = self.browser().post("/api/v1/join",
                                            {"token": invitation["token"], "name": name})
                self.assert_error(reply, 400, "bad_request", names="name")

    def test_tampered_token(self):
        token = self.invite(self.advisor, self.room["id"])["token"]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        tampered = []
        for position in (0, len(token) // 3, len(token) // 2, len(token) - 2):
            replacement = alphabet[(alphabet.index(token[position]) + 1) % 64] \
                if token[position] in alphabet else "A"
            tampered.append(token[:position] + replacement + token[position + 1:])
        tampered += [token[:-4], token + "AAAA", "not-a-token", "a.b.c", ".", token.upper()]
        for bad in tampered:
            with self.subTest(token=bad):
                reply = self.browser().post("/api/v1/join", {"token": bad, "name": "G"})
                self.assert_error(reply, 401, "invalid_token")
        # A session cookie value or a setup token is no invitation either.
        setup_token = "x" if not self.server.setup_link else self.server.setup_link.split("#t=")[1]
        self.assert_error(self.browser().post("/api/v1/join", {"token": setup_token, "name": "G"}),
                          401, "invalid_token")

    def test_expired_token(self):
        invitation = self.invite(self.advisor, self.room["id"], expiresInSeconds=1)
        time.sleep(2.2)
        reply = self.browser().post("/api/v1/join", {"token": invitation["token"], "name": "G"})
        self.assert_error(reply, 401, "token_expired")
        # Over the WebSocket too.
        socket_ = self.ws(self.room["id"])
        socket_.send("hello", token=invitation["token"], name="G")
        self.assertEqual(socket_.wait_close()[0], 4401)

    def test_single_use(self):
        invitation = self.invite(self.advisor, self.room["id"], singleUse=True)
        first, body = self.join(invitation["token"], "First")
        # A different client (no cookie) is refused.
        self.assert_error(self.browser().post("/api/v1/join",
                                              {"token": invitation["token"], "name": "Second"}),
                          409, "invitation_used")
        # The same guest again (a reload) keeps its identity.
        again = first.post("/api/v1/join", {"token": invitation["token"], "name": "First"})
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.json()["participant"]["id"], body["participant"]["id"])
        # And a hello with the spent token is refused.
        socket_ = self.ws(self.room["id"])
        socket_.send("hello", token=invitation["token"], name="Third")
        self.assertEqual(socket_.wait_close()[0], 4401)

    def test_single_use_under_concurrency(self):
        invitation = self.invite(self.advisor, self.room["id"], singleUse=True)
        replies = concurrently(12, lambda n: self.browser().post(
            "/api/v1/join", {"token": invitation["token"], "name": f"Racer {n}"}))
        statuses = sorted(reply.status for reply in replies)
        self.assertEqual(statuses, [200] + [409] * 11)
        # And over the WebSocket: one hello wins.
        invitation = self.invite(self.advisor, self.room["id"], singleUse=True)
        sockets = [self.ws(self.room["id"]) for _ in range(6)]
        for socket_ in sockets:
            socket_.send("hello", token=invitation["token"], name="Racer")
        for socket_ in sockets:
            socket_.send("join")
        outcomes = []
        for socket_ in sockets:
            event = socket_.next_event()
            outcomes.append(json.loads(event[1])["type"] if event and event[0] == "text"
                            else event)
        self.assertEqual(outcomes.count("lobby"), 1, outcomes)

    def test_reusable_invitation_gives_each_guest_an_identity(self):
        invitation = self.invite(self.advisor, self.room["id"])
        _, one = self.join(invitation["token"], "One")
        _, two = self.join(invitation["token"], "Two")
        self.assertNotEqual(one["participant"]["id"], two["participant"]["id"])

    def test_token_of_another_room_is_refused_on_the_websocket(self):
        other = self.create_room(self.advisor, "Other room")
        token = self.invite(self.advisor, self.room["id"])["token"]
        # By hello: the token is for room A, the socket asks for room B.
        socket_ = self.ws(other["id"])
        socket_.send("hello", token=token, name="Sneaky")
        self.assertEqual(socket_.wait_close()[0], 4401)
        self.assertNotIn("welcome", [m["type"] for m in socket_.seen])
        self.assertNotIn("lobby", [m["type"] for m in socket_.seen])
        # By cookie: the guest cookie of room A does not open room B.
        guest, _ = self.join(token, "Sneaky")
        with self.assertRaises(UpgradeRefused) as refused:
            self.ws(other["id"], guest)
        self.assertEqual(refused.exception.reply.status, 403)
        # Its own room still opens.
        own = self.ws(self.room["id"], guest)
        own.send("join")
        own.wait_for("lobby")

    def test_join_with_foreign_origin(self):
        token = self.invite(self.advisor, self.room["id"])["token"]
        reply = self.browser().post("/api/v1/join", {"token": token, "name": "G"},
                                    origin=FOREIGN_ORIGIN)
        self.assert_error(reply, 403, "bad_origin")


# --- signaling: protocol hygiene ----------------------------------------------------------


class WebSocketProtocolTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A socket that never says hello must be closed with 4401 after 10 s. It runs while
        # the other tests do.
        cls.idle_result = {}
        cls.idle_socket = WsClient(cls.server, "/ws")
        opened = time.monotonic()

        def watch():
            try:
                cls.idle_result["close"] = cls.idle_socket.wait_close(20)
            except AssertionError as error:
                cls.idle_result["error"] = str(error)
            cls.idle_result["after"] = time.monotonic() - opened

        cls.idle_thread = threading.Thread(target=watch, daemon=True)
        cls.idle_thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.idle_socket.close()
        super().tearDownClass()

    def setUp(self):
        self.advisor = self.alice()
        self.room = self.create_room(self.advisor, "Protocol")

    def guest_socket(self):
        """A guest authenticated by cookie that has not joined yet."""
        invitation = self.invite(self.advisor, self.room["id"])
        browser, _ = self.join(invitation["token"])
        return self.ws(self.room["id"], browser)

    def test_no_hello_within_the_timeout_closes_4401(self):
        self.idle_thread.join(25)
        self.assertNotIn("error", self.idle_result)
        self.assertEqual(self.idle_result["close"][0], 4401, self.idle_result)
        self.assertGreaterEqual(self.idle_result["after"], 9)
        self.assertLessEqual(self.idle_result["after"], 13)

    def test_bad_hello_closes_4401(self):
        for hello in ({"v": 1, "type": "hello", "token": "garbage", "name": "X"},
                      {"v": 1, "type": "join"},
                      {"v": 1, "type": "chat", "text": "hi"}):
            with self.subTest(hello=hello):
                socket_ = self.ws(self.room["id"])
                socket_.send_json(hello)
                self.assertEqual(socket_.wait_close()[0], 4401)

    def test_hello_with_a_good_token_then_lobby(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        token = self.invite(self.advisor, self.room["id"])["token"]
        socket_ = self.ws(self.room["id"])
        socket_.send("hello", token=token, name="Loader")
        socket_.send("join", media={"audio": False, "video": False})
        lobby = socket_.wait_for("lobby")
        self.assertEqual(lobby["you"]["name"], "Loader")
        self.assertEqual(lobby["room"]["id"], self.room["id"])
        host.wait_for("lobby-update",
                      where=lambda m: any(p["id"] == lobby["you"]["id"] for p in m["lobby"]))

    def test_foreign_origin_upgrade_is_403(self):
        with self.assertRaises(UpgradeRefused) as refused:
            self.ws(self.room["id"], self.advisor, origin=FOREIGN_ORIGIN)
        self.assertEqual(refused.exception.reply.status, 403)
        with self.assertRaises(UpgradeRefused) as refused:
            self.ws(self.room["id"], origin=FOREIGN_ORIGIN)
        self.assertEqual(refused.exception.reply.status, 403)
        # Our own origin is fine.
        socket_ = self.ws(self.room["id"], self.advisor, origin=self.server.origin)
        socket_.send("join")
        self.assertEqual(socket_.wait_for("welcome")["you"]["role"], "host")

    def test_ping_pong(self):
        socket_ = self.guest_socket()
        socket_.send("ping", t=12345)
        self.assertEqual(socket_.wait_for("pong").get("t"), 12345)
        socket_.send("ping")
        self.assertIn("type", socket_.wait_for("pong"))
        # RFC 6455 section 5.5.2: a ping frame is answered with a pong of the same payload.
        socket_.send_frame(WsClient.PING, b"are-you-there")
        deadline = time.monotonic() + IO_TIMEOUT
        while not socket_.pongs and time.monotonic() < deadline:
            socket_._read(0.2)
        self.assertEqual(socket_.pongs, [b"are-you-there"])

    def test_bad_json_frame_gets_an_error_and_stays_open(self):
        socket_ = self.guest_socket()
        for text in ("{not json", "[1,2,3]", "\"just a string\"", "", "null"):
            with self.subTest(text=text):
                socket_.send_text(text)
                error = socket_.wait_for("error")
                self.assertIsInstance(error.get("code"), str)
                self.assertTrue(error["code"])
                self.assertIsInstance(error.get("message"), str)
        socket_.assert_open(self)

    def test_unknown_type_and_wrong_version(self):
        socket_ = self.guest_socket()
        socket_.send("teleport", to="mars")
        error = socket_.wait_for("error")
        self.assertEqual(error["code"], "unknown_type")
        if "ref" in error:
            self.assertEqual(error["ref"], "teleport")
        socket_.send_json({"v": 2, "type": "ping"})
        self.assertTrue(socket_.wait_for("error")["code"])
        socket_.send_json({"type": "ping"})
        self.assertTrue(socket_.wait_for("error")["code"])
        socket_.assert_open(self)

    def test_bad_fields_get_an_error(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        for message in ({"v": 1, "type": "chat"}, {"v": 1, "type": "chat", "text": 5},
                        {"v": 1, "type": "chat", "text": ""},
                        {"v": 1, "type": "chat", "text": "x" * 2001},
                        {"v": 1, "type": "admit"}, {"v": 1, "type": "signal", "data": {}},
                        {"v": 1, "type": "media", "audio": "yes"}):
            with self.subTest(message=message):
                host.send_json(message)
                error = host.wait_for("error")
                self.assertTrue(error["code"])
        host.assert_open(self)

    def test_oversized_message_closes_1009(self):
        socket_ = self.guest_socket()
        socket_.send("chat", text="x" * 70000)  # web.ws_max_message_bytes = 65536
        self.assertEqual(socket_.wait_close()[0], 1009)

    def test_oversized_fragmented_message_closes_1009(self):
        socket_ = self.guest_socket()
        part = b"x" * 30000
        socket_.send_frame(WsClient.TEXT, b"{\"v\":1,\"type\":\"chat\",\"text\":\"", fin=False)
        for _ in range(3):
            socket_.send_frame(0x0, part, fin=False)
        socket_.send_frame(0x0, b"\"}", fin=True)
        self.assertEqual(socket_.wait_close()[0], 1009)

    def test_oversized_length_header_closes_1009(self):
        socket_ = self.guest_socket()
        # Claims 2^40 bytes and sends a few; the server must not wait for or allocate them.
        socket_.send_raw(frame(WsClient.TEXT, b"{}", length=1 << 40)[:16])
        self.assertEqual(socket_.wait_close()[0], 1009)

    def test_binary_frame_closes_1003(self):
        socket_ = self.guest_socket()
        socket_.send_frame(WsClient.BINARY, b"\x00\x01\x02")
        self.assertEqual(socket_.wait_close()[0], 1003)

    def test_protocol_violations_fail_the_connection(self):
        # RFC 6455 sections 5.1 (unmasked), 5.2 (RSV bits, opcodes), 5.5 (control frames),
        # 8.1 (UTF-8).
        violations = {
            "unmasked": frame(WsClient.TEXT, b"{}", mask=False),
            "rsv1": frame(WsClient.TEXT, b"{}", rsv=4),
            "reserved opcode": frame(0x3, b"x"),
            "long ping": frame(WsClient.PING, b"p" * 126),
            "fragmented ping": frame(WsClient.PING, b"p", fin=False),
            "continuation first": frame(0x0, b"x"),
            "invalid utf-8": frame(WsClient.TEXT, b"{\"v\":1,\"type\":\"chat\",\"text\":\"\xff\"}"),
        }
        for name, data in violations.items():
            with self.subTest(violation=name):
                socket_ = self.guest_socket()
                socket_.send_raw(data)
                code = socket_.wait_close()[0]
                expected = (1007,) if name == "invalid utf-8" else (1002,)
                self.assertIn(code, expected + ("eof",))
        self.assertEqual(self.browser().get("/healthz").status, 200)

    def test_guest_cannot_act_as_host(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        invitation = self.invite(self.advisor, self.room["id"])
        guest, guest_id, _ = self.admitted_guest(host, self.room["id"], invitation["token"],
                                                 "Mallory")
        other, other_id, _ = self.guest_in_lobby(host, self.room["id"], invitation["token"],
                                                 "Waiting")
        for message in ({"type": "admit", "id": other_id}, {"type": "reject", "id": other_id},
                        {"type": "remove", "id": other_id},
                        {"type": "mute", "id": other_id, "kind": "audio"}, {"type": "end"}):
            with self.subTest(message=message):
                guest.send_json({"v": 1, **message})
                error = guest.wait_for("error")
                self.assertEqual(error["code"], "forbidden", error)
        guest.assert_open(self)
        host.assert_open(self)
        # Nothing happened: the other guest still waits, nobody was told the meeting ended.
        other.assert_open(self)
        self.assertFalse([m for m in other.seen if m["type"] in ("welcome", "rejected")])
        self.assertFalse([m for m in host.seen + guest.seen if m["type"] == "ended"])

    def test_lobby_guest_cannot_reach_the_meeting(self):
        host, welcome = self.host_in_meeting(self.advisor, self.room["id"])
        host_id = welcome["you"]["id"]
        invitation = self.invite(self.advisor, self.room["id"])
        waiting, _, _ = self.guest_in_lobby(host, self.room["id"], invitation["token"], "Eve")
        # (A waiting guest's media state is shown to the host in lobby-update on purpose.)
        for message in ({"type": "chat", "text": "let me in"},
                        {"type": "signal", "to": host_id, "data": {"candidate": {}}}):
            with self.subTest(message=message):
                waiting.send_json({"v": 1, **message})
                self.assertTrue(waiting.wait_for("error")["code"])
        host.assert_open(self)
        self.assertFalse([m for m in host.seen if m["type"] in ("chat", "signal")], host.seen)

    def test_signals_do_not_cross_rooms(self):
        other_room = self.create_room(self.advisor, "Other")
        host_a, _ = self.host_in_meeting(self.advisor, self.room["id"])
        host_b, _ = self.host_in_meeting(self.advisor, other_room["id"])
        guest_a, _, _ = self.admitted_guest(host_a, self.room["id"],
                                            self.invite(self.advisor, self.room["id"])["token"],
                                            "In A")
        guest_b, guest_b_id, _ = self.admitted_guest(
            host_b, other_room["id"], self.invite(self.advisor, other_room["id"])["token"],
            "In B")
        guest_a.send("signal", to=guest_b_id, data={"candidate": {"candidate": "x"}})
        self.assertTrue(guest_a.wait_for("error")["code"])
        guest_b.assert_open(self)
        self.assertFalse([m for m in guest_b.seen if m["type"] == "signal"])

    def test_guest_cannot_remove_the_host(self):
        host, welcome = self.host_in_meeting(self.advisor, self.room["id"])
        host_id = welcome["you"]["id"]
        invitation = self.invite(self.advisor, self.room["id"])
        guest, _, _ = self.admitted_guest(host, self.room["id"], invitation["token"], "Mallory")
        guest.send("remove", id=host_id)
        self.assertEqual(guest.wait_for("error")["code"], "forbidden")
        host.assert_open(self)
        self.assertFalse([m for m in host.seen if m["type"] == "removed"])


# --- signaling: meetings ------------------------------------------------------------------


class MeetingFlowTest(ServerTestCase):
    settings = ("rooms.max_participants=3", "rooms.max_lobby=2",
                "rooms.reconnect_grace_seconds=2")

    def setUp(self):
        self.advisor = self.alice()
        self.room = self.create_room(self.advisor, "Meeting")
        self.invitation = self.invite(self.advisor, self.room["id"])

    def test_admit(self):
        host, welcome = self.host_in_meeting(self.advisor, self.room["id"])
        self.assertEqual(welcome["room"], {"id": self.room["id"], "name": "Meeting"})
        self.assertEqual(welcome["lobby"], [])
        self.assertFalse(welcome["resumed"])
        guest, guest_id, _ = self.guest_in_lobby(host, self.room["id"],
                                                 self.invitation["token"], "Erika")
        self.guest_in_lobby(host, self.room["id"], self.invitation["token"], "Still waiting")
        live = self.advisor.get(f"/api/v1/rooms/{self.room['id']}").json()["live"]
        self.assertEqual(live, {"participants": 1, "waiting": 2})
        host.send("admit", id=guest_id)
        guest_welcome = guest.wait_for("welcome")
        others = {p["id"] for p in guest_welcome["participants"]} - {guest_id}
        self.assertEqual(others, {welcome["you"]["id"]})
        # The lobby is the host's business: a guest learns nothing about who waits.
        self.assertFalse(guest_welcome.get("lobby"), guest_welcome)
        self.assertNotIn("Still waiting", json.dumps(guest_welcome))
        joined = host.wait_for("participant-joined")
        self.assertEqual(joined["participant"]["id"], guest_id)
        self.assertEqual(joined["participant"]["role"], "guest")
        # Signal relay between admitted participants.
        guest.send("signal", to=welcome["you"]["id"], data={"description": {"type": "offer",
                                                                            "sdp": "v=0"}})
        relayed = host.wait_for("signal")
        self.assertEqual(relayed["from"], guest_id)
        self.assertEqual(relayed["data"], {"description": {"type": "offer", "sdp": "v=0"}})

    def test_reject_closes_4003(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        guest, guest_id, _ = self.guest_in_lobby(host, self.room["id"],
                                                 self.invitation["token"], "Unwanted")
        host.send("reject", id=guest_id)
        self.assertEqual(guest.wait_close()[0], 4003)
        self.assertIn("rejected", [m["type"] for m in guest.seen])
        host.wait_for("lobby-update", where=lambda m: m["lobby"] == [])
        host.assert_open(self)

    def test_remove_closes_4001(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        guest, guest_id, _ = self.admitted_guest(host, self.room["id"],
                                                 self.invitation["token"], "Leaving")
        host.send("remove", id=guest_id)
        self.assertEqual(guest.wait_close()[0], 4001)
        self.assertIn("removed", [m["type"] for m in guest.seen])
        left = host.wait_for("participant-left", where=lambda m: m["id"] == guest_id)
        self.assertEqual(left["reason"], "removed")

    def test_end_closes_everyone_4002(self):
        host, welcome = self.host_in_meeting(self.advisor, self.room["id"])
        guest, _, _ = self.admitted_guest(host, self.room["id"], self.invitation["token"], "A")
        waiting, _, _ = self.guest_in_lobby(host, self.room["id"], self.invitation["token"], "B")
        host.send("end")
        for socket_ in (guest, waiting, host):
            self.assertEqual(socket_.wait_close()[0], 4002)
        ended = [m for m in guest.seen if m["type"] == "ended"]
        self.assertEqual(len(ended), 1, guest.seen)
        self.assertEqual(ended[0]["by"], welcome["you"]["id"])

    def test_rejection_and_removal_stick_for_the_meeting(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        rejected, rejected_id, rejected_browser = self.guest_in_lobby(
            host, self.room["id"], self.invitation["token"], "Rejected")
        host.send("reject", id=rejected_id)
        self.assertEqual(rejected.wait_close()[0], 4003)
        removed, removed_id, removed_browser = self.admitted_guest(
            host, self.room["id"], self.invitation["token"], "Removed")
        host.send("remove", id=removed_id)
        self.assertEqual(removed.wait_close()[0], 4001)
        # The same cookies on new sockets: the host's decision stands.
        for browser, code in ((rejected_browser, 4003), (removed_browser, 4001)):
            with self.subTest(code=code):
                again = self.ws(self.room["id"], browser)
                again.send("join")
                self.assertEqual(again.wait_close()[0], code)
                self.assertFalse([m for m in again.seen if m["type"] in ("welcome", "lobby")],
                                 again.seen)
        host.assert_open(self)
        live = self.advisor.get(f"/api/v1/rooms/{self.room['id']}").json()["live"]
        self.assertEqual(live, {"participants": 1, "waiting": 0})

    def test_room_and_lobby_limits(self):
        # rooms.max_participants = 3 (host included), rooms.max_lobby = 2.
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        token = self.invitation["token"]
        self.admitted_guest(host, self.room["id"], token, "One")
        self.admitted_guest(host, self.room["id"], token, "Two")
        third, third_id, _ = self.guest_in_lobby(host, self.room["id"], token, "Three")
        host.send("admit", id=third_id)
        self.assertEqual(host.wait_for("error")["code"], "room_full")
        third.assert_open(self)
        self.assertNotIn("welcome", [m["type"] for m in third.seen])
        self.guest_in_lobby(host, self.room["id"], token, "Four")
        browser, _ = self.join(token, "Five")
        fifth = self.ws(self.room["id"], browser)
        fifth.send("join")
        self.assertEqual(fifth.wait_close()[0], 4409)
        self.assertNotIn("lobby", [m["type"] for m in fifth.seen])
        live = self.advisor.get(f"/api/v1/rooms/{self.room['id']}").json()["live"]
        self.assertEqual(live, {"participants": 3, "waiting": 2})

    def test_dropped_connection_grace_then_disconnected(self):
        # rooms.reconnect_grace_seconds = 2
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        back, back_id, back_browser = self.admitted_guest(host, self.room["id"],
                                                          self.invitation["token"], "Back")
        gone, gone_id, _ = self.admitted_guest(host, self.room["id"],
                                               self.invitation["token"], "Gone")
        for socket_ in (back, gone):
            socket_.sock.close()  # no close frame: the network went away
        for participant_id in (back_id, gone_id):
            updated = host.wait_for("participant-updated",
                                    where=lambda m, i=participant_id: m["participant"]["id"] == i)
            self.assertFalse(updated["participant"]["connected"])
        again = self.ws(self.room["id"], back_browser)
        again.send("join")
        welcome = again.wait_for("welcome")
        self.assertTrue(welcome["resumed"])
        self.assertEqual(welcome["you"]["id"], back_id)
        left = host.wait_for("participant-left", timeout=6, where=lambda m: m["id"] == gone_id)
        self.assertEqual(left["reason"], "disconnected")
        self.assertFalse([m for m in host.seen
                          if m["type"] == "participant-left" and m["id"] == back_id])

    def test_reconnect_replaces_the_old_socket_4000(self):
        host, welcome = self.host_in_meeting(self.advisor, self.room["id"])
        guest, guest_id, browser = self.admitted_guest(host, self.room["id"],
                                                       self.invitation["token"], "Reloader")
        again = self.ws(self.room["id"], browser)
        again.send("join")
        resumed = again.wait_for("welcome")
        self.assertEqual(resumed["you"]["id"], guest_id)
        self.assertTrue(resumed["resumed"])
        self.assertEqual(guest.wait_close()[0], 4000)

    def test_leave(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        guest, guest_id, _ = self.admitted_guest(host, self.room["id"],
                                                 self.invitation["token"], "Bye")
        guest.send("leave")
        self.assertEqual(guest.wait_close()[0], 1000)
        left = host.wait_for("participant-left", where=lambda m: m["id"] == guest_id)
        self.assertEqual(left["reason"], "left")

    def test_mute(self):
        host, welcome = self.host_in_meeting(self.advisor, self.room["id"])
        guest, guest_id, _ = self.admitted_guest(host, self.room["id"],
                                                 self.invitation["token"], "Loud")
        host.send("mute", id=guest_id, kind="audio")
        muted = guest.wait_for("muted")
        self.assertEqual(muted["kind"], "audio")
        self.assertEqual(muted["by"], welcome["you"]["id"])

    def test_chat_order_per_sender(self):
        host, _ = self.host_in_meeting(self.advisor, self.room["id"])
        sender, sender_id, _ = self.admitted_guest(host, self.room["id"],
                                                   self.invitation["token"], "Talker")
        listener, _, _ = self.admitted_guest(host, self.room["id"], self.invitation["token"],
                                             "Listener")
        count = 500
        for n in range(count):
            sender.send("chat", text=f"message {n}")
            if n % 25 == 0:
                for socket_ in (host, sender, listener):
                    socket_.drain()
        for receiver in (host, listener):
            with self.subTest(receiver="host" if receiver is host else "listener"):
                chats = receiver.collect(
                    lambda m: m.get("type") == "chat" and m.get("from") == sender_id, count, 20)
                self.assertEqual([m["text"] for m in chats], [f"message {n}" for n in range(count)])
                seqs = [m["seq"] for m in chats]
                self.assertEqual(seqs, sorted(seqs))
                self.assertEqual(len(set(seqs)), count)
                self.assertEqual(chats[0]["name"], "Talker")


class SlowClientTest(ServerTestCase):
    """A participant that never reads while chat floods the room is dropped (close 4008 or a
    reset) once web.ws_max_queued_bytes is queued for it; memory stays bounded and everyone
    else keeps working."""

    settings = ("web.ws_max_queued_bytes=1048576", "rooms.chat_history=100")

    def test_slow_reader_is_dropped(self):
        advisor = self.alice()
        room = self.create_room(advisor, "Flood")
        invitation = self.invite(advisor, room["id"])
        host, _ = self.host_in_meeting(advisor, room["id"])
        flooder, _, _ = self.admitted_guest(host, room["id"], invitation["token"], "Flooder")
        observer, _, _ = self.admitted_guest(host, room["id"], invitation["token"], "Observer")
        browser, joined = self.join(invitation["token"], "Sleeper")
        slow_id = joined["participant"]["id"]
        slow = self.ws(room["id"], browser, receive_buffer=4096)
        slow.send("join")
        host.wait_for("lobby-update", where=lambda m: any(p["id"] == slow_id for p in m["lobby"]))
        host.send("admit", id=slow_id)
        host.wait_for("participant-joined", where=lambda m: m["participant"]["id"] == slow_id)

        def slow_gone(message):
            if message.get("type") == "participant-left":
                return message.get("id") == slow_id
            if message.get("type") == "participant-updated":
                participant = message.get("participant", {})
                return participant.get("id") == slow_id and participant.get("connected") is False
            return False

        def dropped_count():
            metrics = self.browser().get("/metrics").body.decode()
            found = re.search(r"^parley_ws_dropped_slow_total (\d+)", metrics, re.M)
            return int(found.group(1)) if found else 0

        rss_before = self.server.rss_kib()
        rss_peak = rss_before
        text = "z" * 1990
        sent = 0
        gone_at = None  # when the host learnt that the slow client is gone
        counted_at = None  # when the server counted the drop
        last_seen = {"host": -1, "observer": -1}
        readers = {"host": host, "observer": observer}

        def take_in(timeout):
            nonlocal gone_at
            for name, socket_ in list(readers.items()) + [("flooder", flooder)]:
                socket_._read(timeout)
                socket_.drain()
                while socket_.events:
                    event = socket_.events.popleft()
                    if event[0] != "text":
                        self.fail(f"{name}, which reads, was closed: {event} after {sent} "
                                  f"messages\n{self.server.log()}")
                    message = json.loads(event[1])
                    if message.get("type") == "chat" and message.get("name") == "Flooder":
                        if name in last_seen:
                            last_seen[name] = int(message["text"][:8])
                    elif name == "host" and slow_gone(message) and gone_at is None:
                        gone_at = time.monotonic()

        while sent * len(text) < 40 * 1024 * 1024 and gone_at is None and counted_at is None:
            for _ in range(20):
                flooder.send("chat", text=f"{sent:08d}{text}")
                sent += 1
            # Lock-step per batch: the readers are up to date before the next one, so only the
            # client that does not read falls behind.
            deadline = time.monotonic() + IO_TIMEOUT
            while min(last_seen.values()) < sent - 1:
                if time.monotonic() > deadline:
                    self.fail(f"readers fell behind at {sent}: {last_seen}")
                take_in(0.05)
            if dropped_count() > 0:
                counted_at = time.monotonic()
            if sent % 400 == 0:
                rss_peak = max(rss_peak, self.server.rss_kib())
        flood_end = time.monotonic()
        rss_peak = max(rss_peak, self.server.rss_kib())
        growth_mib = (rss_peak - rss_before) / 1024
        self.assertLess(growth_mib, 48, f"server RSS grew {growth_mib:.1f} MiB during the flood")
        # The others keep working.
        observer.assert_open(self)
        host.send("chat", text="still here")
        self.assertEqual(observer.wait_for("chat", where=lambda m: m["text"] == "still here")
                         ["text"], "still here")
        # The slow client is gone for the room promptly: the host is told within 10 s.
        while gone_at is None and time.monotonic() < flood_end + 10:
            take_in(0.2)
        self.assertIsNotNone(
            gone_at, f"the host was not told within 10 s that the slow client is gone "
                     f"({sent} chat messages, ~{sent * 2 // 1024} MiB sent; server counted the "
                     f"drop: {counted_at is not None})")
        # The slow client, once it reads, finds a close 4008 or a reset/EOF.
        deadline = time.monotonic() + 30
        outcome = None
        while outcome is None and time.monotonic() < deadline:
            event = slow.next_event(5)
            if event and event[0] in ("close", "eof"):
                outcome = event
        self.assertIsNotNone(outcome, "the slow client's socket is still open")
        if outcome[0] == "close":
            self.assertEqual(outcome[1], 4008)


# --- shutdown -----------------------------------------------------------------------------


class GracefulShutdownTest(ServerTestCase):
    settings = ("web.shutdown_grace_seconds=2",)

    def test_sigterm_tells_clients_and_exits_0(self):
        advisor = self.alice()
        room = self.create_room(advisor, "Shutdown")
        host, _ = self.host_in_meeting(advisor, room["id"])
        keep_alive = http.client.HTTPSConnection("127.0.0.1", self.server.https_port,
                                                 timeout=IO_TIMEOUT, context=tls_context())
        keep_alive.request("GET", "/healthz")
        self.assertEqual(keep_alive.getresponse().read(), b'{"status":"ok"}')
        started = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        shutdown = host.wait_for("shutdown", timeout=5)
        self.assertIsInstance(shutdown.get("retryAfterMs"), int)
        self.assertGreater(shutdown["retryAfterMs"], 0)
        # /healthz on a connection that was open already: 503 while stopping (or closed).
        try:
            keep_alive.request("GET", "/healthz")
            response = keep_alive.getresponse()
            body = response.read()
            self.assertEqual(response.status, 503, body)
            self.assertEqual(json.loads(body), {"status": "shutting_down"})
        except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            keep_alive.close()
        self.assertEqual(host.wait_close(timeout=10)[0], 1001)
        try:
            code = self.server.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("parley did not exit within 15 s of SIGTERM:\n" + self.server.log())
        self.assertEqual(code, 0, self.server.log())
        self.assertLess(time.monotonic() - started, 2 + 8)

    def tearDown(self):
        pass  # the server is meant to be gone


# --- first set-up and the admin CLI -------------------------------------------------------


class FirstAdvisorSetupTest(ServerTestCase):
    create_alice = False

    def test_setup_link_works_once(self):
        self.assertIsNotNone(self.server.setup_link, self.server.log())
        self.assertTrue(self.server.setup_link.startswith(self.server.origin + "/setup#t="))
        token = self.server.setup_link.split("#t=", 1)[1]
        browser = self.browser()
        self.assertEqual(browser.get("/api/v1/setup").json(), {"needed": True})
        body = {"token": token, "username": "first", "password": new_password(),
                "displayName": "First Advisor"}
        self.assert_error(browser.post("/api/v1/setup", dict(body, token=token[:-3] + "AAA")),
                          401, "invalid_token")
        self.assert_error(browser.post("/api/v1/setup", body, origin=FOREIGN_ORIGIN), 403,
                          "bad_origin")
        self.assert_error(browser.post("/api/v1/setup", dict(body, displayName=3)), 400,
                          "bad_request", names="displayName")
        created = browser.post("/api/v1/setup", body)
        self.assertEqual(created.status, 201, created)
        self.assertEqual(created.json()["advisor"]["username"], "first")
        self.assertIn("csrfToken", created.json())
        self.assertIn("parley_session", browser.cookies)
        self.assertEqual(browser.get("/api/v1/session").status, 200)
        self.assertEqual(browser.get("/api/v1/setup").json(), {"needed": False})
        self.assert_error(self.browser().post("/api/v1/setup", dict(body, username="second")),
                          409, "already_set_up")


class ConcurrentSetupTest(ServerTestCase):
    """The set-up link creates the first advisor only, also when requests race."""

    settings = ("server.threads=8",)
    create_alice = False

    def test_concurrent_setup_creates_one_advisor(self):
        token = self.server.setup_link.split("#t=", 1)[1]
        replies = concurrently(8, lambda n: self.browser().post(
            "/api/v1/setup", {"token": token, "username": f"first{n}", "password": new_password(),
                              "displayName": f"First {n}"}))
        statuses = sorted(reply.status for reply in replies)
        self.assertEqual(statuses, [201] + [409] * 7,
                         f"{statuses.count(201)} advisors were created through the set-up link")
        for reply in replies:
            if reply.status == 409:
                self.assert_error(reply, 409, "already_set_up")


class AdminCliTest(ServerTestCase):
    def test_create_advisor_twice_fails(self):
        password = new_password()
        first = self.server.admin("create-advisor", "erin", "--password-stdin",
                                  stdin=password + "\n")
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stdout.strip(), "advisor erin created")
        second = self.server.admin("create-advisor", "erin", "--password-stdin",
                                   stdin=new_password() + "\n")
        self.assertEqual(second.returncode, 1, second)
        self.assertIn("erin", second.stderr)
        self.assertNotIn(password, first.stdout + first.stderr + second.stdout + second.stderr)
        # The first password still works; the second never took effect.
        self.assertEqual(self.browser().login("erin", password).status, 200)

    def test_create_room_and_invite_link_works_with_join(self):
        room = self.server.admin("create-room", "CLI room", "--advisor", "alice")
        self.assertEqual(room.returncode, 0, room.stderr)
        room_id = room.stdout.strip()
        self.assertRegex(room_id, r"^[A-Za-z0-9_-]{22}$")
        self.assertEqual(self.alice().get(f"/api/v1/rooms/{room_id}").json()["name"], "CLI room")
        invite = self.server.admin("invite", room_id, "--single-use", "--expires-in", "600",
                                   "--public-url", self.server.origin)
        self.assertEqual(invite.returncode, 0, invite.stderr)
        link = invite.stdout.strip()
        self.assertTrue(link.startswith(self.server.origin + "/join#t="), link)
        token = link.split("#t=", 1)[1]
        browser, body = self.join(token, "From the CLI")
        self.assertEqual(body["room"]["id"], room_id)
        self.assert_error(self.browser().post("/api/v1/join", {"token": token, "name": "Again"}),
                          409, "invitation_used")

    def test_admin_errors(self):
        missing = self.server.admin("create-room", "X", "--advisor", "nobody")
        self.assertEqual(missing.returncode, 1, missing)
        self.assertIn("nobody", missing.stderr)
        no_room = self.server.admin("invite", "AAAAAAAAAAAAAAAAAAAAAA")
        self.assertEqual(no_room.returncode, 1, no_room)
        self.assertTrue(no_room.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
