#!/usr/bin/python3
"""Interop tests: parley's TURN relay (RFC 8656) against independent TURN clients.

All on loopback (127.0.0.0/8). Clients:

* coturn 4.6.1's `turnutils_uclient` relaying to `turnutils_peer` (a UDP echo peer): UDP,
  TCP, TLS and DTLS to the server; ChannelData and Send/Data indications; long-term
  credentials and the TURN REST API shared secret; ten clients at once; RTP/RTCP pairs
  (EVEN-PORT, RESERVATION-TOKEN); the relay port range; peer filtering (loopback peers are
  refused unless --allow-peer allows them);
* aiortc (python3-aiortc): two RTCPeerConnections whose SDP keeps only relay candidates,
  a data channel both ways, over TURN/UDP and TURN/TCP;
* headless Chromium (Debian's chromium, driven by playwright-core from
  tests/interop/browser): fake-camera video both ways between two relay-only
  RTCPeerConnections over turn:?transport=udp, turn:?transport=tcp and turns: (TLS).

Run (PARLEY_BIN defaults to build/tinterop/app/parley; ctest -L interop sets it):
    PARLEY_BIN=build/tinterop/app/parley /usr/bin/python3 tests/interop/test_turn_interop.py -v
Dry run of the tests themselves against coturn's turnserver instead of parley:
    TURN_SERVER_UNDER_TEST=coturn /usr/bin/python3 tests/interop/test_turn_interop.py -v
The browser tests need `scripts/install-npm-test-deps.sh` (playwright-core) first.
TLS/DTLS tests fail (never skip) while parley has no TLS/DTLS listener.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import turn_helpers as h  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class TurnTestCase(unittest.TestCase):
    """Servers and peers started here are stopped in tearDown, always. parley must exit 0
    on SIGTERM; a non-zero status or a hang is reported there."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="parley-turn-interop-")
        self._servers = []
        self._peers = []
        for tool in (h.UCLIENT, h.PEER):
            if tool is None:
                self.fail("coturn's turnutils_uclient/turnutils_peer not installed (apt coturn)")

    def tearDown(self):
        problems = []
        try:
            for server in self._servers:
                if server.kind != "parley":
                    continue
                try:
                    status = server.stop()
                    if status != 0:
                        problems.append("parley exited with status %s on SIGTERM:\n%s"
                                        % (status, server.output(3000)))
                except AssertionError as error:
                    problems.append(str(error))
        finally:
            for process in self._servers + self._peers:
                process.kill()
            self._tmp.cleanup()
        if problems:
            raise AssertionError("\n".join(problems))

    def start_server(self, **kwargs):
        server = h.start_server(self._tmp.name, **kwargs)
        self._servers.append(server)
        return server

    def start_peer(self, address=h.LOOPBACK):
        peer = h.EchoPeer(address)
        self._peers.append(peer)
        return peer

    def server_log(self, server):
        return "\n--- %s output (tail) ---\n%s" % (server.name, server.output(3000))

    def assert_all_delivered(self, run, expected, server):
        context = "%s%s" % (run, self.server_log(server))
        self.assertEqual(run.returncode, 0, "uclient failed\n" + context)
        self.assertIsNotNone(run.sent, "no final report (tot_send_msgs=...) in uclient output\n" + context)
        self.assertEqual(run.sent, expected, "uclient sent %s messages, want %d\n%s" % (run.sent, expected, context))
        self.assertEqual(run.received, expected,
                         "uclient got %s of %d messages back\n%s" % (run.received, expected, context))
        self.assertEqual(run.lost, 0, "lost packets\n" + context)
        self.assertEqual(run.dropped, 0, "send dropped\n" + context)

    def assert_refused(self, run, needle, server):
        context = "%s%s" % (run, self.server_log(server))
        self.assertIn(needle, run.output, "expected %r in uclient output\n%s" % (needle, context))
        self.assertNotEqual(run.returncode, 0, "uclient exited 0 although refused\n" + context)
        self.assertFalse(run.received, "messages came back although the peer is refused\n" + context)


def start_tls_server(test, **kwargs):
    """The server with its TLS (TCP) and DTLS (UDP) listener on tls_port; the test FAILS,
    saying why, when the listener is not there."""
    problem = None
    try:
        return test.start_server(tls=True, **kwargs)
    except h.ServerError as error:
        problem = str(error)
    test.fail("the TURN server could not be started with its TLS/DTLS listener (--tls-port): %s"
              % problem)


# --------------------------------------------------------------------------------------
# 1. turnutils_uclient over UDP and TCP
# --------------------------------------------------------------------------------------

class UclientTest(TurnTestCase):

    def test_udp_channels(self):
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=50)
        self.assert_all_delivered(run, 50, server)

    def test_udp_send_indications(self):
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=50, send_indications=True)
        self.assert_all_delivered(run, 50, server)

    def test_tcp_channels(self):
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=50, tcp=True)
        self.assert_all_delivered(run, 50, server)

    def test_tcp_send_indications(self):
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=50, tcp=True, send_indications=True)
        self.assert_all_delivered(run, 50, server)

    def test_udp_large_messages(self):
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=30, length=1200)
        self.assert_all_delivered(run, 30, server)

    # uclient -m 10 opens 20 allocations for one user from one IP within ~0.1 s: above
    # parley's defaults of 10 allocations per user and 10 401 answers per second per IP.
    # These tests are about relaying for many clients at once, so both are raised here;
    # test_tcp_burst_with_default_401_rate_limit covers the default rate limit.
    MANY = dict(threads=2, quota=100, unauth_per_second=1000)

    def test_udp_ten_clients(self):
        server = self.start_server(**self.MANY)
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=40, clients=10)
        self.assert_all_delivered(run, 400, server)

    def test_tcp_ten_clients(self):
        server = self.start_server(**self.MANY)
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=40, clients=10, tcp=True)
        self.assert_all_delivered(run, 400, server)

    def test_udp_burst_with_default_401_rate_limit(self):
        # Over UDP a dropped 401 is recovered by the client's retransmission.
        server = self.start_server(quota=100)
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=20, clients=10)
        self.assert_all_delivered(run, 200, server)

    def test_tcp_burst_with_default_401_rate_limit(self):
        # Over TCP clients do not retransmit (RFC 8489 §6.2.2): a request the server drops
        # silently is never answered and the client waits out its transaction timeout
        # (39.5 s in RFC 8489; uclient gives up after 30 s with "recv: Success"). 20
        # connections from one IP within ~0.1 s (one office behind a NAT) must all be served.
        server = self.start_server(quota=100)
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=20, clients=10, tcp=True, timeout=45)
        self.assert_all_delivered(run, 200, server)

    def test_rtp_rtcp_pairs_even_port_and_reservation_token(self):
        # Without -c every client allocates an RTP relay with EVEN-PORT (R bit) and an RTCP
        # relay with the RESERVATION-TOKEN it got: twice the messages.
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=20, rtcp=True, verbose=True)
        self.assert_all_delivered(run, 40, server)
        ports = sorted(port for _, port in run.relay_addresses)
        self.assertTrue(any(p % 2 == 0 for p in ports), "no even relay port: %s\n%s" % (ports, run))

    def test_relay_ports_in_configured_range(self):
        first, last = h.free_port_range(20)
        server = self.start_server(port_range=(first, last))
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=20, clients=3, verbose=True)
        self.assert_all_delivered(run, 60, server)
        # uclient allocates two relays per client even with -c (one per direction).
        self.assertGreaterEqual(len(run.relay_addresses), 3, "want >= 3 relay addresses\n%s" % run)
        for address, port in run.relay_addresses:
            self.assertEqual(address, h.LOOPBACK, run)
            self.assertTrue(first <= port <= last,
                            "relay port %d outside %d-%d\n%s" % (port, first, last, run))


# --------------------------------------------------------------------------------------
# 2. Authentication: long-term credentials and the TURN REST API secret
# --------------------------------------------------------------------------------------

class AuthTest(TurnTestCase):

    def test_rest_secret_udp(self):
        server = self.start_server(secrets=[h.REST_SECRET])
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, user="bob", secret=h.REST_SECRET, messages=30)
        self.assert_all_delivered(run, 30, server)

    def test_rest_secret_tcp_send_indications(self):
        server = self.start_server(secrets=[h.REST_SECRET])
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, user="bob", secret=h.REST_SECRET, messages=30,
                            tcp=True, send_indications=True)
        self.assert_all_delivered(run, 30, server)

    def test_user_and_second_secret_on_one_server(self):
        if h.SERVER_KIND == "coturn":
            self.skipTest("coturn cannot mix static users and REST secrets (parley can)")
        server = self.start_server(secrets=["an-older-secret-kept-for-rotation", h.REST_SECRET])
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, user="bob", secret=h.REST_SECRET, messages=20)
        self.assert_all_delivered(run, 20, server)
        run = h.run_uclient(server.port, peer, messages=20)
        self.assert_all_delivered(run, 20, server)

    def test_wrong_password_is_refused(self):
        server = self.start_server()
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, password="not-the-password", messages=10)
        self.assert_refused(run, "Cannot complete Allocation", server)

    def test_wrong_rest_secret_is_refused(self):
        server = self.start_server(secrets=[h.REST_SECRET])
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, user="bob", secret="not-the-secret", messages=10)
        self.assert_refused(run, "Cannot complete Allocation", server)


# --------------------------------------------------------------------------------------
# 3. TLS (TCP) and DTLS (UDP) on the TLS port. These FAIL, with the reason, while parley
#    has no TLS/DTLS listener: they are never skipped.
# --------------------------------------------------------------------------------------

class SecureTransportTest(TurnTestCase):

    def start_tls_server(self, **kwargs):
        return start_tls_server(self, **kwargs)

    def test_tls_channels(self):
        server = self.start_tls_server()
        peer = self.start_peer()
        run = h.run_uclient(server.tls_port, peer, messages=50, tcp=True, secure=True)
        self.assert_all_delivered(run, 50, server)

    def test_tls_send_indications(self):
        server = self.start_tls_server()
        peer = self.start_peer()
        run = h.run_uclient(server.tls_port, peer, messages=50, tcp=True, secure=True,
                            send_indications=True)
        self.assert_all_delivered(run, 50, server)

    def test_dtls_channels(self):
        server = self.start_tls_server()
        peer = self.start_peer()
        run = h.run_uclient(server.tls_port, peer, messages=50, secure=True)
        self.assert_all_delivered(run, 50, server)

    def test_dtls_send_indications(self):
        server = self.start_tls_server()
        peer = self.start_peer()
        run = h.run_uclient(server.tls_port, peer, messages=50, secure=True, send_indications=True)
        self.assert_all_delivered(run, 50, server)

    def test_tls_and_dtls_five_clients_each(self):
        server = self.start_tls_server(threads=2, quota=100, unauth_per_second=1000)
        peer = self.start_peer()
        run = h.run_uclient(server.tls_port, peer, messages=30, clients=5, tcp=True, secure=True)
        self.assert_all_delivered(run, 150, server)
        run = h.run_uclient(server.tls_port, peer, messages=30, clients=5, secure=True)
        self.assert_all_delivered(run, 150, server)


# --------------------------------------------------------------------------------------
# 4. Peer filtering: loopback peers are refused unless allowed.
# --------------------------------------------------------------------------------------

class PeerFilterTest(TurnTestCase):

    def test_loopback_peer_refused_by_default_channel_bind(self):
        server = self.start_server(allow_peer=())
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=10)
        self.assert_refused(run, "channel bind: error 403", server)

    def test_loopback_peer_refused_by_default_create_permission(self):
        server = self.start_server(allow_peer=())
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=10, send_indications=True)
        self.assert_refused(run, "create permission error 403", server)

    def test_loopback_peer_refused_by_default_over_tcp(self):
        server = self.start_server(allow_peer=())
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=10, tcp=True)
        self.assert_refused(run, "channel bind: error 403", server)

    def test_loopback_peer_relayed_with_allow_peer(self):
        server = self.start_server(allow_peer=["127.0.0.0/8"])
        peer = self.start_peer()
        run = h.run_uclient(server.port, peer, messages=20)
        self.assert_all_delivered(run, 20, server)

    def test_allow_peer_is_exact(self):
        # Only 127.0.0.2 is allowed: the peer on 127.0.0.1 is refused, the one on 127.0.0.2
        # is relayed.
        server = self.start_server(allow_peer=["127.0.0.2/32"])
        refused_peer = self.start_peer("127.0.0.1")
        allowed_peer = self.start_peer("127.0.0.2")
        run = h.run_uclient(server.port, refused_peer, messages=10)
        self.assert_refused(run, "channel bind: error 403", server)
        run = h.run_uclient(server.port, allowed_peer, messages=20)
        self.assert_all_delivered(run, 20, server)


# --------------------------------------------------------------------------------------
# 5. aiortc: data channel between two relay-only peer connections.
# --------------------------------------------------------------------------------------

class AiortcTest(TurnTestCase):

    def run_aiortc(self, server, transport):
        url = "turn:%s:%d?transport=%s" % (h.LOOPBACK, server.port, transport)
        args = [sys.executable, os.path.join(h.HERE, "turn_helpers.py"), "aiortc",
                "--url", url, "--username", h.USER, "--credential", h.PASSWORD,
                "--messages", "20", "--timeout", "30"]
        try:
            done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=90)
        except subprocess.TimeoutExpired as expired:
            self.fail("aiortc program timed out: %s\n%s%s" % (" ".join(args), expired.stdout,
                                                             self.server_log(server)))
        lines = [l for l in done.stdout.splitlines() if l.startswith("AIORTC_RESULT ")]
        context = "$ %s\nexit %s\nstdout:\n%s\nstderr:\n%s%s" % (
            " ".join(args), done.returncode, done.stdout[-4000:], done.stderr[-4000:],
            self.server_log(server))
        self.assertTrue(lines, "no AIORTC_RESULT line\n" + context)
        result = json.loads(lines[-1][len("AIORTC_RESULT "):])
        self.assertTrue(result.get("ok"), "data channel exchange failed: %s\n%s"
                        % (result.get("error"), context))
        self.assertGreater(result["removed_candidates"], 0,
                           "no host candidate was removed from the SDP\n" + context)
        for line in result["offer_candidates"] + result["answer_candidates"]:
            self.assertIn(" typ relay", line, context)
        self.assertEqual(result["pc1_received"], 40, context)
        self.assertEqual(result["pc2_received"], 20, context)
        want_client = {"udp": "TurnClientUdpProtocol", "tcp": "TurnClientTcpProtocol"}[transport]
        for side in ("pc1", "pc2"):
            info = result[side]
            self.assertEqual(info.get("local", {}).get("type"), "relay",
                             "%s selected local candidate is not relay\n%s" % (side, context))
            self.assertEqual(info.get("remote", {}).get("type"), "relay", context)
            self.assertEqual(info.get("local", {}).get("host"), h.LOOPBACK, context)
            self.assertEqual(info.get("turn_client"), want_client, context)
        return result

    def test_data_channel_over_turn_udp(self):
        server = self.start_server()
        self.run_aiortc(server, "udp")

    def test_data_channel_over_turn_tcp(self):
        server = self.start_server()
        self.run_aiortc(server, "tcp")


# --------------------------------------------------------------------------------------
# 6. Headless Chromium: fake-camera video both ways, relay-only, per TURN transport.
# --------------------------------------------------------------------------------------

class BrowserTest(TurnTestCase):

    def setUp(self):
        super().setUp()
        problems = []
        if h.NODE is None:
            problems.append("node not found (apt nodejs)")
        if not os.access(CHROMIUM, os.X_OK):
            problems.append("%s not found (apt chromium)" % CHROMIUM)
        if not os.path.isdir(os.path.join(h.BROWSER_DIR, "node_modules", "playwright-core")):
            problems.append("playwright-core not installed: run scripts/install-npm-test-deps.sh")
        if problems:
            self.fail("; ".join(problems))

    def run_browser(self, server, expect, url):
        args = [h.NODE, os.path.join(h.BROWSER_DIR, "turn_relay.test.mjs"),
                "--username", h.USER, "--credential", h.PASSWORD, "--timeout", "30",
                "%s=%s" % (expect, url)]
        env = dict(os.environ, CHROMIUM=CHROMIUM)
        try:
            done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=180, cwd=h.BROWSER_DIR, env=env)
        except subprocess.TimeoutExpired as expired:
            self.fail("browser test timed out: %s\n%s%s" % (" ".join(args), expired.stdout,
                                                           self.server_log(server)))
        context = "$ %s\nexit %s\nstdout:\n%s\nstderr:\n%s%s" % (
            " ".join(args), done.returncode, done.stdout[-6000:], done.stderr[-3000:],
            self.server_log(server))
        self.assertEqual(done.returncode, 0, context)
        self.assertIn("1 passed, 0 failed", done.stdout, context)
        self.assertIn("PASS %s" % expect, done.stdout, context)
        return done.stdout

    def test_video_over_turn_udp(self):
        server = self.start_server()
        self.run_browser(server, "udp", "turn:%s:%d?transport=udp" % (h.LOOPBACK, server.port))

    def test_video_over_turn_tcp(self):
        server = self.start_server()
        self.run_browser(server, "tcp", "turn:%s:%d?transport=tcp" % (h.LOOPBACK, server.port))

    def test_video_over_turns_tls(self):
        server = start_tls_server(self)
        self.run_browser(server, "tls", "turns:%s:%d?transport=tcp" % (h.LOOPBACK, server.tls_port))


if __name__ == "__main__":
    unittest.main()
