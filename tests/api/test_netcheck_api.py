#!/usr/bin/env python3
"""The network check's server side (docs/netcheck.md "The server side") against a running
`parley serve`: POST /api/v1/netcheck, its WebSocket echo and POST /api/v1/netcheck/grade.

Standard library only; the server, HTTPS and WebSocket helpers come from test_web_api.py."""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_web_api import (  # noqa: E402  (after the path is set)
    FOREIGN_ORIGIN, IO_TIMEOUT, ServerTestCase, UpgradeRefused, WsClient, tls_context)

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def presented_certificate_sha256(port):
    """SHA-256 of the DER of the certificate the server presents on `port`."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    with tls_context().wrap_socket(raw, server_hostname="localhost") as sock:
        return hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()


def check(check_id, verdict, **facts):
    result = {"id": check_id, "title": check_id, "verdict": verdict, "durationMs": 10,
              "summary": f"{check_id} {verdict}", "failure": "", "target": "", "details": {}}
    result.update(facts)
    return result


def open_network_report():
    """Every check of `parley netcheck` passing, bandwidth well above two streams each way."""
    checks = [check(i, "pass") for i in (
        "url", "dns", "tcp_443", "tls_443", "https", "wss_direct", "stun_udp", "stun_tcp",
        "nat_behaviour", "turn_udp", "turn_tcp", "turn_tls", "turn_dtls", "turn_tls_443")]
    checks += [check("proxy", "skipped"), check("wss_proxy", "skipped"),
               check("turn_tls_443_proxy", "skipped"),
               check("path_quality", "pass", details={"rttMs": 20, "jitterMs": 2, "lossPercent": 0}),
               check("bandwidth_up", "pass", details={"kbps": 8000}),
               check("bandwidth_down", "pass", details={"kbps": 8000})]
    return {"version": 1, "url": "https://localhost", "client": "test", "checks": checks}


def blocked_report():
    """No signaling at all: https and both WebSocket checks failed."""
    report = open_network_report()
    for entry in report["checks"]:
        if entry["id"] in ("https", "wss_direct"):
            entry.update(verdict="fail", failure="timeout", summary="timed out")
    return report


class NetcheckSessionTest(ServerTestCase):
    create_alice = False
    settings = ("netcheck.sessions_per_minute=600",)  # every test talks from 127.0.0.1

    def new_session(self, browser=None, **kwargs):
        reply = (browser or self.browser()).post("/api/v1/netcheck", **kwargs)
        self.assertEqual(reply.status, 201, reply)
        self.assertIn("application/json", reply.header("Content-Type"))
        return reply.json()

    def test_session_shape_and_types(self):
        before = int(time.time())
        session = self.new_session()
        self.assertEqual(session["version"], 1)
        self.assertRegex(session["id"], r"^[0-9a-f]{16}$")
        self.assertEqual(session["ttlSeconds"], 300)
        self.assertRegex(session["expiresAt"], RFC3339)
        expires = time.mktime(time.strptime(session["expiresAt"], "%Y-%m-%dT%H:%M:%SZ"))
        expires -= time.timezone  # mktime reads local time; the string is UTC
        self.assertGreaterEqual(expires, before + 300 - 1)
        self.assertLessEqual(expires, int(time.time()) + 300 + 1)
        self.assertEqual(session["host"], "localhost")

        fingerprints = session["tls"]["certificateSha256"]
        self.assertIsInstance(fingerprints, list)
        self.assertGreaterEqual(len(fingerprints), 1)
        for fingerprint in fingerprints:
            self.assertRegex(fingerprint, HEX64)

        turn = session["turn"]
        self.assertEqual(turn["host"], "localhost")
        self.assertEqual(turn["udpPort"], self.server.stun_port)
        self.assertEqual(turn["tcpPort"], self.server.stun_port)
        self.assertEqual(turn["tlsPort"], self.server.tls_port)
        for key in ("udpPort", "tcpPort", "tlsPort", "dtlsPort", "httpsPort"):
            self.assertIsInstance(turn[key], int, key)
        self.assertEqual(turn["realm"], "parley")
        # A TURN REST credential for "netcheck-ID", valid for ttlSeconds only.
        expiry, user = turn["username"].split(":", 1)
        self.assertEqual(user, "netcheck-" + session["id"])
        self.assertTrue(before + 300 <= int(expiry) <= int(time.time()) + 300)
        self.assertTrue(turn["credential"])
        with open(os.path.join(self.server.data_dir, "turn-secret"), encoding="ascii") as file:
            secret = file.read()
        expected = base64.b64encode(hmac.new(secret.strip().encode(), turn["username"].encode(),
                                             hashlib.sha1).digest()).decode()
        self.assertEqual(turn["credential"], expected)

        # iceServers: the shape of GET /api/v1/ice-servers, with this credential.
        servers = session["iceServers"]
        self.assertIsInstance(servers, list)
        stun = [s for s in servers if "username" not in s]
        relays = [s for s in servers if "username" in s]
        self.assertEqual(stun, [{"urls": [f"stun:localhost:{self.server.stun_port}"]}])
        self.assertEqual(len(relays), 1)
        self.assertEqual(relays[0]["username"], turn["username"])
        self.assertEqual(relays[0]["credential"], turn["credential"])
        self.assertIn(f"turn:localhost:{self.server.stun_port}?transport=udp", relays[0]["urls"])
        self.assertIn(f"turns:localhost:{self.server.tls_port}?transport=tcp", relays[0]["urls"])

        probe = session["probe"]
        self.assertIsInstance(probe["ticket"], str)
        self.assertTrue(probe["ticket"])
        self.assertEqual(probe["maxKbps"], 10000)
        self.assertEqual(probe["maxSeconds"], 4)
        self.assertEqual(probe["maxEchoPackets"], 200)
        self.assertRegex(probe["peer"], r"^127\.0\.0\.1:\d+$")

        echo = session["echo"]
        self.assertEqual(echo["path"], "/api/v1/netcheck/echo?ticket=" + probe["ticket"])
        self.assertEqual(echo["maxMessages"], 32)

    def test_each_session_is_new(self):
        first, second = self.new_session(), self.new_session()
        self.assertNotEqual(first["id"], second["id"])
        self.assertNotEqual(first["probe"]["ticket"], second["probe"]["ticket"])

    def test_certificate_fingerprints_are_the_presented_certificates(self):
        session = self.new_session()
        fingerprints = session["tls"]["certificateSha256"]
        self.assertIn(presented_certificate_sha256(self.server.https_port), fingerprints)
        self.assertIn(presented_certificate_sha256(self.server.tls_port), fingerprints)

    def test_origin_and_body_and_method(self):
        self.assert_error(self.browser().post("/api/v1/netcheck", origin=FOREIGN_ORIGIN),
                          403, "bad_origin")
        self.new_session(origin=self.server.origin)
        self.new_session(body={})
        self.assert_error(self.browser().post("/api/v1/netcheck", body="{"), 400, "bad_json")
        self.assert_error(self.browser().post("/api/v1/netcheck", body={"x": 1}),
                          400, "bad_request")
        reply = self.browser().get("/api/v1/netcheck")
        self.assert_error(reply, 405, "method_not_allowed")
        self.assertEqual(reply.header("Allow"), "POST")

    def test_metrics_count_sessions(self):
        self.new_session()
        metrics = self.browser().get("/metrics").body.decode()
        match = re.search(r"^parley_netcheck_sessions_total (\d+)$", metrics, re.M)
        self.assertIsNotNone(match, metrics)
        self.assertGreaterEqual(int(match.group(1)), 1)
        for name in ("parley_probe_datagrams_total", "parley_probe_bytes_sent_total",
                     "parley_probe_dropped_total", "parley_probe_sessions_total"):
            self.assertRegex(metrics, rf"(?m)^{name} \d+$")


class NetcheckCertificateReloadTest(ServerTestCase):
    create_alice = False

    def fingerprints(self):
        reply = self.browser().post("/api/v1/netcheck")
        self.assertEqual(reply.status, 201, reply)
        return reply.json()["tls"]["certificateSha256"]

    def test_fingerprints_follow_a_sighup_reload(self):
        before = self.fingerprints()
        self.assertEqual(before, [presented_certificate_sha256(self.server.https_port)])
        # Renew the self-signed certificate as an operator would, then SIGHUP.
        os.remove(os.path.join(self.server.data_dir, "tls", "self-signed.key"))
        self.server.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.server.wait_for_log(r"https certificate reloaded", 20),
                             self.server.log())
        after = self.fingerprints()
        self.assertNotEqual(after, before)
        self.assertIn(presented_certificate_sha256(self.server.https_port), after)
        self.assertIn(presented_certificate_sha256(self.server.tls_port), after)


class NetcheckRateLimitTest(ServerTestCase):
    create_alice = False
    settings = ("netcheck.sessions_per_minute=2",)

    def test_sessions_beyond_the_limit_get_429_per_address(self):
        browser = self.browser("127.0.0.2")
        for _ in range(2):
            self.assertEqual(browser.post("/api/v1/netcheck").status, 201)
        reply = browser.post("/api/v1/netcheck")
        self.assert_error(reply, 429, "too_many_requests")
        retry = int(reply.header("Retry-After"))
        self.assertTrue(1 <= retry <= 60, retry)
        # Another address has its own budget.
        self.assertEqual(self.browser("127.0.0.3").post("/api/v1/netcheck").status, 201)


class NetcheckGradeRateTest(ServerTestCase):
    create_alice = False
    settings = ("web.client_errors_per_minute=2",)

    def test_grades_beyond_the_limit_get_429(self):
        browser = self.browser("127.0.0.4")
        for _ in range(2):
            reply = browser.post("/api/v1/netcheck/grade", body=open_network_report())
            self.assertEqual(reply.status, 200, reply)
        reply = browser.post("/api/v1/netcheck/grade", body=open_network_report())
        self.assert_error(reply, 429, "too_many_requests")
        self.assertTrue(reply.header("Retry-After"))


class NetcheckDisabledTest(ServerTestCase):
    create_alice = False
    settings = ("netcheck.enabled=false",)

    def test_every_path_is_404(self):
        self.assert_error(self.browser().post("/api/v1/netcheck"), 404, "not_found")
        self.assert_error(self.browser().post("/api/v1/netcheck/grade", body={}), 404, "not_found")
        with self.assertRaises(UpgradeRefused) as refused:
            WsClient(self.server, "/api/v1/netcheck/echo?ticket=x")
        self.assertEqual(refused.exception.reply.status, 404)


class NetcheckEchoTest(ServerTestCase):
    create_alice = False
    settings = ("netcheck.sessions_per_minute=600",)

    def session(self):
        reply = self.browser().post("/api/v1/netcheck")
        self.assertEqual(reply.status, 201, reply)
        return reply.json()

    def echo(self, path):
        client = WsClient(self.server, path)
        self.addCleanup(client.close)
        return client

    def test_round_trip_then_close_after_max_messages(self):
        session = self.session()
        client = self.echo(session["echo"]["path"])
        limit = session["echo"]["maxMessages"]
        for n in range(limit):
            text = json.dumps({"n": n, "pad": "x" * (n * 30)})
            self.assertLessEqual(len(text), 1024)
            client.send_text(text)
            event = client.next_event()
            self.assertEqual(event, ("text", text))
        code, _ = client.wait_close()
        self.assertEqual(code, 1000)

    def test_oversized_message_closes_with_1009(self):
        client = self.echo(self.session()["echo"]["path"])
        client.send_text("x" * 1025)
        code, _ = client.wait_close()
        self.assertEqual(code, 1009)

    def test_bad_or_missing_ticket_is_refused_before_the_upgrade(self):
        ticket = self.session()["probe"]["ticket"]
        forged = ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")
        for path in ("/api/v1/netcheck/echo", "/api/v1/netcheck/echo?ticket=",
                     "/api/v1/netcheck/echo?ticket=" + forged,
                     "/api/v1/netcheck/echo?ticket=not.a-token"):
            with self.assertRaises(UpgradeRefused, msg=path) as refused:
                WsClient(self.server, path)
            self.assert_error(refused.exception.reply, 401, "invalid_token")

    def test_foreign_origin_is_refused(self):
        with self.assertRaises(UpgradeRefused) as refused:
            WsClient(self.server, self.session()["echo"]["path"], origin=FOREIGN_ORIGIN)
        self.assert_error(refused.exception.reply, 403, "bad_origin")

    def test_plain_get_is_426_and_other_api_upgrades_are_404(self):
        reply = self.browser().get("/api/v1/netcheck/echo")
        self.assert_error(reply, 426, "upgrade_required")
        with self.assertRaises(UpgradeRefused) as refused:
            WsClient(self.server, "/api/v1/rooms")
        self.assertEqual(refused.exception.reply.status, 404)


class NetcheckEchoTimeLimitTest(ServerTestCase):
    create_alice = False

    def test_idle_echo_closes_after_30_seconds(self):
        session = self.browser().post("/api/v1/netcheck").json()
        client = WsClient(self.server, session["echo"]["path"])
        self.addCleanup(client.close)
        started = time.monotonic()
        client.send_text("hello")
        self.assertEqual(client.next_event(), ("text", "hello"))
        code, _ = client.wait_close(timeout=40)
        self.assertEqual(code, 1000)
        self.assertGreaterEqual(time.monotonic() - started, 28)


class NetcheckGradeTest(ServerTestCase):
    create_alice = False
    settings = ("web.client_errors_per_minute=600",)  # grading shares its per-address rate

    def grade(self, body):
        reply = self.browser().post("/api/v1/netcheck/grade", body=body)
        self.assertEqual(reply.status, 200, reply)
        result = reply.json()
        self.assertEqual(set(result), {"grade", "gradeTitle", "headline", "remedies"})
        self.assertIsInstance(result["headline"], str)
        self.assertTrue(result["headline"])
        self.assertIsInstance(result["remedies"], list)
        return result

    def test_open_network_is_best(self):
        result = self.grade(open_network_report())
        self.assertEqual(result["grade"], "best")
        self.assertEqual(result["gradeTitle"], "Best experience")
        self.assertEqual(result["remedies"], [])

    def test_no_signaling_is_blocked_with_remedies(self):
        result = self.grade(blocked_report())
        self.assertEqual(result["grade"], "blocked")
        self.assertGreaterEqual(len(result["remedies"]), 1)

    def test_posted_grade_and_remedies_are_ignored(self):
        report = blocked_report()
        report["assessment"] = {"grade": "best", "remedies": ["nothing to do"]}
        report["grade"] = "best"
        self.assertEqual(self.grade(report)["grade"], "blocked")

    def test_bad_input(self):
        self.assert_error(self.browser().post("/api/v1/netcheck/grade", body="{nope"),
                          400, "bad_json")
        self.assert_error(self.browser().post("/api/v1/netcheck/grade", body=[1]),
                          400, "bad_request")
        reply = self.browser().post("/api/v1/netcheck/grade", body={"checks": "many"})
        self.assert_error(reply, 400, "bad_request")
        too_many = open_network_report()
        too_many["checks"] = [check("dns", "pass")] * 65
        self.assert_error(self.browser().post("/api/v1/netcheck/grade", body=too_many),
                          400, "bad_request")
        self.assert_error(self.browser().post("/api/v1/netcheck/grade", body=open_network_report(),
                                              origin=FOREIGN_ORIGIN), 403, "bad_origin")


if __name__ == "__main__":
    unittest.main(verbosity=2)
