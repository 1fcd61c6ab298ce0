#!/usr/bin/env node
// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser is
// downloaded) runs relay.html: two RTCPeerConnections with iceTransportPolicy 'relay' and
// the TURN server under test as their only ICE server, fake-camera video both ways. A case
// passes when both sides decoded more than --min-frames frames within --timeout seconds and
// both selected candidate pairs have a local relay candidate whose relayProtocol is the
// expected one (udp / tcp / tls).
//
// Usage:
//   node turn_relay.test.mjs --username alice --credential secretpw \
//        udp=turn:127.0.0.1:3478?transport=udp tcp=turn:127.0.0.1:3478?transport=tcp \
//        tls=turns:127.0.0.1:5349?transport=tcp
// Each positional argument is EXPECTED_RELAY_PROTOCOL=ICE_URL; a name may be prefixed as
// NAME:EXPECTED=URL. Prints one "PASS name ..." / "FAIL name: why" line per case, a
// "RESULT name {json}" line with the details, and closes with "N passed, N failed".
// Exit status: 0 all passed, 1 some failed, 2 usage or browser start-up error.
//
// Set CHROMIUM (default /usr/bin/chromium) to use another binary.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const opts = { username: null, credential: null, timeout: 30, minFrames: 10, cases: [],
                 verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--username') opts.username = next();
    else if (a === '--credential') opts.credential = next();
    else if (a === '--timeout') opts.timeout = Number(next());
    else if (a === '--min-frames') opts.minFrames = Number(next());
    else if (a === '--verbose' || a === '-v') opts.verbose = true;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else {
      const eq = a.indexOf('=');
      if (eq < 0) throw new Error(`case must be [NAME:]EXPECTED=URL, got ${a}`);
      let head = a.slice(0, eq);
      const url = a.slice(eq + 1);
      let name = head;
      const colon = head.indexOf(':');
      if (colon >= 0) { name = head.slice(0, colon); head = head.slice(colon + 1); }
      if (!['udp', 'tcp', 'tls'].includes(head)) throw new Error(`expected protocol must be udp, tcp or tls: ${a}`);
      opts.cases.push({ name, expect: head, url });
    }
  }
  if (!opts.cases.length) throw new Error('no case given');
  return opts;
}

function serve(html) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(html);
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function check(c, r, opts) {
  const problems = [];
  if (r.gatherErrors && r.gatherErrors.length) {
    problems.push(`icecandidateerror: ${JSON.stringify(r.gatherErrors)}`);
  }
  for (const side of ['pc1', 'pc2']) {
    const relays = (r.gathered[side] || []).filter((g) => g.type === 'relay');
    if (!relays.length) problems.push(`${side} gathered no relay candidate from ${c.url}`);
    const inbound = r[`${side}Inbound`] || { framesDecoded: 0 };
    if (!(inbound.framesDecoded > opts.minFrames)) {
      problems.push(`${side} decoded ${inbound.framesDecoded} frames (want > ${opts.minFrames}) ` +
                    `state ${r[`${side}State`]}`);
    }
    const pair = r[`${side}Pair`];
    if (!pair) { problems.push(`${side} has no selected candidate pair`); continue; }
    if (pair.local.candidateType !== 'relay') {
      problems.push(`${side} selected local candidate type ${pair.local.candidateType}, want relay`);
    }
    if (pair.local.relayProtocol !== c.expect) {
      problems.push(`${side} selected local candidate relayProtocol ${pair.local.relayProtocol}, want ${c.expect}`);
    }
    if (pair.remote.candidateType !== 'relay') {
      problems.push(`${side} selected remote candidate type ${pair.remote.candidateType}, want relay`);
    }
  }
  return problems;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`usage error: ${err.message}`);
    return 2;
  }
  // Hard stop whatever happens inside the browser.
  const watchdogMs = (opts.timeout + 30) * 1000 * opts.cases.length + 30000;
  const watchdog = setTimeout(() => {
    console.error(`FAIL watchdog: no result after ${watchdogMs} ms`);
    process.exit(1);
  }, watchdogMs);

  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    console.error(`cannot load playwright-core (run scripts/install-npm-test-deps.sh): ${err.message}`);
    return 2;
  }
  const html = fs.readFileSync(path.join(here, 'relay.html'), 'utf8');
  const server = await serve(html);
  const origin = `http://127.0.0.1:${server.address().port}/`;

  let browser;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      timeout: 60000,
      args: [
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--no-sandbox',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--ignore-certificate-errors', '--no-first-run', '--disable-dev-shm-usage',
      ],
    });
  } catch (err) {
    console.error(`cannot start chromium: ${err.message}`);
    server.close();
    return 2;
  }

  let passed = 0, failed = 0;
  try {
    for (const c of opts.cases) {
      const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
      const page = await context.newPage();
      const consoleLines = [];
      page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
      let r = null, error = null;
      try {
        await page.goto(origin, { timeout: 15000 });
        const iceServers = [{ urls: c.url, username: opts.username, credential: opts.credential }];
        r = await page.evaluate(
          (args) => window.withTimeout(window.runRelayTest(args), args.timeoutMs + 15000, 'runRelayTest'),
          { iceServers, timeoutMs: opts.timeout * 1000, minFrames: opts.minFrames });
      } catch (err) {
        error = err.message.split('\n')[0];
      }
      const problems = error ? [error] : check(c, r, opts);
      if (r) {
        const { log, ...rest } = r;
        console.log(`RESULT ${c.name} ${JSON.stringify(rest)}`);
        if (opts.verbose || problems.length) log.forEach((l) => console.log(`  [${c.name}] ${l}`));
      }
      if (problems.length) consoleLines.forEach((l) => console.log(`  [${c.name} console] ${l}`));
      if (problems.length) {
        failed++;
        console.log(`FAIL ${c.name} (${c.url}): ${problems.join('; ')}`);
      } else {
        passed++;
        const p1 = r.pc1Pair, p2 = r.pc2Pair;
        console.log(`PASS ${c.name} (${c.url}): framesDecoded ${r.pc1Inbound.framesDecoded}/${r.pc2Inbound.framesDecoded}, ` +
                    `local relay ${p1.local.address}:${p1.local.port} relayProtocol=${p1.local.relayProtocol} / ` +
                    `${p2.local.address}:${p2.local.port} relayProtocol=${p2.local.relayProtocol}, ${r.elapsedMs} ms`);
      }
      await context.close();
    }
  } finally {
    await browser.close().catch(() => {});
    server.close();
    clearTimeout(watchdog);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`FAIL internal: ${err.stack || err}`);
  process.exit(2);
});
