#!/usr/bin/env python3
"""Command-line tests for the parley binary: exit statuses, config error messages, start-up
and shutdown. Standard library only; the binary comes from $PARLEY_BIN (set by CTest)."""

import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

PARLEY = os.path.abspath(os.environ["PARLEY_BIN"]) if os.environ.get("PARLEY_BIN") else ""
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(SOURCE_DIR, "docs", "parley.example.toml")
TIMEOUT = 10  # seconds for any single command; nothing may hang the suite
# Credentials the tests use; none of them may ever appear in parley's output.
SECRET = "test-rest-secret-0123456789"
PASSWORD = "test-password-alice"


class CliTestCase(unittest.TestCase):
    """Runs parley in an empty working directory with no PARLEY_CONFIG, so only what a test
    writes there is picked up."""

    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="parley-cli-")
        self.cwd = self._dir.name
        self.env = {k: v for k, v in os.environ.items() if k != "PARLEY_CONFIG"}

    def tearDown(self):
        self._dir.cleanup()

    def write(self, text, name="parley.toml"):
        path = os.path.join(self.cwd, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return name

    def run_parley(self, *args, env=None):
        return subprocess.run([PARLEY, *args], cwd=self.cwd, env=env or self.env,
                              capture_output=True, text=True, timeout=TIMEOUT)

    def assert_config_error(self, result, *fragments):
        """Exit status 2, nothing started, and each fragment on some 'parley: ' line."""
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertNotIn("listening on", result.stderr)
        lines = result.stderr.splitlines()
        for fragment in fragments:
            self.assertTrue(any(line.startswith("parley: ") and fragment in line
                                for line in lines),
                            f"{fragment!r} not in stderr:\n{result.stderr}")


class VersionAndHelpTest(CliTestCase):
    def test_version(self):
        result = self.run_parley("--version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "parley 0.1.0")

    def test_help_on_every_level(self):
        for args in ([], ["serve"], ["turn"], ["config"], ["config", "check"],
                     ["config", "print"]):
            with self.subTest(args=args):
                result = self.run_parley(*args, "--help")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("Usage", result.stdout)

    def test_help_lists_flags(self):
        out = self.run_parley("serve", "--help").stdout
        for flag in ("--config", "--set", "--listen", "--stun-port", "--alternate-address",
                     "--threads", "--log-level", "--log-format", "--data-dir", "--relay-address",
                     "--external-address", "--turn-user", "--turn-secret", "--allow-peer",
                     "--tls-port", "--no-tls"):
            self.assertIn(flag, out)

    def test_turn_help_says_it_needs_credentials(self):
        out = self.run_parley("turn", "--help").stdout
        self.assertIn("STUN/TURN only, for relay nodes", out)
        self.assertIn("needs the deployment's TURN credentials", out)

    def test_top_level_help_lists_commands(self):
        out = self.run_parley("--help").stdout
        for command in ("serve", "turn", "config"):
            self.assertIn(command, out)


class UsageErrorTest(CliTestCase):
    def test_unknown_flag(self):
        result = self.run_parley("serve", "--bogus")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--bogus", result.stderr)

    def test_missing_subcommand(self):
        self.assertEqual(self.run_parley().returncode, 2)
        self.assertEqual(self.run_parley("config").returncode, 2)

    def test_unknown_subcommand(self):
        self.assertEqual(self.run_parley("relay").returncode, 2)

    def test_config_check_needs_a_file(self):
        self.assertEqual(self.run_parley("config", "check").returncode, 2)


class ConfigErrorTest(CliTestCase):
    def test_unknown_key_with_suggestion(self):
        name = self.write("[stun]\nport = 3478\nprot = 3479\n")
        self.assert_config_error(
            self.run_parley("config", "check", name),
            "parley.toml:3:1: unknown key 'stun.prot' (did you mean 'stun.port'?)")

    def test_unknown_table(self):
        name = self.write("[stun]\n[video]\nrealm = \"x\"\n")
        self.assert_config_error(self.run_parley("config", "check", name),
                                 "parley.toml:2:1: unknown table 'video'")

    def test_port_out_of_range(self):
        name = self.write("[stun]\nport = 70000\n")
        self.assert_config_error(
            self.run_parley("config", "check", name),
            "parley.toml:2:8: stun.port: expected an integer from 0 to 65535, got 70000")

    def test_invalid_listen_address(self):
        name = self.write('[stun]\nlisten = ["10.0.0.1", "10.0.0.300"]\n')
        self.assert_config_error(self.run_parley("config", "check", name),
                                 'stun.listen[1]: "10.0.0.300" is not an IP address',
                                 "parley.toml:2:")

    def test_wrong_type(self):
        name = self.write('[stun]\nudp = "yes"\n')
        self.assert_config_error(self.run_parley("config", "check", name),
                                 "parley.toml:2:7: stun.udp: expected a boolean, got string")

    def test_syntax_error(self):
        name = self.write("[stun]\nport = 3478\nudp = tru\n")
        result = self.run_parley("config", "check", name)
        self.assert_config_error(result, "parley.toml:3:")
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)

    def test_missing_file(self):
        self.assert_config_error(self.run_parley("config", "check", "missing.toml"),
                                 "cannot read missing.toml: No such file or directory")

    def test_every_error_reported_at_once(self):
        name = self.write('[stun]\nlisten = ["nope"]\nport = -1\nudp = false\ntcp = false\n'
                          '[log]\nlevel = "loud"\nformat = "xml"\n')
        result = self.run_parley("config", "check", name)
        self.assert_config_error(
            result,
            'parley.toml:2:11: stun.listen[0]: "nope" is not an IP address',
            "parley.toml:3:8: stun.port: expected an integer from 0 to 65535, got -1",
            "parley.toml:4:7: stun.udp: at least one of stun.udp and stun.tcp must be true",
            'parley.toml:7:9: log.level: expected one of trace, debug, info, warn, error, off, '
            'got "loud"',
            'parley.toml:8:10: log.format: expected "text" or "json", got "xml"')
        self.assertEqual(len(result.stderr.splitlines()), 5, result.stderr)

    def test_alternate_address_rules(self):
        self.assert_config_error(
            self.run_parley("config", "print", "--listen", "127.0.0.1", "--listen", "::1",
                            "--alternate-address", "127.0.0.2"),
            "--set stun.alternate_address: needs exactly one stun.listen address, got 2")
        self.assert_config_error(
            self.run_parley("config", "print", "--alternate-address", "::2"),
            "--set stun.alternate_address: ::2 is not the same address family")

    def test_override_errors_name_the_override(self):
        for args, fragment in (
                (["--set", "stun.port=70000"],
                 "--set stun.port: expected an integer from 0 to 65535, got 70000"),
                (["--stun-port", "70000"],
                 "--set stun.port: expected an integer from 0 to 65535, got 70000"),
                (["--set", "stun.prot=1"],
                 "--set stun.prot: unknown key 'stun.prot' (did you mean 'stun.port'?)"),
                (["--listen", "10.0.0.300"],
                 '--set stun.listen: stun.listen[0]: "10.0.0.300" is not an IP address'),
                (["--threads", "many"],
                 "--set server.threads: expected an integer from 0 to 1024, got string"),
                (["--log-level", "loud"], "--set log.level: expected one of trace"),
                (["--log-format", "xml"], '--set log.format: expected "text" or "json"'),
                (["--set", "nonsense"], "--set nonsense: expected KEY=VALUE")):
            for command in (["serve"], ["turn"], ["config", "print"]):
                with self.subTest(command=command, args=args):
                    self.assert_config_error(self.run_parley(*command, *args), fragment)

    def test_file_and_override_errors_together(self):
        name = self.write("[stun]\nport = 99999\n")
        self.assert_config_error(
            self.run_parley("serve", "--config", name, "--set", "stun.udp=1"),
            "parley.toml:2:8: stun.port: expected an integer from 0 to 65535, got 99999",
            "--set stun.udp: expected a boolean, got integer")

    def test_serve_with_missing_config(self):
        self.assert_config_error(self.run_parley("serve", "--config", "nope.toml"),
                                 "cannot read nope.toml: No such file or directory")

    def test_parley_config_env_names_the_file(self):
        env = dict(self.env, PARLEY_CONFIG=os.path.join(self.cwd, "absent.toml"))
        self.assert_config_error(self.run_parley("turn", env=env),
                                 "cannot read " + os.path.join(self.cwd, "absent.toml"))


class ConfigCheckAndPrintTest(CliTestCase):
    def test_check_ok(self):
        name = self.write("[stun]\nport = 3480\n")
        result = self.run_parley("config", "check", name)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "parley.toml: ok\n")

    def test_check_example_from_docs(self):
        result = self.run_parley("config", "check", EXAMPLE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, EXAMPLE + ": ok\n")

    def test_print_defaults(self):
        result = self.run_parley("config", "print")
        self.assertEqual(result.returncode, 0, result.stderr)
        for line in ('listen = ["127.0.0.1"]', "port = 3478", 'level = "info"', "threads = 0",
                     "tcp_max_message_size = 65555"):
            self.assertIn(line + "\n", result.stdout)

    def test_print_shows_overrides(self):
        result = self.run_parley("config", "print", "--set", "stun.port=4000", "--listen", "::1",
                                 "--listen", "127.0.0.1", "--log-level", "debug",
                                 "--log-format", "json", "--threads", "3", "--set",
                                 "stun.software=my stun", "--set", "log.modules.stun=trace")
        self.assertEqual(result.returncode, 0, result.stderr)
        for line in ("port = 4000", 'listen = ["::1", "127.0.0.1"]', 'level = "debug"',
                     'format = "json"', "threads = 3", 'software = "my stun"',
                     'stun = "trace"'):
            self.assertIn(line + "\n", result.stdout)

    def test_overrides_beat_the_file(self):
        self.write('[stun]\nport = 4000\nsoftware = "from file"\n', name="mine.toml")
        result = self.run_parley("config", "print", "--config", "mine.toml", "--stun-port",
                                 "4001")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("port = 4001\n", result.stdout)
        self.assertIn('software = "from file"\n', result.stdout)

    def test_convenience_flags_beat_set(self):
        result = self.run_parley("config", "print", "--set", "stun.port=4000", "--stun-port",
                                 "4001")
        self.assertIn("port = 4001\n", result.stdout)

    def test_file_lookup(self):
        self.write("[stun]\nport = 4100\n")  # ./parley.toml
        self.write("[stun]\nport = 4200\n", name="env.toml")
        self.assertIn("port = 4100\n", self.run_parley("config", "print").stdout)
        env = dict(self.env, PARLEY_CONFIG=os.path.join(self.cwd, "env.toml"))
        self.assertIn("port = 4200\n", self.run_parley("config", "print", env=env).stdout)
        self.write("[stun]\nport = 4300\n", name="flag.toml")
        self.assertIn("port = 4300\n",
                      self.run_parley("config", "print", "--config", "flag.toml", env=env).stdout)

    def test_print_round_trips_through_check(self):
        printed = self.run_parley("config", "print", "--stun-port", "0", "--log-format", "json",
                                  "--set", 'stun.software="a \\"quoted\\" name"')
        self.assertEqual(printed.returncode, 0, printed.stderr)
        name = self.write(printed.stdout, name="printed.toml")
        self.assertEqual(self.run_parley("config", "check", name).returncode, 0)
        again = self.run_parley("config", "print", "--config", name)
        self.assertEqual(again.stdout, printed.stdout)


class LineReader:
    """Collects a process's stderr lines on a thread, so waiting for one never blocks."""

    def __init__(self, stream):
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in self.lines:
            match = regex.search(line)
            if match:
                return match
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            match = regex.search(line)
            if match:
                return match
        return None

    def text(self):
        while True:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return "".join(self.lines)


def stun_binding_request():
    # RFC 5389 section 6: type 0x0001 (Binding request), length 0, magic cookie, 96-bit id.
    transaction = os.urandom(12)
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction, transaction


class ServerTestCase(CliTestCase):
    """Starts parley in the background and reads its log."""

    def expect_line(self, reader, pattern):
        """The match of the first log line matching pattern; fails showing the log if none."""
        match = reader.wait_for(pattern)
        if match is None:
            self.fail("no line matching %r in:\n%s" % (pattern, reader.text()))
        return match

    def start(self, *args):
        # TURN over TLS/DTLS is on by default on 5349: tests take a free port instead, so they
        # can run side by side.
        if "--no-tls" not in args and "--tls-port" not in args:
            args = (*args, "--tls-port", "0")
        # serve also runs HTTPS on 443 and the redirect on 80: free ports here too.
        if args and args[0] == "serve" and "--https-port" not in args:
            args = (*args, "--https-port", "0", "--http-port", "0")
        process = subprocess.Popen([PARLEY, *args], cwd=self.cwd, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._reap, process)
        return process, LineReader(process.stderr)

    @staticmethod
    def _reap(process):
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT)
        process.stderr.close()

    def stop(self, process, reader, sig=signal.SIGTERM):
        process.send_signal(sig)
        try:
            status = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("parley did not exit within 5 s of " + sig.name + ":\n" + reader.text())
        self.assertEqual(status, 0, reader.text())
        self.assertIn("shutting down", reader.text())


class ServerTest(ServerTestCase):
    def test_serve_starts_and_stops_on_sigterm(self):
        process, reader = self.start("serve", "--stun-port", "0")
        udp = reader.wait_for(r"listening on stun\+udp 127\.0\.0\.1:(\d+)$")
        self.assertIsNotNone(udp, reader.text())
        tcp = reader.wait_for(r"listening on stun\+tcp 127\.0\.0\.1:(\d+)$")
        self.assertIsNotNone(tcp, reader.text())
        self.assertNotEqual(int(udp.group(1)), 0)
        # Logged before the listening lines, so already read.
        self.assertIn("config: built-in defaults", "".join(reader.lines))
        self.assertIn("embedded default", "".join(reader.lines))
        self.stop(process, reader)

    def test_turn_starts_on_a_free_port_and_stops_on_sigint(self):
        port = free_port()
        name = self.write('[stun]\ntcp = false\n[turn]\nsecrets = ["%s"]\n' % SECRET,
                          name="udp-only.toml")
        process, reader = self.start("turn", "--config", name, "--stun-port", str(port),
                                     "--log-format", "json")
        line = reader.wait_for(r'"msg":"listening on stun\+udp 127\.0\.0\.1:%d"' % port)
        self.assertIsNotNone(line, reader.text())
        self.assertIn('"msg":"config: udp-only.toml"', "".join(reader.lines))
        self.expect_line(reader, r'"msg":"turn realm \\"parley\\", 0 users, 1 secrets"')
        self.stop(process, reader, signal.SIGINT)
        self.assertNotIn("stun+tcp", reader.text())

    def test_answers_a_binding_request(self):
        process, reader = self.start("serve", "--stun-port", "0", "--threads", "2")
        match = reader.wait_for(r"listening on stun\+udp 127\.0\.0\.1:(\d+)$")
        self.assertIsNotNone(match, reader.text())
        request, transaction = stun_binding_request()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(2)
            client.sendto(request, ("127.0.0.1", int(match.group(1))))
            response, _ = client.recvfrom(2048)
        message_type, _, cookie = struct.unpack("!HHI", response[:8])
        self.assertEqual(message_type, 0x0101)  # Binding success response
        self.assertEqual(cookie, 0x2112A442)
        self.assertEqual(response[8:20], transaction)
        self.stop(process, reader)

    def test_port_in_use_exits_1_naming_the_endpoint(self):
        udp, tcp, port = occupy_udp_and_tcp()
        with udp, tcp:
            try:
                result = self.run_parley("turn", "--stun-port", str(port),
                                         "--set", "turn.enabled=false")
            except subprocess.TimeoutExpired as timeout:
                self.fail("parley kept running on a port in use: %s" % timeout.stderr)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("127.0.0.1:%d" % port, result.stderr)
        self.assertNotIn("listening on", result.stderr)


class TurnConfigTest(CliTestCase):
    def test_print_shows_turn_keys_with_credentials_redacted(self):
        result = self.run_parley(
            "config", "print", "--turn-user", "alice:" + PASSWORD, "--turn-user",
            "bob:" + PASSWORD + "-bob", "--turn-secret", SECRET, "--relay-address", "127.0.0.1",
            "--relay-address", "::1", "--external-address", "203.0.113.4", "--allow-peer",
            "127.0.0.0/8", "--allow-peer", "::1", "--data-dir", "state", "--tls-port", "5350",
            "--no-tls")
        self.assertEqual(result.returncode, 0, result.stderr)
        for line in ("[turn]", "enabled = true", 'realm = "parley"', "users = [",
                     '  { name = "alice", password = "<redacted>" },',
                     '  { name = "bob", password = "<redacted>" },',
                     'secrets = ["<redacted>"]', 'relay_address = "127.0.0.1"',
                     'relay_address_v6 = "::1"', 'external_address = "203.0.113.4"',
                     'allowed_peers = ["127.0.0.0/8", "::1/128"]', "relay_port_min = 49152",
                     "bandwidth_per_allocation_kbps = 20000", 'data_dir = "state"', "[tls]",
                     "port = 5350", "enabled = false", "dtls = false", 'cert_file = ""'):
            self.assertIn(line + "\n", result.stdout)
        self.assertIn("not printed", result.stdout)
        for secret in (PASSWORD, SECRET):
            self.assertNotIn(secret, result.stdout)
            self.assertNotIn(secret, result.stderr)

    def test_printed_credentials_are_placeholders_not_passwords(self):
        printed = self.run_parley("config", "print", "--turn-secret", SECRET)
        name = self.write(printed.stdout, name="printed.toml")
        result = self.run_parley("config", "check", name)
        self.assert_config_error(result, 'turn.secrets[0]: is the placeholder "<redacted>"')
        self.assertNotIn(SECRET, result.stderr)

    def test_credential_errors_never_show_the_credential(self):
        short = "short-s3cret"
        for args, fragment in (
                (["--turn-secret", short],
                 "--set turn.secrets: turn.secrets[0]: must be at least 16 characters, got 12"),
                (["--turn-user", "alice"], "--set turn.users: turn.users[0]: missing 'password'"),
                (["--turn-user", ":" + short],
                 "--set turn.users: turn.users[0].name: must be 1 to 512 bytes, got 0"),
                (["--turn-user", "a:" + short, "--turn-user", "a:" + short + "2"],
                 'turn.users[1].name: user "a" is listed twice'),
                (["--set", 'turn.users=[{name="a", pasword="%s"}]' % short],
                 "unknown key 'turn.users[0].pasword' (did you mean "
                 "'turn.users[0].password'?)")):
            for command in (["serve"], ["turn"], ["config", "print"]):
                with self.subTest(command=command, args=args):
                    result = self.run_parley(*command, *args)
                    self.assert_config_error(result, fragment)
                    self.assertNotIn(short, result.stderr)

    def test_turn_flag_errors_name_the_key(self):
        for args, fragment in (
                (["--relay-address", "10.0.0.300"],
                 '--set turn.relay_address: "10.0.0.300" is not an IP address'),
                (["--relay-address", "0.0.0.0"],
                 "--set turn.relay_address: 0.0.0.0 is not a concrete address"),
                (["--external-address", "::1"],
                 "--set turn.external_address_v6: needs turn.relay_address_v6"),
                (["--allow-peer", "10.0.0.0/33"],
                 '--set turn.allowed_peers: turn.allowed_peers[0]: "10.0.0.0/33" is not an '
                 "address range: the prefix length must be 0 to 32 for IPv4"),
                (["--tls-port", "70000"],
                 "--set tls.port: expected an integer from 0 to 65535, got 70000"),
                (["--listen", "0.0.0.0"],
                 "--set stun.listen: turn.relay_address: required when turn.enabled is true "
                 "and the first IPv4 stun.listen address is 0.0.0.0")):
            with self.subTest(args=args):
                self.assert_config_error(self.run_parley("config", "print", *args), fragment)
        ok = self.run_parley("config", "print", "--listen", "0.0.0.0", "--relay-address",
                             "127.0.0.1")
        self.assertEqual(ok.returncode, 0, ok.stderr)

    def test_turn_without_credentials_exits_2(self):
        result = self.run_parley("turn", "--stun-port", "0")
        self.assert_config_error(result, "turn.enabled is true but there are no TURN "
                                         "credentials: a relay node ('parley turn') must share "
                                         "the deployment's TURN REST secret")
        self.assertIn("--turn-secret", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "parley-data")))


class TurnServerTest(ServerTestCase):
    def secret_file(self, data_dir):
        return os.path.join(self.cwd, data_dir, "turn-secret")

    def test_serve_generates_the_turn_secret_once(self):
        data_dir = "state"
        process, reader = self.start("serve", "--data-dir", data_dir, "--stun-port", "0",
                                     "--no-tls")
        path = self.secret_file(data_dir)
        self.expect_line(reader, r"TURN REST secret generated in state/turn-secret$")
        self.expect_line(reader, r"turn relay on 127\.0\.0\.1 ports 49152-65535$")
        self.expect_line(reader, r'turn realm "parley", 0 users, 1 secrets$')
        self.stop(process, reader)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o777, 0o700)
        with open(path, encoding="ascii") as f:
            secret = f.read()
        self.assertRegex(secret, r"^[A-Za-z0-9+/]{43}=\n$")  # base64 of 32 bytes
        self.assertNotIn(secret.strip(), reader.text())
        # Beside it only the web platform's state: database, token key, certificate.
        self.assertLessEqual(set(os.listdir(os.path.dirname(path))),
                             {"turn-secret", "parley.db", "parley.db-wal", "parley.db-shm",
                              "token-key", "tls"})

        process, reader = self.start("serve", "--data-dir", data_dir, "--stun-port", "0",
                                     "--no-tls")
        self.expect_line(reader, r"TURN REST secret read from state/turn-secret$")
        self.stop(process, reader)
        with open(path, encoding="ascii") as f:
            self.assertEqual(f.read(), secret)
        self.assertNotIn("generated", reader.text())

    def test_configured_credentials_need_no_generated_secret(self):
        # --no-tls: the self-signed certificate would otherwise go to the data directory too.
        process, reader = self.start("serve", "--stun-port", "0", "--turn-user",
                                     "alice:" + PASSWORD, "--external-address", "203.0.113.4",
                                     "--no-tls")
        self.expect_line(reader, r"turn relay on 127\.0\.0\.1 ports 49152-65535, "
                                 r"external address 203\.0\.113\.4$")
        self.expect_line(reader, r'turn realm "parley", 1 users, 0 secrets$')
        self.stop(process, reader)
        self.assertNotIn(PASSWORD, reader.text())
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "parley-data", "turn-secret")))

    def test_turn_disabled_says_so(self):
        process, reader = self.start("serve", "--stun-port", "0", "--set", "turn.enabled=false",
                                     "--no-tls")
        self.expect_line(reader, r"turn relay disabled")
        self.stop(process, reader)
        self.assertFalse(os.path.exists(os.path.join(self.cwd, "parley-data", "turn-secret")))

    def test_sighup_reloads_credentials(self):
        name = self.write('[turn]\nusers = [{ name = "alice", password = "%s" }]\n' % PASSWORD)
        process, reader = self.start("turn", "--config", name, "--stun-port", "0")
        self.expect_line(reader, r'turn realm "parley", 1 users, 0 secrets$')
        self.write('[turn]\nusers = [{ name = "alice", password = "%s" },\n'
                   '         { name = "bob", password = "%s-bob" }]\nsecrets = ["%s"]\n'
                   % (PASSWORD, PASSWORD, SECRET))
        process.send_signal(signal.SIGHUP)
        self.expect_line(reader, r"credentials reloaded \(2 users, 1 secrets\)$")

        # A broken file is reported and the server keeps running with the old credentials.
        self.write('[turn]\nsecrets = ["short-s3cret"]\n')
        process.send_signal(signal.SIGHUP)
        self.expect_line(reader, r"turn\.secrets\[0\]: must be at least 16 characters, got 12$")
        self.expect_line(reader, r"config not reloaded; keeping the old credentials$")
        # A relay node may not drop to no credentials at all.
        self.write("[turn]\n")
        process.send_signal(signal.SIGHUP)
        self.expect_line(reader, r"no TURN credentials.*keeping the old credentials$")
        self.assertIsNone(process.poll(), "parley exited after a bad SIGHUP reload")
        self.stop(process, reader)
        for secret in (PASSWORD, SECRET, "short-s3cret"):
            self.assertNotIn(secret, reader.text())

    def test_sighup_on_serve_keeps_the_generated_secret(self):
        name = self.write("[stun]\nport = 0\n")
        process, reader = self.start("serve", "--config", name)
        self.expect_line(reader, r"TURN REST secret generated in")
        process.send_signal(signal.SIGHUP)
        self.expect_line(reader, r"credentials reloaded \(0 users, 1 secrets\)$")
        self.stop(process, reader)

    def test_tls_certificate_is_generated_and_reloaded_on_sighup(self):
        data_dir = os.path.join(self.cwd, "data")
        process, reader = self.start("serve", "--stun-port", "0", "--data-dir", data_dir)
        first = self.expect_line(reader, r"tls certificate \S+ \(sha-256 ([0-9A-F:]{95})\)$")
        self.expect_line(reader, r"listening on turn\+tls 127\.0\.0\.1:\d+$")
        self.expect_line(reader, r"listening on turn\+dtls 127\.0\.0\.1:\d+$")
        self.expect_line(reader, r"ready at https://localhost:\d+/$")  # HTTPS loaded it too
        key = os.path.join(data_dir, "tls", "self-signed.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        # Replace the certificate on disk (as an operator renewing it would), then SIGHUP.
        os.remove(key)
        process.send_signal(signal.SIGHUP)
        second = self.expect_line(reader, r"tls certificate reloaded \(sha-256 ([0-9A-F:]{95})\)$")
        self.assertNotEqual(first.group(1), second.group(1))
        self.stop(process, reader)

    def test_sighup_without_a_config_file(self):
        process, reader = self.start("serve", "--stun-port", "0")
        self.expect_line(reader, r"listening on stun\+udp")
        process.send_signal(signal.SIGHUP)
        self.expect_line(reader, r"no config file to re-read")
        self.stop(process, reader)


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (released again before returning)."""
    udp, tcp, port = occupy_udp_and_tcp()
    udp.close()
    tcp.close()
    return port


def occupy_udp_and_tcp():
    """A TCP listener and a UDP socket bound to the same port on 127.0.0.1."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen()
        return udp, tcp, port
    raise RuntimeError("no port free for both UDP and TCP")


if __name__ == "__main__":
    if not PARLEY or not os.access(PARLEY, os.X_OK):
        sys.exit("test_cli.py: set PARLEY_BIN to the parley binary")
    unittest.main(verbosity=2)
