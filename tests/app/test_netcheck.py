#!/usr/bin/env python3
"""`parley netcheck URL` (docs/netcheck.md) against real peers on loopback: a `parley serve`,
squid as the corporate proxy (open, with Basic authentication, refusing CONNECT), a TLS server
that is not Parley, a closed port, a name that does not resolve and bad arguments. Every run is
timed: the whole check must finish in under a minute. The binary comes from $PARLEY_BIN."""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

PARLEY = os.path.abspath(os.environ["PARLEY_BIN"]) if os.environ.get("PARLEY_BIN") else ""
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
SCHEMA = os.path.join(SOURCE_DIR, "docs", "netcheck.schema.json")
# docs/netcheck.md "The checks", in order.
CHECK_IDS = ["url", "proxy", "dns", "tcp_443", "tls_443", "https", "wss_direct", "wss_proxy",
             "stun_udp", "stun_tcp", "nat_behaviour", "turn_udp", "turn_tcp", "turn_tls",
             "turn_dtls", "turn_tls_443", "turn_tls_443_proxy", "path_quality", "bandwidth_up",
             "bandwidth_down"]
TURN_IDS = ["turn_udp", "turn_tcp", "turn_tls", "turn_dtls", "turn_tls_443"]
RUN_LIMIT = 60  # seconds: docs/netcheck.md "under a minute"
START_TIMEOUT = 20
PROXY_USER, PROXY_PASSWORD = "carl", "corp-proxy-Passw0rd"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class LineReader:
    """Collects a process's stderr lines on a thread."""

    def __init__(self, stream):
        self.lines = []
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            with self._lock:
                self.lines.append(line)

    def wait_for(self, pattern, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            with self._lock:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
            time.sleep(0.05)
        return None

    def text(self):
        with self._lock:
            return "".join(self.lines)


class Squid:
    """squid on a free loopback port with a generated config: CONNECT only to `connect_port`
    (the usual `deny CONNECT !SSL_ports`), optionally Basic authentication (basic_ncsa_auth
    and an htpasswd file, as tests/lab/lib/proxies.mjs runs it)."""

    def __init__(self, directory, connect_port, auth=False):
        self.dir = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # squid drops privileges to its own user, which must reach and write the folder.
        os.chmod(os.path.dirname(directory), 0o755)
        os.chmod(directory, 0o777)
        auth_lines = ""
        if auth:
            htpasswd = os.path.join(directory, "htpasswd")
            subprocess.run(["htpasswd", "-b", "-c", "-B", htpasswd, PROXY_USER, PROXY_PASSWORD],
                           check=True, capture_output=True, timeout=20)
            os.chmod(htpasswd, 0o644)
            auth_lines = (f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {htpasswd}\n"
                          "auth_param basic realm Test proxy\n"
                          "auth_param basic children 2\n"
                          "acl authenticated proxy_auth REQUIRED\n"
                          "http_access deny !authenticated\n")
        conf = os.path.join(directory, "squid.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f"""http_port 127.0.0.1:{self.port}
visible_hostname netcheck-test
pid_filename {directory}/squid.pid
access_log stdio:{directory}/access.log squid
cache_log {directory}/cache.log
cache_store_log none
coredump_dir {directory}
cache deny all
cache_mem 8 MB
logfile_rotate 0
shutdown_lifetime 0 seconds
netdb_filename none
acl SSL_ports port {connect_port}
acl CONNECT method CONNECT
acl localhost_src src 127.0.0.1
http_access deny CONNECT !SSL_ports
{auth_lines}http_access allow localhost_src
http_access deny all
""")
        self.process = subprocess.Popen(["squid", "-N", "-f", conf], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        if not wait_for_port(self.port, self.process):
            stop(self.process)
            raise RuntimeError("squid did not start: " + self.process.stderr.read())

    def stop(self):
        stop(self.process)


class NotParley:
    """An HTTPS server (Python's http.server with a throw-away certificate) answering 404 to
    everything: a web server, but not Parley."""

    def __init__(self, directory):
        cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=not-parley.test", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=20)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        class Handler(http.server.BaseHTTPRequestHandler):
            def _not_found(self):
                body = b"<h1>Not Found</h1>"
                self.send_response(404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _not_found

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class NetcheckTestCase(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="parley-netcheck-")
        self.cwd = self._dir.name
        # No proxy from the developer's environment unless a test sets one.
        self.env = {k: v for k, v in os.environ.items()
                    if k.lower() not in ("https_proxy", "no_proxy", "http_proxy", "all_proxy")
                    and k != "PARLEY_CONFIG"}

    def tearDown(self):
        self._dir.cleanup()

    def subdir(self, name):
        path = os.path.join(self.cwd, name)
        os.makedirs(path, exist_ok=True)
        return path

    def netcheck(self, *args, env=None):
        """Runs `parley netcheck ARGS`, asserting it finishes in under a minute."""
        started = time.monotonic()
        result = subprocess.run([PARLEY, "netcheck", *args], cwd=self.cwd, env=env or self.env,
                                capture_output=True, text=True, timeout=RUN_LIMIT + 30)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, RUN_LIMIT, f"netcheck {args} took {elapsed:.1f} s")
        return result

    def netcheck_json(self, *args, env=None):
        result = self.netcheck(*args, "--json", env=env)
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            self.fail(f"not one JSON document on stdout (exit {result.returncode}):\n"
                      f"{result.stdout}\n{result.stderr}")
        self.validate(report)
        return result, report

    def validate(self, report):
        if not os.path.exists(SCHEMA):
            self.skipTest("docs/netcheck.schema.json is not there yet")
        import jsonschema  # python3-jsonschema

        with open(SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator(schema).validate(report)
        self.assertEqual([c["id"] for c in report["checks"]], CHECK_IDS,
                         "every documented id, in order")

    @staticmethod
    def checks(report):
        return {c["id"]: c for c in report["checks"]}

    def assert_verdicts(self, report, expected):
        checks = self.checks(report)
        got = {i: checks[i]["verdict"] for i in expected}
        self.assertEqual(got, expected, json.dumps(report["checks"], indent=1))


class ServerTestCase(NetcheckTestCase):
    """One `parley serve` on loopback for the whole class: HTTPS, STUN/TURN on UDP, TCP, TLS
    and DTLS, TURN over the HTTPS port, and the probe peer behind the relay."""

    @classmethod
    def setUpClass(cls):
        cls._server_dir = tempfile.TemporaryDirectory(prefix="parley-netcheck-server-")
        directory = cls._server_dir.name
        env = {k: v for k, v in os.environ.items() if k != "PARLEY_CONFIG"}
        cls.server = subprocess.Popen(
            [PARLEY, "serve", "--listen", "127.0.0.1", "--set", 'web.listen=["127.0.0.1"]',
             "--relay-address", "127.0.0.1", "--stun-port", "0", "--tls-port", "0",
             "--https-port", "0", "--http-port", "0", "--data-dir",
             os.path.join(directory, "data"),
             # Loopback tests run many checks a minute.
             "--set", "netcheck.sessions_per_minute=100"],
            cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        cls.reader = LineReader(cls.server.stderr)
        if cls.reader.wait_for(r"ready at ") is None:
            stop(cls.server)
            raise RuntimeError("parley serve did not start:\n" + cls.reader.text())
        cls.https_port = int(cls.reader.wait_for(r"listening on https 127\.0\.0\.1:(\d+)")
                             .group(1))
        cls.url = f"https://127.0.0.1:{cls.https_port}"

    @classmethod
    def tearDownClass(cls):
        stop(cls.server)
        cls._server_dir.cleanup()


class OpenNetworkTest(ServerTestCase):
    def test_json_report_is_best_with_every_transport(self):
        result, report = self.netcheck_json(self.url)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(report["grade"], "best", json.dumps(report, indent=1))
        self.assert_verdicts(report, {
            "url": "pass", "proxy": "skipped", "dns": "pass", "tcp_443": "pass",
            "tls_443": "pass", "https": "pass", "wss_direct": "pass", "wss_proxy": "skipped",
            "stun_udp": "pass", "stun_tcp": "pass", "turn_udp": "pass", "turn_tcp": "pass",
            "turn_tls": "pass", "turn_dtls": "pass", "turn_tls_443": "pass",
            "turn_tls_443_proxy": "skipped", "path_quality": "pass", "bandwidth_up": "pass",
            "bandwidth_down": "pass"})
        checks = self.checks(report)
        # The fingerprint seen is the one the server published.
        self.assertTrue(checks["tls_443"]["details"]["certificateChecked"])
        self.assertEqual(checks["bandwidth_up"]["details"]["via"], "turn_udp")
        self.assertGreaterEqual(checks["bandwidth_down"]["details"]["streams"], 2)
        self.assertEqual(report["remedies"], [])
        # Nothing but the document on stdout; no credential anywhere.
        self.assertEqual(result.stdout.count("\n{"), 0)
        self.assertNotIn("credential", result.stdout + result.stderr)

    def test_human_output_names_the_grade(self):
        result = self.netcheck(self.url)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        lines = result.stdout.splitlines()
        # Not a terminal: one line per finished check, then the grade.
        self.assertEqual(len([line for line in lines if re.match(r"^\[(pass|warn|FAIL|skip)\] ",
                                                                 line)]), len(CHECK_IDS))
        self.assertIn("Result: Best experience", result.stdout)
        self.assertNotIn("\x1b[", result.stdout)

    def test_terminal_shows_checks_while_they_run(self):
        """On a terminal (a pseudo-terminal here) lines are redrawn in place and end as
        verdicts."""
        import pty

        leader, follower = pty.openpty()
        started = time.monotonic()
        process = subprocess.Popen([PARLEY, "netcheck", self.url], cwd=self.cwd, env=self.env,
                                   stdin=subprocess.DEVNULL, stdout=follower,
                                   stderr=subprocess.PIPE)
        os.close(follower)
        output = b""
        while time.monotonic() - started < RUN_LIMIT:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            output += chunk
        os.close(leader)
        process.wait(timeout=10)
        self.assertLess(time.monotonic() - started, RUN_LIMIT)
        self.assertEqual(process.returncode, 0, output.decode(errors="replace"))
        text = output.decode("utf-8", errors="replace")
        self.assertIn("\x1b[2K", text)      # lines rewritten in place
        self.assertRegex(text, "\x1b\\[\\d+A")  # the cursor goes back up to redraw
        self.assertIn("✓", text)
        self.assertIn("Best experience", text)

    def test_https_proxy_honours_no_proxy(self):
        env = dict(self.env, HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="localhost,127.0.0.1")
        result, report = self.netcheck_json(self.url, env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.checks(report)["proxy"]["verdict"], "skipped")


class ProxyTest(ServerTestCase):
    def test_through_squid_the_proxy_paths_pass(self):
        squid = Squid(self.subdir("squid"), self.https_port)
        self.addCleanup(squid.stop)
        result, report = self.netcheck_json(self.url, "--proxy", squid.url)
        self.assertIn(result.returncode, (0, 1), result.stdout + result.stderr)
        self.assert_verdicts(report, {"proxy": "pass", "tcp_443": "skipped", "https": "pass",
                                      "wss_proxy": "pass", "turn_tls_443_proxy": "pass"})
        self.assertEqual(report["proxy"], squid.url)
        # ... and went through squid: its log has the CONNECTs.
        with open(os.path.join(squid.dir, "access.log"), encoding="utf-8") as f:
            self.assertIn(f"CONNECT 127.0.0.1:{self.https_port}", f.read())

    def test_environment_proxy_is_used(self):
        squid = Squid(self.subdir("squid"), self.https_port)
        self.addCleanup(squid.stop)
        env = dict(self.env, https_proxy=squid.url)
        result, report = self.netcheck_json(self.url, env=env)
        self.assertIn(result.returncode, (0, 1), result.stdout + result.stderr)
        self.assertEqual(self.checks(report)["proxy"]["verdict"], "pass")
        # --no-proxy ignores it.
        result, report = self.netcheck_json(self.url, "--no-proxy", env=env)
        self.assertEqual(self.checks(report)["proxy"]["verdict"], "skipped")

    def test_proxy_authentication_is_named_and_credentials_work(self):
        squid = Squid(self.subdir("squid-auth"), self.https_port, auth=True)
        self.addCleanup(squid.stop)
        result, report = self.netcheck_json(self.url, "--proxy", squid.url)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        checks = self.checks(report)
        self.assertEqual(checks["proxy"]["failure"], "proxy_auth_required")
        self.assertEqual(checks["wss_proxy"]["failure"], "proxy_auth_required")
        self.assertTrue(any(f"127.0.0.1:{squid.port}" in r and "authentication" in r
                            for r in report["remedies"]), report["remedies"])

        credentials = f"{PROXY_USER}:{PROXY_PASSWORD}"
        for args in (["--proxy", squid.url, "--proxy-user", credentials],
                     ["--proxy", f"http://{credentials}@127.0.0.1:{squid.port}"]):
            with self.subTest(args=args[-1].replace(PROXY_PASSWORD, "***")):
                result, report = self.netcheck_json(self.url, *args)
                self.assertIn(result.returncode, (0, 1), result.stdout + result.stderr)
                self.assert_verdicts(report, {"proxy": "pass", "wss_proxy": "pass",
                                              "turn_tls_443_proxy": "pass"})
                self.assertNotIn(PROXY_PASSWORD, result.stdout + result.stderr)
                human = self.netcheck(self.url, *args)
                self.assertNotIn(PROXY_PASSWORD, human.stdout + human.stderr)

    def test_proxy_refusing_connect_is_blocked_and_named(self):
        squid = Squid(self.subdir("squid-443"), 443)  # CONNECT only to 443: ours is refused
        self.addCleanup(squid.stop)
        result, report = self.netcheck_json(self.url, "--proxy", squid.url)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertEqual(report["grade"], "blocked")
        proxy = self.checks(report)["proxy"]
        self.assertEqual(proxy["verdict"], "fail")
        self.assertEqual(proxy["failure"], "proxy_refused")
        self.assertIn(f"127.0.0.1:{squid.port}", proxy["summary"])
        human = self.netcheck(self.url, "--proxy", squid.url)
        self.assertEqual(human.returncode, 2)
        self.assertIn(f"127.0.0.1:{squid.port}", human.stdout)
        self.assertIn("Result: Blocked", human.stdout)

    def test_proxy_where_nothing_listens_is_blocked_and_named(self):
        port = free_port()
        result, report = self.netcheck_json(self.url, "--proxy", f"http://127.0.0.1:{port}")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        proxy = self.checks(report)["proxy"]
        self.assertEqual(proxy["verdict"], "fail")
        self.assertIn(f"127.0.0.1:{port}", proxy["summary"])


class BadInputTest(NetcheckTestCase):
    def test_wrong_urls_are_usage_errors(self):
        for args in (["ftp://x"], ["nonsense"], [], ["https://"], ["https://host:99999"],
                     ["https://user:secret@host"], ["https://x", "--timeout", "1"],
                     ["https://x", "--bogus"], ["https://x", "--proxy", "socks5://p:1"]):
            with self.subTest(args=args):
                result = self.netcheck(*args)
                self.assertEqual(result.returncode, 3, result.stdout + result.stderr)
                self.assertEqual(result.stdout, "")
                self.assertNotEqual(result.stderr.strip(), "")
                self.assertNotIn("secret", result.stderr)
        self.assertIn("ftp is not https", self.netcheck("ftp://x").stderr)
        # Other subcommands keep their usage status.
        other = subprocess.run([PARLEY, "serve", "--bogus"], capture_output=True, text=True,
                               timeout=20)
        self.assertEqual(other.returncode, 2)

    def test_help(self):
        result = self.netcheck("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        for word in ("URL", "--json", "--proxy", "--proxy-user", "--no-proxy", "--timeout"):
            self.assertIn(word, result.stdout)

    def test_closed_port_is_blocked_and_says_refused(self):
        port = free_port()
        result, report = self.netcheck_json(f"https://127.0.0.1:{port}")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        tcp = self.checks(report)["tcp_443"]
        self.assertEqual((tcp["verdict"], tcp["failure"]), ("fail", "refused"))
        human = self.netcheck(f"https://127.0.0.1:{port}")
        self.assertEqual(human.returncode, 2)
        self.assertIn(f"127.0.0.1:{port}", human.stdout)
        self.assertIn("Result: Blocked", human.stdout)

    def test_not_parley_is_blocked_and_said(self):
        server = NotParley(self.subdir("not-parley"))
        self.addCleanup(server.stop)
        url = f"https://127.0.0.1:{server.port}"
        result, report = self.netcheck_json(url)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        https = self.checks(report)["https"]
        self.assertEqual((https["verdict"], https["failure"]), ("fail", "not_parley"))
        self.assertIn("404", https["summary"])
        human = self.netcheck(url)
        self.assertEqual(human.returncode, 2)
        self.assertIn("not a Parley server", human.stdout)

    def test_dns_failure_is_blocked_and_says_dns(self):
        result, report = self.netcheck_json("https://no-such-host.invalid")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        dns = self.checks(report)["dns"]
        self.assertEqual((dns["verdict"], dns["failure"]), ("fail", "dns"))
        self.assertIn("no-such-host.invalid did not resolve", dns["summary"])
        human = self.netcheck("https://no-such-host.invalid")
        self.assertEqual(human.returncode, 2)
        self.assertIn("did not resolve", human.stdout)


if __name__ == "__main__":
    if not PARLEY:
        raise SystemExit("set PARLEY_BIN to the parley binary")
    unittest.main(verbosity=2)
