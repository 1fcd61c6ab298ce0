#!/usr/bin/python3
"""Helpers for test_turn_interop.py: TURN servers under test (parley, or coturn as the
reference), coturn's turnutils_peer / turnutils_uclient, and an aiortc program.

Run as a program it is the aiortc side of the tests (kept in its own process so a hung
asyncio loop can be killed by the test's timeout):

    /usr/bin/python3 tests/interop/turn_helpers.py aiortc \
        --url 'turn:127.0.0.1:3478?transport=udp' --username alice --credential secretpw

prints one line "AIORTC_RESULT {json}" and exits 0 when the data channel carried every
message both ways over relay candidates, 1 otherwise.

Stdlib only, plus aiortc/aioice (Debian python3-aiortc) for the aiortc program.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PARLEY_BIN = os.environ.get("PARLEY_BIN") or os.path.join(REPO, "build", "tinterop", "app", "parley")
# Which TURN server the tests talk to: "parley" (default) or "coturn" (dry runs of the
# tests themselves against the reference implementation).
SERVER_KIND = os.environ.get("TURN_SERVER_UNDER_TEST", "parley")

LOOPBACK = "127.0.0.1"
REALM = "parley"
USER, PASSWORD = "alice", "secretpw"
REST_SECRET = "rest-api-secret-1"

TURNSERVER = shutil.which("turnserver")
UCLIENT = shutil.which("turnutils_uclient")
PEER = shutil.which("turnutils_peer")
OPENSSL = shutil.which("openssl")
NODE = shutil.which("node")
BROWSER_DIR = os.path.join(HERE, "browser")

# --------------------------------------------------------------------------------------
# Free ports: bind port 0 first, then check the number is free for every socket needed.
# --------------------------------------------------------------------------------------

_handed_out = set()


def _can_bind(kind, address, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(address=LOOPBACK, kinds=(socket.SOCK_DGRAM, socket.SOCK_STREAM)):
    """A port free for UDP and TCP on `address`, never handed out twice by this process."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, kinds[0])
        probe.bind((address, 0))
        port = probe.getsockname()[1]
        probe.close()
        if port in _handed_out:
            continue
        if all(_can_bind(kind, address, port) for kind in kinds):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def free_port_range(count, address=LOOPBACK):
    """(first, last) of `count` consecutive ports, all free for UDP right now."""
    for _ in range(200):
        first = free_port(address, kinds=(socket.SOCK_DGRAM,))
        last = first + count - 1
        if last > 65535:
            continue
        ports = range(first, last + 1)
        if any(p in _handed_out for p in ports[1:]):
            continue
        if all(_can_bind(socket.SOCK_DGRAM, address, p) for p in ports):
            _handed_out.update(ports)
            return first, last
    raise RuntimeError("no free port range of %d found" % count)


# --------------------------------------------------------------------------------------
# Servers. Both kinds take the same arguments:
#   users: [(name, password)], secrets: [REST secret], allow_peer: [CIDR] (parley's
#   --allow-peer; empty = server default, which denies loopback peers), tls: start the
#   TLS/DTLS listener, port_range: (min, max) relay ports, threads: worker threads,
#   quota: allocations per user (parley's default is 10; uclient makes 2 per client),
#   unauth_per_second: parley's 401 rate limit per source IP (default 10; coturn has none).
# --------------------------------------------------------------------------------------

class ServerError(AssertionError):
    pass


class _Process:
    """A subprocess whose stderr+stdout lines are collected by a thread (pipe never fills)."""

    name = "server"

    def __init__(self, args, cwd=None):
        self.args = args
        self.lines = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=cwd,
                                     errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self, tail=6000):
        with self._changed:
            return "\n".join(self.lines)[-tail:]

    def wait_for_lines(self, needles, timeout):
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                text = "\n".join(self.lines)
                missing = [n for n in needles if n not in text]
                if not missing:
                    return
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise ServerError("%s exited with status %s before it was ready.\ncommand: %s\n"
                                      "output:\n%s" % (self.name, self.proc.returncode,
                                                       " ".join(self.args), self.output()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerError("%s not ready after %.0fs (missing %s).\ncommand: %s\n"
                                      "output:\n%s" % (self.name, timeout, missing,
                                                       " ".join(self.args), self.output()))
                self._changed.wait(min(left, 0.2))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait; SIGKILL if it hangs (and say so). Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ServerError("%s did not exit within %.0fs of SIGTERM:\n%s"
                                  % (self.name, timeout, self.output(3000)))
        self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(5)
        if not self._reader.is_alive() and not self.proc.stdout.closed:
            self.proc.stdout.close()


class ParleyTurn(_Process):
    """`parley turn` with the flags of the TURN release."""

    name = "parley"
    kind = "parley"

    def __init__(self, workdir, users=((USER, PASSWORD),), secrets=(), allow_peer=("127.0.0.0/8",),
                 tls=False, port_range=None, threads=None, quota=None, unauth_per_second=None,
                 ready_timeout=15.0):
        if not os.access(PARLEY_BIN, os.X_OK):
            raise ServerError("parley binary not found: %s (set PARLEY_BIN)" % PARLEY_BIN)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.data_dir = os.path.join(workdir, "parley-data")
        os.makedirs(self.data_dir, exist_ok=True)
        args = [PARLEY_BIN, "turn", "--listen", LOOPBACK, "--stun-port", str(self.port),
                "--relay-address", LOOPBACK, "--data-dir", self.data_dir]
        for user, password in users:
            args += ["--turn-user", "%s:%s" % (user, password)]
        for secret in secrets:
            args += ["--turn-secret", secret]
        for cidr in allow_peer:
            args += ["--allow-peer", cidr]
        if tls:
            args += ["--tls-port", str(self.tls_port)]
        else:
            args += ["--no-tls"]
        if port_range:
            args += ["--set", "turn.relay_port_min=%d" % port_range[0],
                     "--set", "turn.relay_port_max=%d" % port_range[1]]
        if threads:
            args += ["--threads", str(threads)]
        if quota:
            args += ["--set", "turn.max_allocations_per_user=%d" % quota]
        if unauth_per_second:
            args += ["--set", "turn.unauthenticated_per_second=%d" % unauth_per_second]
        super().__init__(args, cwd=workdir)
        try:
            self.wait_for_lines(["listening on stun+udp %s:%d" % (LOOPBACK, self.port),
                                 "listening on stun+tcp %s:%d" % (LOOPBACK, self.port)],
                                ready_timeout)
            if tls:
                self.wait_tls_ready(ready_timeout)
        except BaseException:
            self.kill()  # never leave a half-started server behind
            raise

    def wait_tls_ready(self, timeout):
        """The TLS listener must accept a TCP connection on tls_port within `timeout`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                break
            try:
                with socket.create_connection((LOOPBACK, self.tls_port), timeout=1):
                    return
            except OSError as error:
                last = error
                time.sleep(0.2)
        listening = [line for line in self.lines if "listening on" in line]
        raise ServerError(
            "parley was started with --tls-port %d but nothing accepts TLS connections on "
            "%s:%d/tcp (%s). The TLS/DTLS listener is missing or broken.\ncommand: %s\n"
            "its 'listening on' lines:\n%s\noutput:\n%s"
            % (self.tls_port, LOOPBACK, self.tls_port, last, " ".join(self.args),
               "\n".join(listening), self.output(3000)))


class CoturnTurn(_Process):
    """coturn's turnserver configured like parley, the reference for dry runs."""

    name = "turnserver"
    kind = "coturn"

    def __init__(self, workdir, users=((USER, PASSWORD),), secrets=(), allow_peer=("127.0.0.0/8",),
                 tls=False, port_range=None, threads=None, quota=None, unauth_per_second=None,
                 ready_timeout=15.0):
        if not TURNSERVER:
            raise ServerError("turnserver (coturn) not installed")
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        args = [TURNSERVER, "-n", "--no-cli", "-L", LOOPBACK, "-p", str(self.port),
                "--relay-ip", LOOPBACK, "-r", REALM, "--fingerprint",
                "--log-file", "stdout", "--simple-log", "--no-stdout-log",
                "--pidfile", os.path.join(workdir, "turnserver.pid")]
        if secrets:
            # coturn cannot mix users and a shared secret: the secret wins.
            args += ["--use-auth-secret"]
            for secret in secrets:
                args += ["--static-auth-secret=%s" % secret]
        else:
            args += ["-a"]
            for user, password in users:
                args += ["-u", "%s:%s" % (user, password)]
        for cidr in allow_peer:
            if cidr == "127.0.0.0/8":
                args += ["--allow-loopback-peers"]
            else:
                address, _, bits = cidr.partition("/")
                if bits not in ("", "32"):
                    raise ServerError("coturn mapping knows only 127.0.0.0/8 and /32: %s" % cidr)
                args += ["--allow-loopback-peers", "--denied-peer-ip=127.0.0.0-127.255.255.255",
                         "--allowed-peer-ip=%s" % address]
        if tls:
            cert, key = self_signed_cert(workdir)
            args += ["--tls-listening-port", str(self.tls_port), "--cert", cert, "--pkey", key]
        else:
            args += ["--no-tls", "--no-dtls"]
        if port_range:
            args += ["--min-port", str(port_range[0]), "--max-port", str(port_range[1])]
        if threads:
            args += ["--relay-threads", str(threads)]
        if quota:
            args += ["--user-quota", str(quota)]
        super().__init__(args, cwd=workdir)
        try:
            self.wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout):
        """coturn logs nothing per listener at this verbosity: probe UDP with a Binding
        request, TCP (and TLS) by connecting."""
        deadline = time.monotonic() + timeout
        pending = ["udp", "tcp"] + (["tls"] if self.tls_port else [])
        while pending:
            if not self.alive():
                raise ServerError("turnserver exited with %s:\n%s" % (self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                raise ServerError("turnserver not ready (%s) after %.0fs:\n%s"
                                  % (pending, timeout, self.output()))
            what = pending[0]
            if what == "udp":
                ok = stun_binding_udp(LOOPBACK, self.port, 0.2)
            else:
                try:
                    port = self.port if what == "tcp" else self.tls_port
                    socket.create_connection((LOOPBACK, port), timeout=0.5).close()
                    ok = True
                except OSError:
                    ok = False
            if ok:
                pending.pop(0)
            else:
                time.sleep(0.1)


def stun_binding_udp(address, port, timeout):
    """True if a STUN Binding request to address:port/udp gets a success response."""
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (address, port))
            data = sock.recvfrom(2048)[0]
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == request[8:20]


def self_signed_cert(workdir):
    cert = os.path.join(workdir, "cert.pem")
    key = os.path.join(workdir, "key.pem")
    if not os.path.exists(cert):
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True, timeout=60)
    return cert, key


def start_server(workdir, **kwargs):
    if SERVER_KIND == "coturn":
        return CoturnTurn(workdir, **kwargs)
    if SERVER_KIND != "parley":
        raise ServerError("TURN_SERVER_UNDER_TEST must be parley or coturn, not %r" % SERVER_KIND)
    return ParleyTurn(workdir, **kwargs)


class EchoPeer(_Process):
    """turnutils_peer: a UDP echo server on address:port (the TURN peer)."""

    name = "turnutils_peer"

    def __init__(self, address=LOOPBACK, ready_timeout=10.0):
        self.address = address
        self.port = free_port(address, kinds=(socket.SOCK_DGRAM,))
        super().__init__([PEER, "-L", address, "-p", str(self.port)])
        try:
            self._wait_echo(ready_timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_echo(self, ready_timeout):
        address = self.address
        deadline = time.monotonic() + ready_timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            sock.settimeout(0.2)
            while True:
                sock.sendto(b"are you there", (address, self.port))
                try:
                    if sock.recvfrom(2048)[0] == b"are you there":
                        return
                except OSError:
                    pass
                if not self.alive() or time.monotonic() > deadline:
                    raise ServerError("turnutils_peer does not echo on %s:%d:\n%s"
                                      % (address, self.port, self.output()))


# --------------------------------------------------------------------------------------
# turnutils_uclient and its final report, e.g.
#   3: : start_mclient: tot_send_msgs=20, tot_recv_msgs=20
#   3: : start_mclient: tot_send_bytes ~ 2000, tot_recv_bytes ~ 2000
#   3: : Total lost packets 0 (0.000000%), total send dropped 0 (0.000000%)
# errors, e.g. "channel bind: error 403 (Forbidden IP)", "create permission error 403
# (Forbidden IP)", "ERROR: Cannot complete Allocation".
# --------------------------------------------------------------------------------------

TOTALS_RE = re.compile(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M)
LOST_RE = re.compile(r"Total lost packets (\d+) \(([\d.]+)%\), total send dropped (\d+) \(([\d.]+)%\)")
RELAY_RE = re.compile(r"Received relay addr: ([0-9.]+):(\d+)")
ERROR_RE = re.compile(r"^.*(?:error|ERROR|Cannot|cannot|failure|Failed|failed).*$", re.M)


class UclientRun:
    def __init__(self, args, returncode, output, elapsed):
        self.args = args
        self.returncode = returncode
        self.output = output
        self.elapsed = elapsed
        totals = TOTALS_RE.findall(output)
        self.sent, self.received = (int(totals[-1][0]), int(totals[-1][1])) if totals else (None, None)
        lost = LOST_RE.findall(output)
        if lost:
            self.lost, self.lost_pct = int(lost[-1][0]), float(lost[-1][1])
            self.dropped, self.dropped_pct = int(lost[-1][2]), float(lost[-1][3])
        else:
            self.lost = self.lost_pct = self.dropped = self.dropped_pct = None
        self.relay_addresses = [(a, int(p)) for a, p in RELAY_RE.findall(output)]
        self.errors = ERROR_RE.findall(output)

    def command(self):
        return " ".join(self.args)

    def report(self):
        lines = [l for l in self.output.splitlines()
                 if "tot_send_msgs=" in l and "msz=" not in l or "Total lost" in l
                 or "tot_send_bytes" in l and "msz=" not in l]
        return "\n".join(lines)

    def __str__(self):
        return "$ %s\nexit %s after %.1fs\n%s" % (self.command(), self.returncode, self.elapsed,
                                                 self.output[-5000:])


def run_uclient(server_port, peer, user=USER, password=None, secret=None, messages=50,
                clients=1, length=100, tcp=False, secure=False, send_indications=False,
                rtcp=False, verbose=False, extra=(), timeout=60):
    args = [UCLIENT, "-p", str(server_port), "-n", str(messages), "-m", str(clients),
            "-l", str(length), "-e", peer.address, "-r", str(peer.port), "-u", user]
    if secret is not None:
        args += ["-W", secret]
    else:
        args += ["-w", password if password is not None else PASSWORD]
    if tcp:
        args.append("-t")
    if secure:
        args.append("-S")
    if send_indications:
        args.append("-s")
    if not rtcp:
        args.append("-c")
    if verbose:
        args.append("-v")
    args += list(extra)
    args.append(LOOPBACK)
    start = time.monotonic()
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
        return UclientRun(args, done.returncode, done.stdout, time.monotonic() - start)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return UclientRun(args, "timeout after %ss" % timeout, out, time.monotonic() - start)


# --------------------------------------------------------------------------------------
# The aiortc program: two RTCPeerConnections, SDP exchanged in-process with every
# non-relay candidate removed, a data channel carrying messages both ways.
# --------------------------------------------------------------------------------------

def relay_only_sdp(sdp):
    kept = []
    removed = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and " typ relay" not in line:
            removed += 1
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", removed


async def _aiortc_relay(url, username, credential, messages, timeout):
    import asyncio
    import aioice.ice
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

    # Host candidates on 127.0.0.2 only (aioice never offers 127.0.0.1 and would otherwise
    # use the machine's other interfaces): they are removed from the SDP, and the relay
    # must drop what they send it (no permission for 127.0.0.2), so only relay pairs work.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.2"]

    config = RTCConfiguration(iceServers=[RTCIceServer(urls=url, username=username,
                                                       credential=credential)])
    pc1, pc2 = RTCPeerConnection(config), RTCPeerConnection(config)
    result = {"url": url, "removed_candidates": 0}
    got1, got2 = [], []
    done = asyncio.Event()

    def check_done():
        if len(got1) >= 2 * messages and len(got2) >= messages:
            done.set()

    channel1 = pc1.createDataChannel("relay-test")

    @channel1.on("open")
    def _open1():
        for i in range(messages):
            channel1.send("ping %d" % i)

    @channel1.on("message")
    def _message1(message):
        got1.append(message)
        check_done()

    @pc2.on("datachannel")
    def _datachannel(channel2):
        @channel2.on("message")
        def _message2(message):
            got2.append(message)
            if message.startswith("ping "):
                channel2.send("pong " + message[5:])
            check_done()

        for i in range(messages):
            channel2.send("hello %d" % i)

    try:
        async def negotiate_and_exchange():
            await pc1.setLocalDescription(await pc1.createOffer())
            offer, removed = relay_only_sdp(pc1.localDescription.sdp)
            result["removed_candidates"] += removed
            result["offer_candidates"] = [l for l in offer.splitlines() if l.startswith("a=candidate:")]
            await pc2.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc2.setLocalDescription(await pc2.createAnswer())
            answer, removed = relay_only_sdp(pc2.localDescription.sdp)
            result["removed_candidates"] += removed
            result["answer_candidates"] = [l for l in answer.splitlines() if l.startswith("a=candidate:")]
            await pc1.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await done.wait()

        started = time.monotonic()
        try:
            await asyncio.wait_for(negotiate_and_exchange(), timeout)
            result["ok"] = True
        except asyncio.TimeoutError:
            result["ok"] = False
            result["error"] = "timed out after %ss" % timeout
        except Exception as error:  # noqa: BLE001 - reported, the test fails on it
            result["ok"] = False
            result["error"] = "%s: %s" % (type(error).__name__, error)
        result["elapsed"] = round(time.monotonic() - started, 2)
        result["pc1_received"] = len(got1)
        result["pc2_received"] = len(got2)
        result["pc1_missing"] = sorted(set(["pong %d" % i for i in range(messages)] +
                                           ["hello %d" % i for i in range(messages)]) - set(got1))[:10]
        result["pc2_missing"] = sorted(set("ping %d" % i for i in range(messages)) - set(got2))[:10]
        for name, pc in (("pc1", pc1), ("pc2", pc2)):
            info = {"connectionState": pc.connectionState, "iceConnectionState": pc.iceConnectionState}
            try:
                connection = pc.sctp.transport.transport._connection
                pair = connection._nominated.get(1)
                if pair is not None:
                    local, remote = pair.local_candidate, pair.remote_candidate
                    info["local"] = {"type": local.type, "host": local.host, "port": local.port,
                                     "transport": local.transport}
                    info["remote"] = {"type": remote.type, "host": remote.host, "port": remote.port}
                    inner = getattr(pair.protocol.transport, "_TurnTransport__inner_protocol", None)
                    info["turn_client"] = type(inner).__name__ if inner is not None else None
                info["local_candidates"] = ["%s %s:%d" % (c.type, c.host, c.port)
                                            for c in connection.local_candidates]
            except Exception as error:  # noqa: BLE001
                info["error"] = repr(error)
            result[name] = info
    finally:
        for pc in (pc1, pc2):
            try:
                await asyncio.wait_for(pc.close(), 5)
            except Exception:  # noqa: BLE001
                pass
    return result


def aiortc_main(argv):
    import argparse
    import asyncio
    parser = argparse.ArgumentParser(prog="turn_helpers.py aiortc")
    parser.add_argument("--url", required=True)
    parser.add_argument("--username", default=USER)
    parser.add_argument("--credential", default=PASSWORD)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30)
    options = parser.parse_args(argv)
    result = asyncio.run(_aiortc_relay(options.url, options.username, options.credential,
                                       options.messages, options.timeout))
    print("AIORTC_RESULT " + json.dumps(result), flush=True)
    ok = result.get("ok") and all(result.get(pc, {}).get("local", {}).get("type") == "relay"
                                  for pc in ("pc1", "pc2"))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "aiortc":
        sys.exit(aiortc_main(sys.argv[2:]))
    print(__doc__)
    sys.exit(2)
