#!/usr/bin/env node
// The corporate-network lab: one scenario per run (`node lab.test.mjs --scenario N`, N = 1..9,
// see lib/scenarios.mjs). It builds its own networks (namespaces, veth pairs, nftables NAT and
// filters, a real squid or mitmproxy), runs `parley serve` on the `server` host with its
// production ports, runs `parley netcheck --json` on the corporate host and asserts the
// verdicts the network implies, then puts an advisor in headless Chromium on the home network
// and a customer in headless Chromium on the corporate network (through the proxy where there
// is one), walks the real join flow, and asserts the outcome: video decoded both ways and the
// transport that carried it, or (scenario 8) the specific reason the customer's page shows. In
// scenarios 1 and 4 the customer's Chromium then runs the /check page, which must agree with
// netcheck. Scenario 9 shapes the corporate link with tc and checks netcheck's bandwidth
// figures against the shape (no browsers).
//
// Needs root (network namespaces); otherwise prints "lab skipped: <reason>" and exits 77.
// Needs PARLEY_BIN, Debian's chromium, squid, mitmproxy, nftables, iproute2, apache2-utils,
// and `npm ci` in tests/e2e. Output: $PARLEY_LAB_OUT/<test>/ (result.json, screenshots,
// console logs, the server and proxy logs). Prints PASS/FAIL per step and "N passed, N failed".
import fs from 'node:fs';
import path from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { parleyBinary } from '../e2e/lib/parley.mjs';
import { Scenario, assert, watchdog } from '../e2e/lib/scenario.mjs';
import {
  ADVISOR, CUSTOMER_NAME, advisorLogsIn, createInvitation, advisorStartsMeeting, customerJoins,
  videoBothWays, framesFrom,
} from '../e2e/lib/steps.mjs';
import { Topology, NET, natRules, labUnavailableReason, onCleanup, runCleanups } from './lib/topology.mjs';
import { LabParley, makeCertificate } from './lib/server.mjs';
import { Squid, Mitmproxy, PROXY_USER } from './lib/proxies.mjs';
import { runNetcheck, summarize, problemsOf, describeRun, bandwidthProblems, compareWithPage } from './lib/netcheck.mjs';
import { runCheckPage } from './lib/checkpage.mjs';
import { launchLabChromium, labPage } from './lib/browsers.mjs';
import { scenarioByNumber } from './lib/scenarios.mjs';
import { watchFirstFrame, firstFrame, shownReason, iceSummary, transportOf, describePair } from './lib/measure.mjs';

const PROBE = new URL('./lib/probe.mjs', import.meta.url).pathname;
const argIndex = process.argv.indexOf('--scenario');
const number = argIndex > 0 ? process.argv[argIndex + 1] : null;
const sc = scenarioByNumber(number);
// How long, after the admit click, media may take to connect (or the reason to show).
const OUTCOME_TIMEOUT_MS = Number(process.env.PARLEY_LAB_OUTCOME_MS || 45_000);
// How long after video flows the selected pair is read again (the transport the call settles on).
const SETTLE_MS = 5000;

const unavailable = labUnavailableReason();
if (unavailable) {
  console.log(`lab skipped: ${unavailable}`);
  process.exit(77);
}

// The call takes about 40 s, each netcheck run up to its minute (most finish in seconds; a
// blocked path costs a check its deadline), /check up to another; ctest's TIMEOUT for the
// scenarios (CMakeLists.txt) is above this.
watchdog(Number(process.env.PARLEY_LAB_WATCHDOG_MS || 270_000));
const outBase = process.env.PARLEY_LAB_OUT || path.join(process.cwd(), 'output');
const out = path.join(outBase, sc.test);
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const scenario = new Scenario(sc.test, out);

const result = {
  scenario: sc.number,
  test: sc.test,
  title: sc.title,
  network: sc.network,
  expect: sc.expect,
  started: new Date().toISOString(),
  outcome: sc.call === false ? 'netcheck only' : 'failed',
  probes: [],
  netcheck: [],
};

let topology = null;
let server = null;
let proxy = null;
let advisorBrowser = null;
let customerBrowser = null;
let advisor = null;
let customer = null;
let invitation = null;
let ids = null;
let admitAt = null;
const origin = `https://${NET.host}`;
// netcheck's runs by label (the /check page compares with one of them).
const netcheckRuns = {};

// One `parley netcheck --json` on the corporate host, as a step asserting what `expect` (a
// scenario's netcheck run) says; `title` describes the conditions.
async function netcheckStep(expect, title) {
  const proxyUrl = proxy ? proxy.url : null;
  const proxyUser = expect.proxyUser ? `${PROXY_USER.username}:${PROXY_USER.password}` : null;
  const how = `${proxyUrl ? ` (HTTPS_PROXY=${proxyUrl}${proxyUser ? `, --proxy-user ${PROXY_USER.username}:…` : ''})` : ''}`;
  const grade = [].concat(expect.grade || []).join(' or ');
  await scenario.step(`parley netcheck on the corporate host${how}${title ? `, ${title}` : ''}: grade ${grade || '?'}`, async () => {
    const run = await runNetcheck(topology, 'corp', { bin: server.bin, url: origin, outDir: out, label: expect.label,
      proxy: proxyUrl, proxyUser, timeoutMs: 80_000 });
    netcheckRuns[expect.label] = run;
    const summary = summarize(run);
    result.netcheck.push(summary);
    summary.problems = problemsOf(run, expect);
    assert(!summary.problems.length, `\`${run.command}\` does not say what scenario ${sc.number} implies:\n  `
      + `${summary.problems.join('\n  ')}\n  (${describeRun(run)})`);
    return describeRun(run);
  }, { timeoutMs: 90_000 });
}

function writeResult() {
  fs.writeFileSync(path.join(out, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
}

onCleanup(() => {
  if (server) server.killNow();
  if (proxy) proxy.killNow();
  if (topology) topology.teardown();
  if (server) server.removeDataDir();
});

// Runs lib/probe.mjs inside a host's namespace; resolves with its {ok, ms, detail}.
function probe(role, kind, a, b) {
  const args = ['netns', 'exec', topology.ns(role), process.execPath, PROBE, kind, String(a)];
  if (b !== undefined && b !== null) args.push(String(b));
  return new Promise((resolve) => {
    execFile('ip', args, { encoding: 'utf8', timeout: 10_000, env: { ...process.env, PROBE_TIMEOUT_MS: '2500' } },
      (err, stdout, stderr) => {
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop()));
        } catch {
          resolve({ ok: false, detail: `probe failed: ${stderr || stdout || (err && err.message)}` });
        }
      });
  });
}

try {
  await scenario.step(`the lab network is built: ${sc.network}`, async () => {
    topology = new Topology();
    topology.build();
    topology.nft('corpgw', natRules(sc.title, sc.forward, { policy: sc.policy }));
    fs.writeFileSync(path.join(out, 'corpgw.nft'), topology.listRules('corpgw'));
    result.topology = topology.names;
    return `namespaces ${Object.values(topology.names).join(', ')}`;
  });

  const certs = {};
  await scenario.step('parley serve runs on the server host (80, 443, 3478, 5349) and the advisor exists', async () => {
    certs.server = makeCertificate(topology.tmp, NET.host);
    server = new LabParley({ bin: parleyBinary(), outDir: out, topology, cert: certs.server });
    // Another copy of the browser client (e.g. an older one, to measure a change against).
    if (process.env.PARLEY_LAB_CLIENT_DIR) server.extraArgs.push('--set', `web.client_dir="${process.env.PARLEY_LAB_CLIENT_DIR}"`);
    await server.start();
    await server.createAdvisor(ADVISOR.username, ADVISOR.password, ADVISOR.displayName);
    result.server = server.listening;
    result.parleyVersion = (spawnSync(server.bin, ['--version'], { encoding: 'utf8' }).stdout || '').trim();
    return `${server.origin}: ${server.listening.join(', ')}`;
  });

  if (sc.proxy) {
    await scenario.step(`${sc.proxy.kind} runs on the corporate gateway (${NET.corpGwLan}:${NET.proxyPort})`, async () => {
      if (sc.proxy.kind === 'squid') proxy = new Squid(topology, topology.tmp, { auth: sc.proxy.auth });
      else {
        certs.inspection = makeCertificate(topology.tmp, 'corp-inspection-ca', { ca: true });
        proxy = new Mitmproxy(topology, topology.tmp, certs.inspection, { rawtcp: sc.proxy.rawtcp !== false });
      }
      await proxy.start();
      return proxy.commandLine;
    }, { timeoutMs: 40_000 });
  }

  await scenario.step('the networks behave as the scenario says (probes from the hosts)', async () => {
    const wrong = [];
    // All at once: a blocked path takes the probe's whole timeout.
    const answers = await Promise.all(sc.probes.map(([role, kind, a, b]) => probe(role, kind, a, b)));
    for (const [i, [role, kind, a, b, want, detail]] of sc.probes.entries()) {
      const target = kind === 'https' ? a : `${a}:${b}`;
      const via = kind === 'https' && b ? ` via ${b}` : '';
      const got = answers[i];
      const line = `${role}: ${kind} ${target}${via} -> ${got.ok ? 'ok' : 'fails'} (${got.detail})`;
      const right = got.ok === want && (!detail || detail.test(got.detail));
      result.probes.push(line);
      console.log(`  ${line}${right ? '' : `  << expected ${want ? 'ok' : 'to fail'}${detail ? ` with ${detail}` : ''}`}`);
      if (!right) wrong.push(line);
    }
    assert(!wrong.length, `the network does not behave as scenario ${sc.number} says:\n  ${wrong.join('\n  ')}`);
    return `${sc.probes.length} probes as expected`;
  }, { timeoutMs: 60_000 });

  // Before the browsers: netcheck has the machine (and the network) to itself.
  for (const run of (sc.netcheck && sc.netcheck.runs) || []) await netcheckStep(run);

  for (const shape of sc.shapes || []) {
    await scenario.step(`the corporate link is shaped to ${shape.kbit} kbit/s each way (tc tbf on the corporate gateway)`, async () => {
      // Upload leaves the gateway toward the internet (wan), download toward the LAN (lan).
      const qdiscs = ['wan', 'lan'].map((dev) => `${dev}: ${topology.shape('corpgw', dev, shape.kbit)}`);
      result.shapes = [...(result.shapes || []), { kbit: shape.kbit, qdiscs }];
      return qdiscs.join('; ');
    });
    const { low, high } = sc.tolerance;
    await netcheckStep({
      label: `shaped-${shape.kbit}`,
      grade: shape.grade,
      custom: (report) => bandwidthProblems(report, { kbit: shape.kbit, low, high, streams: shape.streams, verdict: shape.verdict }),
    }, `link shaped to ${shape.kbit} kbit/s: ${shape.streams} stream${shape.streams === 1 ? '' : 's'} each way (${shape.verdict})`);
  }

  // Scenario 9 measures bandwidth with netcheck only: no browsers, no call.
  if (sc.call !== false) {
    await scenario.step('headless Chromium starts on the home host (advisor) and the corporate host (customer)', async () => {
      const trust = [certs.server.spki];
      advisorBrowser = await launchLabChromium(topology, 'home', { trust });
      const customerTrust = certs.inspection ? [certs.server.spki, certs.inspection.spki] : trust;
      let proxyOption = null;
      if (proxy) {
        proxyOption = { server: proxy.url };
        // The user's browser knows the proxy credentials (as a browser with a saved proxy login
        // or single sign-on does for web traffic).
        if (sc.proxy.auth) Object.assign(proxyOption, PROXY_USER);
      }
      customerBrowser = await launchLabChromium(topology, 'corp', { trust: customerTrust, proxy: proxyOption });
      advisor = await labPage(advisorBrowser, 'advisor');
      customer = await labPage(customerBrowser, 'customer');
      scenario.addPage(advisor);
      scenario.addPage(customer);
      result.chromium = advisorBrowser.version();
      return `${result.chromium}${proxyOption ? `, customer through ${proxyOption.server}${sc.proxy.auth ? ' with Basic credentials' : ''}` : ''}`;
    });

    await scenario.step('the advisor logs in, creates an invitation and starts the meeting', async () => {
      await advisorLogsIn(advisor, origin, false);
      invitation = await createInvitation(advisor, origin, `Lab ${sc.number}`);
      await advisorStartsMeeting(advisor);
      return invitation.url.replace(/#t=.*/, '#t=…');
    }, { timeoutMs: 45_000 });

    await scenario.step('the customer opens the link, checks the preview and waits in the lobby', async () => {
      const chosen = await customerJoins(customer, invitation.url, false);
      return JSON.stringify(chosen.counts);
    }, { timeoutMs: 45_000 });

    await scenario.step('the advisor admits the customer (the clock for time-to-first-frame starts)', async () => {
      await advisor.waitVisible('[data-testid=lobby-entry]', 15_000);
      const name = await advisor.evaluate(() => document.querySelector('[data-testid=lobby-entry]').textContent);
      assert(name.includes(CUSTOMER_NAME), `lobby entry shows ${name}`);
      await watchFirstFrame(advisor);
      admitAt = Date.now();
      await advisor.click('[data-testid=lobby-entry] [data-testid=admit]');
      await customer.waitVisible('[data-testid=meeting]', 15_000);
      await watchFirstFrame(customer);
      const customerId = await customer.waitFor(() => window.parleyDebug.state().me && window.parleyDebug.state().me.id,
        null, 5000, 'the customer id');
      const advisorId = await advisor.evaluate(() => window.parleyDebug.state().me.id);
      ids = { customerId, advisorId };
      return JSON.stringify(ids);
    });

    let outcome = null;
    const outcomeTitle = {
      connect: 'video is decoded both ways',
      'connect-or-reason': 'video is decoded both ways, or the customer sees the specific reason',
      reason: `the call cannot connect here and the customer sees why (${(sc.reasons || []).join(' or ')})`,
    }[sc.expect];
    await scenario.step(outcomeTitle, async () => {
      const deadline = admitAt + OUTCOME_TIMEOUT_MS;
      for (;;) {
        const [a, c] = [await firstFrame(advisor), await firstFrame(customer)];
        if (a && c) {
          outcome = 'connected';
          result.timeToFirstFrameMs = { advisor: a.at - admitAt, customer: c.at - admitAt };
          break;
        }
        // The customer's page is the one that must explain (its network is the problem); the
        // advisor's view is recorded too.
        const reason = await shownReason(customer);
        if (reason) {
          outcome = 'reason';
          result.reason = reason;
          result.reasonAfterMs = Date.now() - admitAt;
          result.advisorReason = await shownReason(advisor);
          break;
        }
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      result.customerIce = await iceSummary(customer, ids.advisorId);
      result.advisorIce = await iceSummary(advisor, ids.customerId);
      if (outcome === 'connected') {
        const verdict = await videoBothWays(advisor, customer, ids, { relay: false });
        result.outcome = 'connected';
        // The pair that carried the first frames, then the one ICE settles on (Chromium keeps
        // checking and may switch to a better pair a few seconds later).
        result.customerIceFirst = (await iceSummary(customer, ids.advisorId)).selected;
        result.advisorIceFirst = (await iceSummary(advisor, ids.customerId)).selected;
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        result.customerIce = await iceSummary(customer, ids.advisorId);
        result.advisorIce = await iceSummary(advisor, ids.customerId);
        result.customerTransport = transportOf(result.customerIce.selected);
        result.advisorTransport = transportOf(result.advisorIce.selected);
        assert(sc.expect !== 'reason', `media connected (${describePair(result.customerIce.selected)}) where this network should make it impossible`);
        return `${verdict}; first frame after ${result.timeToFirstFrameMs.advisor} ms (advisor) / ${result.timeToFirstFrameMs.customer} ms (customer)`;
      }
      if (outcome === 'reason') {
        result.outcome = 'reason shown';
        assert(sc.expect !== 'connect', `the customer was shown "${result.reason.reason}" (${result.reason.text}) instead of video`);
        assert(sc.reasons.includes(result.reason.reason), `unexpected reason ${result.reason.reason}: ${result.reason.text}`);
        assert(result.reason.checkLink, 'the reason does not link to /check');
        return `${result.reason.reason} after ${result.reasonAfterMs} ms: "${result.reason.text}"`
          + `${result.advisorReason ? `; the advisor sees ${result.advisorReason.reason}: "${result.advisorReason.text}"` : ''}`;
      }
      const frames = {
        advisor: await framesFrom(advisor, ids.customerId, 'camera').catch(() => -1),
        customer: await framesFrom(customer, ids.advisorId, 'camera').catch(() => -1),
      };
      throw new Error(`neither video nor a reason within ${OUTCOME_TIMEOUT_MS} ms of the admit click (frames decoded ${JSON.stringify(frames)})\n`
        + `customer: ${JSON.stringify(result.customerIce, null, 1)}\nadvisor: ${JSON.stringify(result.advisorIce, null, 1)}`);
    }, { timeoutMs: OUTCOME_TIMEOUT_MS + 30_000 });

    if (result.outcome === 'connected') {
      await scenario.step('the transport is the one this network allows', async () => {
        const c = result.customerTransport;
        assert(sc.customerRelay.includes(c), `customer media went over ${c} (${describePair(result.customerIce.selected)}); `
          + `expected one of ${sc.customerRelay.join(', ')}`);
        return `customer ${describePair(result.customerIce.selected)}; advisor ${describePair(result.advisorIce.selected)}`;
      });
    }

    if (sc.checkPage) {
      await scenario.step(`/check in the customer's Chromium agrees with netcheck (grade, ${sc.checkPage.pairs.length} checks)`, async () => {
        // The call has been asserted; it ends here so that /check (its own TURN allocations and a
        // relayed loopback call for bandwidth) has the machine's two cores to itself.
        scenario.writeLogs();
        for (const page of [advisor, customer]) {
          scenario.removePage(page);
          await Promise.race([page.close(), new Promise((r) => setTimeout(r, 5000))]);
        }
        const check = await runCheckPage(customerBrowser, origin, out, { timeoutMs: 60_000 });
        scenario.addPage(check.page);
        const netcheck = netcheckRuns[sc.checkPage.run];
        assert(netcheck, `no netcheck run ${sc.checkPage.run} to compare with`);
        const compared = compareWithPage(check.report, netcheck.report, sc.checkPage);
        result.checkPage = { ms: check.ms, grade: check.report && check.report.grade, rows: check.rows,
          comparisons: compared.rows, problems: compared.problems };
        // The rows on the page show what the report says.
        const checks = (check.report && check.report.checks) || [];
        const list = Array.isArray(checks) ? checks : Object.entries(checks).map(([id, c]) => ({ id, ...c }));
        const shownWrong = list.filter((c) => check.rows[c.id] !== undefined && check.rows[c.id] !== c.verdict)
          .map((c) => `${c.id}: row ${check.rows[c.id]}, report ${c.verdict}`);
        assert(!shownWrong.length, `the page's rows differ from its report: ${shownWrong.join(', ')}`);
        assert(!compared.problems.length, `/check and netcheck disagree:\n  ${compared.problems.join('\n  ')}`);
        return `done after ${(check.ms / 1000).toFixed(1)} s: grade ${check.report.grade} (netcheck ${netcheck.report.grade}); `
          + compared.rows.map((r) => `${r.page}=${r.pageVerdict.split(' ')[0]}~${r.netcheck}`).join(', ');
      }, { timeoutMs: 90_000 });
    }

    if (proxy) {
      await scenario.step(`the ${sc.proxy.kind} log shows what went through it`, async () => {
        // squid logs a CONNECT tunnel when it closes: end the call first (keeping the pages'
        // console logs).
        scenario.writeLogs();
        scenario.removePage(advisor);
        scenario.removePage(customer);
        for (const b of [advisorBrowser, customerBrowser]) {
          if (b) await Promise.race([b.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
        }
        await new Promise((r) => setTimeout(r, 1000));
        if (proxy instanceof Squid) {
          // Chromium's own background requests (Google hosts, failing here) are left out.
          const lines = proxy.requests().filter((r) => String(r.url).includes(NET.host))
            .map((r) => `${r.method} ${r.url} ${r.status}${r.user && r.user !== '-' ? ` user=${r.user}` : ''}`);
          result.proxyLog = [...new Set(lines)];
          if (result.outcome === 'connected') {
            assert(lines.some((l) => l.startsWith(`CONNECT ${NET.host}:443`) && /\/200/.test(l)), `no CONNECT to ${NET.host}:443 went through:\n${lines.join('\n')}`);
          }
        } else {
          // Per connection: CONNECT, the HTTP requests, WebSocket and raw TCP relaying, errors;
          // the client's port is dropped so the list reads as what happened, not to whom.
          const joined = [];
          for (const raw of proxy.output.split('\n')) {
            // "              << 403 Forbidden 36b" answers the request on the line before.
            if (/^\s+<< /.test(raw) && joined.length) joined[joined.length - 1] += ` ${raw.trim()}`;
            else joined.push(raw.trim());
          }
          const lines = joined
            .filter((l) => (l.includes(NET.host) || /before completing request headers/.test(l))
              && !/GET https:\/\/\S+\/assets\//.test(l))
            .map((l) => l.replace(/^\d+\.\d+\.\d+\.\d+:\d+(: | )/, '').replace(/ \d+(\.\d+)?k?b$/, '').slice(0, 110));
          result.proxyLog = [...new Set(lines)].slice(0, 40);
          if (result.outcome === 'connected') {
            assert(lines.some((l) => /-> tcp -> parley\.lab:443/.test(l)), `TURN did not go through the proxy as raw TCP inside TLS:\n${lines.join('\n')}`);
          }
        }
        return `${result.proxyLog.length} distinct entries`;
      });
    }
  }
} finally {
  result.passed = !scenario.broken;
  result.steps = { passed: scenario.passed, failed: scenario.failed, skipped: scenario.skipped };
  result.finished = new Date().toISOString();
  result.durationMs = Date.now() - scenario.started;
  if (server) result.parleyCommand = server.commandLine;
  scenario.writeLogs();
  writeResult();
  for (const b of [advisorBrowser, customerBrowser]) {
    if (b) await Promise.race([b.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
  if (proxy) await proxy.stop();
  if (server) {
    const code = await server.stop({ graceMs: 3000 });
    if (scenario.broken) console.log(`--- parley log (tail) ---\n${server.tail(40)}`);
    if (code !== 0 && !scenario.broken) console.log(`note: parley serve exited with ${code} on SIGTERM`);
  }
  if (proxy) {
    for (const f of ['access.log', 'cache.log', 'squid.out', 'mitmdump.out', 'squid.conf']) {
      const from = path.join(topology.tmp, f);
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(out, f));
    }
  }
  runCleanups();
}
process.exit(scenario.finish());
