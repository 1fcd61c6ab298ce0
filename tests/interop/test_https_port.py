#!/usr/bin/python3
"""TURN on the HTTPS port (the network contract's "TURN over TLS also on 443"), against real
clients: `parley serve` tells HTTP from STUN/TURN by the first bytes a client sends, after TLS or
in the clear, and hands STUN/TURN to its TURN server.

* coturn's turnutils_uclient relays through TURN over TLS and over plain TCP on the HTTPS port
  (REST credentials, channels and Send indications), every message echoed by turnutils_peer;
* STUN Binding over TLS (with and without ALPN "stun.turn") and in the clear answers with the
  client's own address; HTTPS keeps working on the same port; plain HTTP there is redirected;
* garbage and PROXY headers from untrusted addresses are closed and counted in /metrics;
* web.turn_over_https = false leaves the HTTPS port to HTTP alone;
* with web.proxy_protocol_from, PROXY protocol v1 and v2 headers give the real client address
  (XOR-MAPPED-ADDRESS is the address in the header, not the balancer's), LOCAL keeps the
  connection's own, and a trusted source without a header is refused.

Stdlib only (plus coturn's tools); run with /usr/bin/python3.
"""

import ipaddress
import os
import socket
import ssl
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import turn_helpers as h  # noqa: E402

MAGIC = 0x2112A442


class ParleyServe(h._Process):
    """`parley serve` on loopback with every port free and a REST secret for TURN."""

    name = "parley serve"

    def __init__(self, workdir, extra=(), ready_timeout=20.0):
        if not os.access(h.PARLEY_BIN, os.X_OK):
            raise h.ServerError("parley binary not found: %s (set PARLEY_BIN)" % h.PARLEY_BIN)
        self.stun_port = h.free_port()
        self.https_port = h.free_port(kinds=(socket.SOCK_STREAM,))
        data_dir = os.path.join(workdir, "parley-data")
        args = [h.PARLEY_BIN, "serve", "--listen", h.LOOPBACK, "--stun-port", str(self.stun_port),
                "--relay-address", h.LOOPBACK, "--data-dir", data_dir, "--no-tls",
                "--https-port", str(self.https_port), "--http-port", "0",
                "--turn-secret", h.REST_SECRET, "--allow-peer", "127.0.0.0/8"] + list(extra)
        super().__init__(args, cwd=workdir)
        try:
            self.wait_for_lines(["listening on https %s:%d" % (h.LOOPBACK, self.https_port),
                                 "ready at"], ready_timeout)
        except BaseException:
            self.kill()
            raise


def binding_request():
    transaction = os.urandom(12)
    return struct.pack("!HHI", 0x0001, 0, MAGIC) + transaction, transaction


def xor_mapped_address(response, transaction):
    """(address, port) of XOR-MAPPED-ADDRESS in a Binding success response."""
    assert len(response) >= 20, "short STUN response: %r" % response
    kind, length, magic = struct.unpack("!HHI", response[:8])
    assert kind == 0x0101, "not a Binding success response: 0x%04x" % kind
    assert magic == MAGIC and response[8:20] == transaction, "wrong cookie or transaction"
    body = response[20:20 + length]
    offset = 0
    while offset + 4 <= len(body):
        attribute, size = struct.unpack("!HH", body[offset:offset + 4])
        value = body[offset + 4:offset + 4 + size]
        if attribute == 0x0020:
            family = value[1]
            port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC >> 16)
            if family == 0x01:
                raw = struct.unpack("!I", value[4:8])[0] ^ MAGIC
                return str(ipaddress.IPv4Address(raw)), port
            key = struct.pack("!I", MAGIC) + transaction
            raw = bytes(a ^ b for a, b in zip(value[4:20], key))
            return str(ipaddress.IPv6Address(raw)), port
        offset += 4 + ((size + 3) & ~3)
    raise AssertionError("no XOR-MAPPED-ADDRESS in %r" % response)


def read_stun(sock):
    header = b""
    while len(header) < 20:
        chunk = sock.recv(20 - len(header))
        if not chunk:
            raise AssertionError("connection closed before a STUN response arrived")
        header += chunk
    length = struct.unpack("!H", header[2:4])[0]
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise AssertionError("connection closed inside a STUN response")
        body += chunk
    return header + body


def client_context(alpn=None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def closed_without_answer(sock, timeout=5.0):
    """True when the server closes the connection without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def https_get(port, path, prefix=b""):
    """Status line of GET `path` over TLS, after `prefix` in the clear (a PROXY header)."""
    raw = socket.create_connection((h.LOOPBACK, port), timeout=5)
    raw.sendall(prefix)
    with client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path)
                    .encode())
        data = b""
        while b"\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode()


def metric(port, name):
    raw = socket.create_connection((h.LOOPBACK, port), timeout=5)
    with client_context().wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError("metric %s not in /metrics" % name)


class ServeTestCase(unittest.TestCase):
    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.TemporaryDirectory(prefix="parley-https-port-")
        cls.server = ParleyServe(cls.workdir.name, extra=cls.extra)

    @classmethod
    def tearDownClass(cls):
        status = cls.server.stop()
        cls.workdir.cleanup()
        assert status == 0, "parley serve exited with %s:\n%s" % (status, cls.server.output())

    def log(self):
        return "\nserver output:\n" + self.server.output(4000)


class HttpsPortTest(ServeTestCase):
    extra = ("--set", "web.header_timeout_seconds=2")

    def start_peer(self):
        peer = h.EchoPeer()
        self.addCleanup(peer.kill)
        return peer

    def assert_all_delivered(self, run, expected):
        context = "%s%s" % (run, self.log())
        self.assertEqual(run.returncode, 0, "uclient failed\n" + context)
        self.assertEqual(run.sent, expected, "uclient sent %s, want %d\n%s" % (run.sent, expected, context))
        self.assertEqual(run.received, expected,
                         "uclient got %s of %d back\n%s" % (run.received, expected, context))

    def test_uclient_turn_over_tls_on_the_https_port(self):
        peer = self.start_peer()
        before = metric(self.server.https_port, "parley_https_port_turn_handoffs_total")
        run = h.run_uclient(self.server.https_port, peer, user="carol", secret=h.REST_SECRET,
                            messages=50, tcp=True, secure=True)
        self.assert_all_delivered(run, 50)
        after = metric(self.server.https_port, "parley_https_port_turn_handoffs_total")
        self.assertGreater(after, before, "no hand-over counted" + self.log())

    def test_uclient_turn_over_tls_send_indications(self):
        peer = self.start_peer()
        run = h.run_uclient(self.server.https_port, peer, user="carol", secret=h.REST_SECRET,
                            messages=50, tcp=True, secure=True, send_indications=True)
        self.assert_all_delivered(run, 50)

    def test_uclient_plain_turn_over_tcp_on_the_https_port(self):
        peer = self.start_peer()
        run = h.run_uclient(self.server.https_port, peer, user="dave", secret=h.REST_SECRET,
                            messages=50, tcp=True)
        self.assert_all_delivered(run, 50)

    def binding_over_tls(self, alpn):
        raw = socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5)
        with client_context(alpn).wrap_socket(raw, server_hostname="localhost") as tls:
            request, transaction = binding_request()
            tls.sendall(request)
            mapped = xor_mapped_address(read_stun(tls), transaction)
            return mapped, tls.getsockname()[:2], tls.selected_alpn_protocol()

    def test_stun_binding_over_tls_without_alpn(self):
        mapped, local, alpn = self.binding_over_tls(None)
        self.assertEqual(mapped, local, self.log())
        self.assertIsNone(alpn)

    def test_stun_binding_over_tls_with_alpn_stun_turn(self):
        mapped, local, alpn = self.binding_over_tls(["stun.turn"])
        self.assertEqual(alpn, "stun.turn")
        self.assertEqual(mapped, local, self.log())

    def test_stun_binding_in_the_clear(self):
        with socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5) as sock:
            request, transaction = binding_request()
            # Split in two writes: the first bytes alone do not decide.
            sock.sendall(request[:3])
            time.sleep(0.1)
            sock.sendall(request[3:])
            self.assertEqual(xor_mapped_address(read_stun(sock), transaction),
                             sock.getsockname()[:2], self.log())

    def test_https_still_served_beside_turn(self):
        self.assertEqual(https_get(self.server.https_port, "/healthz"), "HTTP/1.1 200 OK",
                         self.log())

    def test_plain_http_on_the_https_port_is_redirected(self):
        with socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5) as sock:
            sock.sendall(b"GET /join?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            sock.settimeout(5)
            data = sock.recv(4096).decode(errors="replace")
        self.assertTrue(data.startswith("HTTP/1.1 301"), data + self.log())
        self.assertIn("Location: https://localhost:%d/join?x=1" % self.server.https_port, data)

    def test_garbage_is_closed_and_counted(self):
        before = metric(self.server.https_port, "parley_https_port_rejected_total")
        with socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5) as sock:
            sock.sendall(b"\xff\xfe not a protocol anyone speaks \r\n")
            self.assertTrue(closed_without_answer(sock), self.log())
        after = metric(self.server.https_port, "parley_https_port_rejected_total")
        self.assertEqual(after, before + 1, self.log())

    def test_proxy_header_from_an_untrusted_address_is_refused(self):
        with socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5) as sock:
            request, _ = binding_request()
            sock.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n" + request)
            self.assertTrue(closed_without_answer(sock), self.log())

    def test_silent_client_is_cut_at_the_header_deadline(self):
        server = self.server
        with socket.create_connection((h.LOOPBACK, server.https_port), timeout=5) as sock:
            start = time.monotonic()
            self.assertTrue(closed_without_answer(sock, timeout=30), self.log())
            # web.header_timeout_seconds is 2 for this server.
            self.assertLess(time.monotonic() - start, 10)


class ProxyProtocolTest(ServeTestCase):
    extra = ("--set", "web.proxy_protocol_from=[\"127.0.0.1/32\"]")

    def binding_after(self, header, tls):
        raw = socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5)
        raw.sendall(header)
        sock = client_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
        with sock:
            request, transaction = binding_request()
            sock.sendall(request)
            return xor_mapped_address(read_stun(sock), transaction), sock.getsockname()[:2]

    def test_v1_gives_the_client_address_in_the_clear(self):
        mapped, _ = self.binding_after(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n", tls=False)
        self.assertEqual(mapped, ("198.51.100.7", 40000), self.log())

    def test_v1_ipv6_before_tls(self):
        mapped, _ = self.binding_after(b"PROXY TCP6 2001:db8::7 2001:db8::1 40001 443\r\n", tls=True)
        self.assertEqual(mapped, ("2001:db8::7", 40001), self.log())

    def test_v2_ipv4_with_a_tlv_before_tls(self):
        addresses = socket.inet_aton("203.0.113.9") + socket.inet_aton("127.0.0.1") + \
            struct.pack("!HH", 50000, 443)
        tlv = struct.pack("!BH", 0x04, 4) + b"noop"  # PP2_TYPE_NOOP
        header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + \
            struct.pack("!H", len(addresses) + len(tlv)) + addresses + tlv
        mapped, _ = self.binding_after(header, tls=True)
        self.assertEqual(mapped, ("203.0.113.9", 50000), self.log())

    def test_v2_local_keeps_the_connections_own_address(self):
        header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack("!H", 0)
        mapped, local = self.binding_after(header, tls=False)
        self.assertEqual(mapped, local, self.log())

    def test_https_after_a_v2_header(self):
        addresses = socket.inet_aton("203.0.113.9") + socket.inet_aton("127.0.0.1") + \
            struct.pack("!HH", 50001, 443)
        header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + \
            struct.pack("!H", len(addresses)) + addresses
        self.assertEqual(https_get(self.server.https_port, "/healthz", prefix=header),
                         "HTTP/1.1 200 OK", self.log())

    def test_a_trusted_source_without_a_header_is_refused(self):
        with socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5) as sock:
            request, _ = binding_request()
            sock.sendall(request)
            self.assertTrue(closed_without_answer(sock), self.log())

    def test_a_malformed_header_is_refused(self):
        with socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5) as sock:
            sock.sendall(b"PROXY TCP4 198.51.100.7  127.0.0.1 40000 443\r\n")
            self.assertTrue(closed_without_answer(sock), self.log())


class TurnOverHttpsOffTest(ServeTestCase):
    extra = ("--set", "web.turn_over_https=false")

    def test_stun_on_the_https_port_is_closed_when_turn_over_https_is_off(self):
        raw = socket.create_connection((h.LOOPBACK, self.server.https_port), timeout=5)
        with client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            request, _ = binding_request()
            tls.sendall(request)
            self.assertTrue(closed_without_answer(tls), self.log())
        self.assertEqual(https_get(self.server.https_port, "/healthz"), "HTTP/1.1 200 OK")


if __name__ == "__main__":
    missing = [tool for tool in (h.UCLIENT, h.PEER) if not tool]
    if missing:
        print("coturn's turnutils_uclient/turnutils_peer not installed (apt coturn)")
        sys.exit(1)
    unittest.main()
