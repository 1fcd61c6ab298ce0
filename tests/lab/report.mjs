#!/usr/bin/env node
// Renders docs/network-scenarios.md from a lab run: the result.json each scenario test wrote to
// OUTDIR/<test>/.
//
//   node tests/lab/report.mjs OUTDIR > docs/network-scenarios.md
//   node tests/lab/report.mjs --check OUTDIR --out FILE [--command TEXT]
//
// --check: exit 1 when a scenario has no result (77, "lab skipped", when this machine cannot run
// the lab at all and there are no results). --command: the command that ran the scenarios, for
// the page (default: the ctest label).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SCENARIOS } from './lib/scenarios.mjs';

const args = process.argv.slice(2);
const take = (flag) => {
  const i = args.indexOf(flag);
  if (i < 0) return null;
  const [value] = args.splice(i, 2).slice(1);
  return value;
};
const check = args.includes('--check');
if (check) args.splice(args.indexOf('--check'), 1);
const outFile = take('--out');
const command = take('--command') || 'ctest --test-dir BUILD -L lab';
const dir = args[0];
if (!dir) {
  console.error('usage: report.mjs [--check] OUTDIR [--out FILE] [--command TEXT]');
  process.exit(2);
}

const results = [];
const missing = [];
for (const [number, sc] of Object.entries(SCENARIOS)) {
  const file = path.join(dir, sc.test, 'result.json');
  if (!fs.existsSync(file)) {
    missing.push(sc.test);
    results.push({ scenario: Number(number), test: sc.test, title: sc.title, missing: true });
    continue;
  }
  results.push(JSON.parse(fs.readFileSync(file, 'utf8')));
}

if (check && missing.length === results.length) {
  const root = typeof process.getuid !== 'function' || process.getuid() === 0;
  if (!root) {
    console.log('lab skipped: not root, so no scenario ran and there is nothing to report');
    process.exit(77);
  }
}

const escape = (text) => String(text ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
const ms = (value) => (typeof value === 'number' ? `${(value / 1000).toFixed(1)} s` : '–');

function transport(ice) {
  const sel = ice && ice.selected;
  if (!sel) return '–';
  const l = sel.local;
  const kind = l.candidateType === 'relay' ? `relay over ${String(l.relayProtocol).toUpperCase()}` : l.candidateType;
  const via = l.url ? ` (${l.url.replace(/\?transport=\w+$/, '')})` : '';
  return `${kind}${via} → ${sel.remote.candidateType}`;
}

function outcome(r) {
  if (r.missing) return '**no result**';
  if (r.outcome === 'netcheck only') return `${r.passed ? '' : '**FAILED**: '}no call (netcheck only)`;
  if (r.outcome === 'connected') return `${r.passed ? '' : '**FAILED**: '}video both ways`;
  if (r.outcome === 'reason shown') return `${r.passed ? '' : '**FAILED**: '}no call; the customer is shown \`${r.reason.reason}\``;
  return '**FAILED**: neither video nor a reason';
}

function ttff(r) {
  if (r.timeToFirstFrameMs) return `${ms(r.timeToFirstFrameMs.advisor)} / ${ms(r.timeToFirstFrameMs.customer)}`;
  if (typeof r.reasonAfterMs === 'number') return `reason after ${ms(r.reasonAfterMs)}`;
  return '–';
}

// A netcheck run in a cell: "**works** (exit 1): media via turn_tcp, turn_tls; tls_443 intercepted".
const MEDIA = ['turn_udp', 'turn_tcp', 'turn_tls', 'turn_dtls', 'turn_tls_443', 'turn_tls_443_proxy'];
// Failure codes worth naming in the table (the others are a path that is simply closed).
const TELLING = new Set(['intercepted', 'proxy_auth_required', 'proxy_refused', 'not_parley', 'auth_failed', 'protocol']);
function netcheckRun(run, { label = false } = {}) {
  if (!run) return '–';
  const v = run.verdicts || {};
  const media = MEDIA.filter((id) => /^(pass|warn)/.test(v[id] || ''));
  // By failure code: "tls_443 intercepted", or "proxy_auth_required (11 checks)".
  const byCode = new Map();
  for (const [id, text] of Object.entries(v)) {
    const code = (/\((\w+)\)/.exec(text) || [])[1];
    if (TELLING.has(code)) byCode.set(code, [...(byCode.get(code) || []), id]);
  }
  const telling = [...byCode].map(([code, ids]) => (ids.length > 2 ? `${code} (${ids.length} checks)` : `${ids.join(', ')} ${code}`));
  const failed = run.problems && run.problems.length ? ' **(not as expected)**' : '';
  return `${label ? `${run.label}: ` : ''}**${run.grade}** (exit ${run.exitCode})${failed}: `
    + `${media.length ? `media via ${media.join(', ')}` : 'no media path'}${telling.length ? `; ${telling.join(', ')}` : ''}`;
}

function netcheckCell(r) {
  const runs = r.netcheck || [];
  if (!runs.length) return '–';
  if (r.shapes) {
    return runs.map((run) => `${run.label.replace('shaped-', '')} kbit/s: **${run.grade}**, `
      + `${run.bandwidthUp.streams}/${run.bandwidthDown.streams} streams`).join('; ');
  }
  return runs.map((run) => netcheckRun(run, { label: runs.length > 1 })).join('<br>');
}

function checkPageCell(r) {
  const c = r.checkPage;
  if (!c) return '–';
  const agree = c.problems && !c.problems.length ? 'agrees with netcheck' : `**disagrees**: ${(c.problems || []).join('; ')}`;
  return `**${c.grade}**, ${agree} (${ms(c.ms)})`;
}

function git(argv) {
  const r = spawnSync('git', argv, { cwd: path.dirname(new URL(import.meta.url).pathname), encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const present = results.filter((r) => !r.missing);
const started = present.map((r) => r.started).sort()[0];
const chromium = present.find((r) => r.chromium)?.chromium;
const parley = present.find((r) => r.parleyVersion)?.parleyVersion;
const commit = git(['rev-parse', '--short', 'HEAD']);
const dirty = git(['status', '--porcelain', '--untracked-files=no']);
const cpu = os.cpus()[0] ? os.cpus()[0].model.trim() : 'unknown CPU';
let distro = '';
try {
  distro = (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m) || [])[1] || '';
} catch { /* not Linux */ }

const lines = [];
lines.push('# Network scenarios: what connects, over what, how fast');
lines.push('');
lines.push('Generated by the corporate-network lab ([tests/lab/](../tests/lab/README.md)) from a real run; do not');
lines.push('edit by hand. Each scenario builds its own networks from namespaces, veth pairs, nftables and real');
lines.push('proxies (squid, mitmproxy), runs `parley serve` on its production ports, runs `parley netcheck');
lines.push('--json https://parley.lab` on the corporate host (with `HTTPS_PROXY` set to the proxy where there is');
lines.push('one), and puts an advisor (home network, behind NAT) and a customer (corporate network) in headless');
lines.push('Chromium through the real join flow; in scenarios 1 and 4 the customer\'s Chromium also runs the');
lines.push('`/check` page, which must agree with netcheck. Scenario 9 shapes the corporate link with `tc` and');
lines.push('checks netcheck\'s bandwidth figures against the shape (no call).');
lines.push('');
lines.push(`- Run: ${started ? started.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : 'unknown'}; \`${command}\`, `
  + `rendered with \`node tests/lab/report.mjs OUTDIR\``);
lines.push(`- Machine: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${distro || os.type()} `
  + `(Linux ${os.release()})`);
lines.push(`- Software: ${parley || 'parley'}${commit ? ` (git ${commit}${dirty ? ' with uncommitted changes' : ''})` : ''}, `
  + `Chromium ${chromium || 'unknown'}`);
lines.push('- Time to first frame: from the advisor\'s admit click to the first video frame decoded on each side');
lines.push('  (advisor / customer). Transport: the selected ICE candidate pair, local side (with the TURN server');
lines.push('  URL for a relay candidate) → remote side.');
lines.push('- netcheck: the grade (exit status), the TURN transports that allocated, and the telling failures');
lines.push('  (interception, proxy authentication); every verdict and remedy is in the details below.');
lines.push('');
lines.push('| # | scenario | outcome | customer (corporate) transport | advisor (home) transport | time to first frame '
  + '| netcheck (corporate host) | /check (customer\'s Chromium) |');
lines.push('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  lines.push(`| ${r.scenario} | ${escape(r.title)} | ${escape(outcome(r))} | ${escape(transport(r.customerIce))} | `
    + `${escape(transport(r.advisorIce))} | ${escape(ttff(r))} | ${escape(netcheckCell(r))} | `
    + `${escape(checkPageCell(r))} |`);
}

// Scenario 9: the measured rates against the shape.
const shaped = results.find((r) => r.shapes && r.netcheck);
if (shaped) {
  const sc = SCENARIOS[shaped.scenario] || {};
  const tol = sc.tolerance || {};
  lines.push('');
  lines.push(`## Bandwidth against a shaped link (scenario ${shaped.scenario})`);
  lines.push('');
  lines.push('The corporate gateway shapes both directions with a token bucket filter (`tc qdisc replace dev wan|lan');
  lines.push('root tbf rate Nkbit burst 6000 latency 50ms`: upload leaves by `wan`, download by `lan`); netcheck then');
  lines.push('measures through its TURN allocation to the server\'s probe peer. The shape counts whole frames');
  lines.push('(Ethernet, IP, UDP and TURN ChannelData headers: 46 bytes on every probe datagram), netcheck counts the');
  lines.push(`probe datagrams, so a rate a little below the shape is exact. Tolerance: ${Math.round((tol.low || 0) * 100)} % to `
    + `${Math.round((tol.high || 0) * 100)} % of the shaped rate; streams = floor(kbit/s / 1000).${tol.why ? ` ${tol.why}` : ''}`);
  lines.push('');
  lines.push('| shaped | up kbit/s (of shape) | up streams | down kbit/s (of shape) | down streams | bandwidth verdicts | grade (exit) |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const run of shaped.netcheck) {
    const kbit = Number(run.label.replace('shaped-', ''));
    const pct = (v) => (typeof v === 'number' ? `${Math.round(v)} (${Math.round((v / kbit) * 100)} %)` : '–');
    lines.push(`| ${kbit} kbit/s | ${pct(run.bandwidthUp.kbps)} | ${run.bandwidthUp.streams ?? '–'} | ${pct(run.bandwidthDown.kbps)} | `
      + `${run.bandwidthDown.streams ?? '–'} | ${run.verdicts.bandwidth_up} / ${run.verdicts.bandwidth_down} | `
      + `${run.grade} (${run.exitCode})${run.problems && run.problems.length ? ' **not as expected**' : ''} |`);
  }
}
lines.push('');
lines.push('## Details');
for (const r of results) {
  lines.push('');
  lines.push(`### ${r.scenario}. ${r.title} (\`${r.test}\`)`);
  lines.push('');
  if (r.missing) {
    lines.push('No result: the scenario did not run.');
    continue;
  }
  lines.push(`Network: ${r.network}.`);
  lines.push('');
  lines.push(`Outcome: ${outcome(r)}${r.passed ? '' : ` (test failed: ${r.steps ? `${r.steps.failed} step failed` : 'see its log'})`}.`);
  if (r.reason) {
    lines.push('');
    lines.push(`The customer's page shows (\`data-reason="${r.reason.reason}"\`, ${ms(r.reasonAfterMs)} after the admit click):`);
    lines.push(`> ${r.reason.text}`);
    if (r.advisorReason) {
      lines.push('');
      lines.push(`The advisor's page shows (\`${r.advisorReason.reason}\`):`);
      lines.push(`> ${r.advisorReason.text}`);
    }
  }
  for (const [who, ice] of [['Customer', r.customerIce], ['Advisor', r.advisorIce]]) {
    if (!ice || ice.error) continue;
    lines.push('');
    lines.push(`${who}: selected ${transport(ice)}${ice.selected && ice.selected.rttMs !== null ? `, RTT ${ice.selected.rttMs} ms` : ''}; `
      + `candidates gathered: ${[...new Set((ice.local || []).map((c) => c.replace(/ \d+\.\d+\.\d+\.\d+:\d+/, '')))].map((c) => `\`${c}\``).join(', ') || 'none'}.`);
  }
  for (const run of r.netcheck || []) {
    lines.push('');
    lines.push(`netcheck${r.netcheck.length > 1 ? ` (${run.label})` : ''}: \`${run.command}\` → grade **${run.grade}**, `
      + `exit ${run.exitCode}, ${ms(run.ms)}${run.headline ? `: ${run.headline}` : ''}`);
    lines.push('');
    lines.push(`- verdicts: ${Object.entries(run.verdicts || {}).map(([id, v]) => `${id} ${v}`).join(', ')}`);
    if (run.tls443 && run.tls443.issuer) lines.push(`- certificate seen on 443 issued by: ${run.tls443.issuer}`);
    if (typeof run.bandwidthUp.kbps === 'number') {
      lines.push(`- bandwidth: up ${Math.round(run.bandwidthUp.kbps)} kbit/s (${run.bandwidthUp.streams} streams), `
        + `down ${Math.round(run.bandwidthDown.kbps)} kbit/s (${run.bandwidthDown.streams} streams)`);
    }
    for (const remedy of run.remedies || []) lines.push(`- remedy: ${remedy}`);
    for (const problem of run.problems || []) lines.push(`- **not as the scenario implies**: ${problem}`);
  }
  if (r.checkPage) {
    lines.push('');
    lines.push(`/check in the customer's Chromium: grade **${r.checkPage.grade}** after ${ms(r.checkPage.ms)}; compared with netcheck:`);
    lines.push('');
    for (const c of r.checkPage.comparisons || []) {
      lines.push(`- /check \`${c.page}\` ${c.pageVerdict} — netcheck \`${c.netcheck}\` ${c.netcheckVerdict}${c.same ? '' : ' **(differs)**'}`);
    }
  }
  if (r.probes && r.probes.length) {
    lines.push('');
    lines.push('Network probes before the call:');
    for (const p of r.probes) lines.push(`- \`${p}\``);
  }
  if (r.proxyLog && r.proxyLog.length) {
    lines.push('');
    lines.push('Proxy log (distinct entries):');
    for (const p of r.proxyLog.slice(0, 20)) lines.push(`- \`${p.replace(/`/g, "'")}\``);
  }
}
lines.push('');
const text = `${lines.join('\n')}`;
if (outFile) fs.writeFileSync(outFile, text);
else process.stdout.write(text);

if (check) {
  if (missing.length) {
    console.log(`lab_report: no result for ${missing.join(', ')}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  console.log(`lab_report: ${present.length} scenarios, table in ${outFile || 'stdout'}`);
  for (const r of results) {
    console.log(`  ${r.test}: ${outcome(r).replace(/\*\*/g, '')}, ${transport(r.customerIce)}, ${ttff(r)}; `
      + `netcheck ${netcheckCell(r).replace(/\*\*/g, '').replace(/<br>/g, '; ')}`);
  }
  console.log('1 passed, 0 failed');
}
