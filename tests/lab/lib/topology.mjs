// The lab's networks, built from network namespaces, veth pairs and nftables, and taken down
// again whatever happens (success, failure, timeout, SIGTERM):
//
//   inet    a bridge: the public internet 203.0.113.0/24
//   server  203.0.113.10  (parley serve on 80, 443, 3478, 5349)
//   corpgw  WAN 203.0.113.20, LAN 10.10.0.1/24: NAT + the scenario's filter (forward chain);
//           proxies listen on 10.10.0.1
//   corp    10.10.0.2, default route via corpgw (the customer's browser)
//   homegw  WAN 203.0.113.30, LAN 192.168.1.1/24: NAT
//   home    192.168.1.2, default route via homegw (the advisor's browser)
//
// Every name starts with `plab<id>-` (per run), so leftovers never collide, and stale `plab*`
// namespaces of an earlier, killed run are removed first. Names resolve through
// /etc/netns/<ns>/hosts (`ip netns exec` bind-mounts it over /etc/hosts). Nothing here is
// connected to the host's own network: traffic stays between the lab's namespaces.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const NET = {
  serverIp: '203.0.113.10',
  corpWan: '203.0.113.20',
  homeWan: '203.0.113.30',
  corpGwLan: '10.10.0.1',
  corpIp: '10.10.0.2',
  homeGwLan: '192.168.1.1',
  homeIp: '192.168.1.2',
  host: 'parley.lab',
  proxyPort: 3128,
};

const PREFIX = 'plab';
const DNS_SERVER = new URL('./dns.mjs', import.meta.url).pathname;
const OWNERS = path.join(os.tmpdir(), 'plab-owners');

function sh(cmd, args, { input, allowFail = false, timeoutMs = 15_000 } = {}) {
  const result = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: timeoutMs });
  if (!allowFail && (result.status !== 0 || result.error)) {
    const why = result.error ? result.error.message : (result.stderr || result.stdout || '').trim();
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.status}): ${why}`);
  }
  return result;
}

// Why the lab cannot run here, or null when it can: root, ip and nft present, and a network
// namespace can really be created.
export function labUnavailableReason() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'not root (network namespaces, veth pairs and nftables need root)';
  }
  for (const tool of ['ip', 'nft']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    if (found.status !== 0) return `${tool} not found (Debian packages iproute2, nftables)`;
  }
  const probe = `${PREFIX}probe${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (added.status !== 0) return `ip netns add failed: ${(added.stderr || '').trim() || `exit ${added.status}`}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

// Running and not a zombie (our own dead children stay zombies until this process, blocked in
// a synchronous clean-up, gets to reap them).
function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}

// Kills the processes still running in the namespaces (processes this lab started there), then
// deletes the namespaces with their /etc/netns folders.
function removeNamespaces(names) {
  const killed = [];
  for (const ns of names) {
    const pids = sh('ip', ['netns', 'pids', ns], { allowFail: true }).stdout || '';
    for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
      if (pid <= 1 || pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch { /* gone */ }
    }
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && killed.some(running)) spawnSync('sleep', ['0.05']);
  for (const ns of names) {
    sh('ip', ['netns', 'del', ns], { allowFail: true });
    fs.rmSync(path.join('/etc/netns', ns), { recursive: true, force: true });
    fs.rmSync(path.join(OWNERS, ns), { force: true });
  }
}

// The process that made a lab namespace (written into its /etc/netns folder), if it still runs.
function ownerAlive(ns) {
  try {
    const pid = Number(fs.readFileSync(path.join(OWNERS, ns), 'utf8'));
    if (!(pid > 1) || pid === process.pid) return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Namespaces and /etc/netns folders left by an earlier run that was killed hard (its owner
// process is gone); a lab running beside this one keeps its own.
export function removeStale() {
  const names = (sh('ip', ['netns', 'list'], { allowFail: true }).stdout || '')
    .split('\n').map((line) => line.split(' ')[0]).filter((n) => n.startsWith(PREFIX) && !ownerAlive(n));
  removeNamespaces(names);
  if (fs.existsSync('/etc/netns')) {
    for (const entry of fs.readdirSync('/etc/netns')) {
      if (entry.startsWith(PREFIX) && !ownerAlive(entry)) fs.rmSync(path.join('/etc/netns', entry), { recursive: true, force: true });
    }
  }
  return names;
}

export class Topology {
  constructor() {
    this.id = crypto.randomBytes(3).toString('hex');
    this.names = {};
    for (const role of ['inet', 'server', 'corpgw', 'corp', 'homegw', 'home']) this.names[role] = `${PREFIX}${this.id}-${role}`;
    this.created = [];
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${this.id}-`));
    this.torn = false;
  }

  ns(role) {
    return this.names[role];
  }

  ip(role, ...args) {
    return sh('ip', ['-n', this.ns(role), ...args]);
  }

  exec(role, cmd, args, options) {
    return sh('ip', ['netns', 'exec', this.ns(role), cmd, ...args], options);
  }

  // The argv prefix that runs a command inside a namespace.
  wrap(role, argv) {
    return ['ip', 'netns', 'exec', this.ns(role), ...argv];
  }

  addNamespace(role, hosts, nameserver = '127.0.0.1') {
    const ns = this.ns(role);
    sh('ip', ['netns', 'add', ns]);
    this.created.push(ns);
    const etc = path.join('/etc/netns', ns);
    fs.mkdirSync(etc, { recursive: true });
    // Who owns it (not in /etc/netns/<ns>/: `ip netns exec` bind-mounts every file there).
    fs.mkdirSync(OWNERS, { recursive: true });
    fs.writeFileSync(path.join(OWNERS, ns), String(process.pid));
    fs.writeFileSync(path.join(etc, 'hosts'), `127.0.0.1 localhost\n${hosts || ''}`);
    // The clients ask their gateway's resolver (lib/dns.mjs); everything else has no DNS, so a
    // lookup of a name not in hosts fails at once, locally.
    fs.writeFileSync(path.join(etc, 'resolv.conf'), `nameserver ${nameserver}\noptions timeout:1 attempts:2\n`);
    this.ip(role, 'link', 'set', 'lo', 'up');
    this.exec(role, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    this.exec(role, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  // A veth pair between two namespaces: `a` in roleA, `b` in roleB.
  link(roleA, a, roleB, b) {
    sh('ip', ['-n', this.ns(roleA), 'link', 'add', 'name', a, 'type', 'veth', 'peer', 'name', b, 'netns', this.ns(roleB)]);
    this.ip(roleA, 'link', 'set', a, 'up');
    this.ip(roleB, 'link', 'set', b, 'up');
  }

  build() {
    removeStale();
    const hosts = `${NET.serverIp} ${NET.host}\n`;
    const resolvers = { corp: NET.corpGwLan, home: NET.homeGwLan };
    for (const role of ['inet', 'server', 'corpgw', 'corp', 'homegw', 'home']) this.addNamespace(role, hosts, resolvers[role]);
    // The internet: one bridge; the server and both gateways hang off it.
    this.ip('inet', 'link', 'add', 'br0', 'type', 'bridge');
    this.ip('inet', 'link', 'set', 'br0', 'up');
    for (const [role, port] of [['server', 'srv'], ['corpgw', 'corp'], ['homegw', 'home']]) {
      this.link('inet', port, role, 'wan');
      this.ip('inet', 'link', 'set', port, 'master', 'br0');
    }
    this.ip('server', 'addr', 'add', `${NET.serverIp}/24`, 'dev', 'wan');
    this.ip('corpgw', 'addr', 'add', `${NET.corpWan}/24`, 'dev', 'wan');
    this.ip('homegw', 'addr', 'add', `${NET.homeWan}/24`, 'dev', 'wan');
    // The LANs.
    this.link('corpgw', 'lan', 'corp', 'eth0');
    this.ip('corpgw', 'addr', 'add', `${NET.corpGwLan}/24`, 'dev', 'lan');
    this.ip('corp', 'addr', 'add', `${NET.corpIp}/24`, 'dev', 'eth0');
    this.ip('corp', 'route', 'add', 'default', 'via', NET.corpGwLan);
    this.link('homegw', 'lan', 'home', 'eth0');
    this.ip('homegw', 'addr', 'add', `${NET.homeGwLan}/24`, 'dev', 'lan');
    this.ip('home', 'addr', 'add', `${NET.homeIp}/24`, 'dev', 'eth0');
    this.ip('home', 'route', 'add', 'default', 'via', NET.homeGwLan);
    for (const gw of ['corpgw', 'homegw']) this.exec(gw, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    // The home network: plain NAT.
    this.nft('homegw', natRules('allow everything out', ''));
    // Each gateway resolves names for its LAN (Chromium's WebRTC asks DNS, not /etc/hosts).
    this.dns = [];
    for (const [gw, address] of [['corpgw', NET.corpGwLan], ['homegw', NET.homeGwLan]]) {
      const argv = this.wrap(gw, [process.execPath, DNS_SERVER, address, `${NET.host}=${NET.serverIp}`]);
      const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
      this.dns.push(child);
    }
  }

  // Loads an nftables ruleset (text) into a namespace, replacing what was there.
  nft(role, rules) {
    const file = path.join(this.tmp, `${role}.nft`);
    fs.writeFileSync(file, `flush ruleset\n${rules}`);
    this.exec(role, 'nft', ['-f', file]);
    return file;
  }

  // Shapes what leaves `dev` in `role`'s namespace to `kbit` kbit/s (a token bucket filter:
  // packets beyond the rate wait up to 50 ms, then are dropped, as on a saturated access line);
  // null removes the shape. The rate counts whole frames (Ethernet, IP, UDP headers included).
  shape(role, dev, kbit) {
    if (kbit === null) {
      sh('tc', ['-n', this.ns(role), 'qdisc', 'del', 'dev', dev, 'root'], { allowFail: true });
      return '';
    }
    // A burst of a few full frames: enough for the token bucket to work at these rates, small
    // enough (6000 bytes = 48 kbit) not to inflate a rate measured over seconds.
    this.ip(role, 'link', 'set', 'dev', dev, 'up');
    sh('tc', ['-n', this.ns(role), 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${kbit}kbit`,
      'burst', '6000', 'latency', '50ms']);
    return sh('tc', ['-n', this.ns(role), 'qdisc', 'show', 'dev', dev]).stdout.trim();
  }

  listRules(role) {
    return this.exec(role, 'nft', ['list', 'ruleset']).stdout;
  }

  // Writes an executable that runs `program` inside the namespace of `role` (playwright's
  // executablePath for a browser on that host).
  wrapper(role, program) {
    const file = path.join(this.tmp, `${role}-${path.basename(program)}`);
    fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${this.ns(role)} ${program} "$@"\n`, { mode: 0o755 });
    return file;
  }

  teardown() {
    if (this.torn) return;
    this.torn = true;
    for (const child of this.dns || []) {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
    }
    removeNamespaces([...this.created].reverse());
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

// A gateway's ruleset: masquerade out of `wan`, no new connections from `wan` to the gateway,
// and `forward` (the body of a filter chain on the forward hook, policy accept unless the body
// says otherwise).
export function natRules(comment, forward, { policy = 'accept' } = {}) {
  return `# ${comment}
table ip lab {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade
  }
  # Like any router's firewall: nothing new comes in from the internet to the gateway itself.
  # (Dropped here, an unsolicited packet also leaves no conntrack entry behind; one left by a
  # peer's early ICE check would otherwise make the NAT pick another port for our own later
  # packets to that peer, and UDP hole punching would fail.)
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan" ct state new counter drop
  }
  chain forward {
    type filter hook forward priority filter; policy ${policy};
${forward.split('\n').filter((l) => l.trim()).map((l) => `    ${l.trim()}`).join('\n')}
  }
}
`;
}

// Process-wide clean-up: registered actions run once, on normal exit, on an uncaught error and
// on SIGTERM/SIGINT/SIGHUP (ctest's timeout sends SIGTERM, then SIGKILL). They must be
// synchronous (on 'exit' nothing asynchronous runs).
const cleanups = [];
let cleaned = false;
export function onCleanup(fn) {
  cleanups.push(fn);
}
export function runCleanups() {
  if (cleaned) return;
  cleaned = true;
  for (const fn of cleanups.reverse()) {
    try {
      fn();
    } catch (err) {
      console.log(`cleanup: ${err.message}`);
    }
  }
}
process.on('exit', runCleanups);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => {
    console.log(`lab: ${signal}: cleaning up`);
    runCleanups();
    console.log('0 passed, 1 failed');
    process.exit(1);
  });
}
process.on('uncaughtException', (err) => {
  console.log(`lab: uncaught ${err && err.stack ? err.stack : err}`);
  runCleanups();
  process.exit(1);
});
