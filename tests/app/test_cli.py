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
                     "--threads", "--log-level", "--log-format"):
            self.assertIn(flag, out)

    def test_turn_help_says_stun_only_today(self):
        out = self.run_parley("turn", "--help").stdout
        self.assertIn("STUN/TURN only, for relay nodes", out)
        self.assertIn("today STUN only", out)

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
        name = self.write("[stun]\n[turn]\nrealm = \"x\"\n")
        self.assert_config_error(self.run_parley("config", "check", name),
                                 "parley.toml:2:1: unknown table 'turn'")

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


class ServerTest(CliTestCase):
    def start(self, *args):
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
        name = self.write("[stun]\ntcp = false\n", name="udp-only.toml")
        process, reader = self.start("turn", "--config", name, "--stun-port", str(port),
                                     "--log-format", "json")
        line = reader.wait_for(r'"msg":"listening on stun\+udp 127\.0\.0\.1:%d"' % port)
        self.assertIsNotNone(line, reader.text())
        self.assertIn('"msg":"config: udp-only.toml"', "".join(reader.lines))
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
                result = self.run_parley("turn", "--stun-port", str(port))
            except subprocess.TimeoutExpired as timeout:
                self.fail("parley kept running on a port in use: %s" % timeout.stderr)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("127.0.0.1:%d" % port, result.stderr)
        self.assertNotIn("listening on", result.stderr)


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
