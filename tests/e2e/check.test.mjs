#!/usr/bin/env node
// End-to-end: the /check page (docs/netcheck.md, the browser's network check) against a real
// `parley serve` on loopback. The page runs every check on load; in Chromium with fake devices
// and Parley's TURN on 127.0.0.1 the browser, server, WebSocket echo, camera, microphone and
// codec checks pass, every TURN transport gives a relay candidate with its relayProtocol
// (udp/tcp/tls), the relayed loopback call carries more than two streams, the server grades
// the report and the page shows the grade; the downloaded report parses and lists every check;
// "Run again" works from the keyboard; a phone-sized view does not overflow.
//
//   node check.test.mjs             Chromium (playwright-core)
//   node check.test.mjs --firefox   Firefox ESR (puppeteer-core over WebDriver BiDi): the
//                                   checks a browser without H.264 gives (codecs: VP8, no H.264)
//
// Needs PARLEY_BIN, Debian's chromium / firefox-esr and `npm ci` in this folder. Output (a
// screenshot per step, the downloaded report, console log, server log) as in call.test.mjs.
import fs from 'node:fs';
import path from 'node:path';
import { ParleyServer, parleyBinary } from './lib/parley.mjs';
import { BrowserPage, launchChromium, launchFirefox } from './lib/browsers.mjs';
import { Scenario, assert, outputDir, watchdog } from './lib/scenario.mjs';
import { onlyOwnRequests, noCspViolations, screenshotPath } from './lib/steps.mjs';

const firefox = process.argv.includes('--firefox');
const testName = firefox ? 'e2e_check_firefox' : 'e2e_check_chromium';
watchdog(175_000);
const out = outputDir(testName);
const scenario = new Scenario(testName, out);

// Every check the page reports (client/assets/js/netcheck.js CHECKS, docs/netcheck.md).
const CHECK_IDS = ['browser', 'https', 'wss_direct', 'host_candidates', 'srflx_candidates', 'turn_udp', 'turn_tcp',
  'turn_tls', 'turn_tls_443', 'bandwidth', 'camera', 'microphone', 'codecs'];
const VERDICTS = ['pass', 'warn', 'fail', 'skipped'];
const DONE_WITHIN_MS = 40_000;

let server = null;
let browser = null;
let page = null;
let report = null;

// The rows as the page shows them: {id: verdict}.
const rowVerdicts = (p) => p.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-check]')]
  .map((row) => [row.dataset.check, row.dataset.verdict])));

async function waitDone(p, timeout) {
  await p.waitFor(() => {
    const section = document.querySelector('[data-testid=check]');
    return section && section.dataset.state === 'done' && window.parleyCheckReport;
  }, null, timeout, 'the check page to reach data-state=done');
  return p.evaluate(() => window.parleyCheckReport);
}

const byId = (r, id) => r.checks.find((c) => c.id === id);
const line = (c) => `${c.id}=${c.verdict}${c.failure ? `(${c.failure})` : ''}`;

try {
  await scenario.step('parley serve starts (TURN may relay to loopback)', async () => {
    // The relayed loopback call's two allocations talk to each other on 127.0.0.1.
    server = new ParleyServer({ bin: parleyBinary(), outDir: out, extraArgs: ['--set', 'turn.allowed_peers=["127.0.0.0/8"]'] });
    await server.start();
    return server.origin;
  });

  await scenario.step(`headless ${firefox ? 'Firefox ESR' : 'Chromium'} starts`, async () => {
    if (firefox) {
      browser = await launchFirefox();
      page = await BrowserPage.puppeteer(browser, 'check-firefox');
    } else {
      browser = await launchChromium();
      page = await BrowserPage.chromium(browser, 'check');
    }
    scenario.addPage(page);
    return browser.version();
  }, { timeoutMs: 60_000 });

  await scenario.step(`/check runs every check and is graded within ${DONE_WITHIN_MS / 1000} s`, async () => {
    const began = Date.now();
    await page.goto(`${server.origin}/check`);
    const state = await page.evaluate(() => document.querySelector('[data-testid=check]').dataset.state);
    assert(state === 'running' || state === 'done', `data-state is ${state} right after load`);
    report = await waitDone(page, DONE_WITHIN_MS);
    fs.writeFileSync(path.join(out, 'check-report-hook.json'), `${JSON.stringify(report, null, 2)}\n`);
    return `${((Date.now() - began) / 1000).toFixed(1)} s: grade ${report.grade}; ${report.checks.map(line).join(', ')}`;
  }, { timeoutMs: DONE_WITHIN_MS + 25_000 });

  await scenario.step('every check has a row with its verdict, and the report matches the rows', async () => {
    const rows = await rowVerdicts(page);
    for (const id of CHECK_IDS) {
      assert(VERDICTS.includes(rows[id]), `row ${id}: data-verdict ${rows[id]}`);
      const c = byId(report, id);
      assert(c, `the report has no check ${id}`);
      assert(c.verdict === rows[id], `${id}: report says ${c.verdict}, the row ${rows[id]}`);
      assert(typeof c.durationMs === 'number' && c.durationMs >= 0, `${id}: durationMs ${c.durationMs}`);
      assert(typeof c.summary === 'string' && c.summary.length > 0, `${id}: no summary`);
    }
    assert(report.checks.length === CHECK_IDS.length, `the report has ${report.checks.length} checks`);
    return JSON.stringify(rows);
  });

  await scenario.step('browser, https, wss_direct, camera and microphone pass', async () => {
    for (const id of ['browser', 'https', 'wss_direct', 'camera', 'microphone']) {
      const c = byId(report, id);
      assert(c.verdict === 'pass', `${id}: ${c.verdict} — ${c.summary}`);
    }
    const wss = byId(report, 'wss_direct');
    assert(typeof wss.details.rttMs === 'number', `wss_direct has no RTT: ${JSON.stringify(wss.details)}`);
    const camera = byId(report, 'camera');
    const preview = await page.evaluate(() => {
      const video = document.querySelector('.check-preview');
      return video && !video.closest('[hidden]') && video.srcObject ? video.srcObject.getVideoTracks().length : 0;
    });
    assert(preview === 1, 'no camera preview on the page');
    return `${byId(report, 'browser').summary}; echo RTT ${wss.details.rttMs} ms; camera ${camera.summary}`;
  });

  await scenario.step(firefox ? 'codecs: VP8 present, H.264 absent (Debian\'s Firefox)' : 'codecs: VP8 and H.264 present', async () => {
    const c = byId(report, 'codecs');
    assert(c.verdict === 'pass', `codecs: ${c.verdict} — ${c.summary}`);
    assert(c.details.vp8 === true, `no VP8: ${JSON.stringify(c.details)}`);
    if (firefox) assert(c.details.h264 === false, `Firefox reports H.264: ${JSON.stringify(c.details)}`);
    else assert(c.details.h264 === true, `Chromium reports no H.264: ${JSON.stringify(c.details)}`);
    return `${c.summary} (${c.details.video.join(', ')})`;
  });

  await scenario.step('TURN over UDP, TCP and TLS on the HTTPS port give relay candidates with their relayProtocol', async () => {
    const seen = [];
    const want = { turn_udp: 'udp', turn_tcp: 'tcp', turn_tls_443: 'tls' };
    for (const [id, protocol] of Object.entries(want)) {
      const c = byId(report, id);
      assert(c.verdict === 'pass', `${id}: ${c.verdict} — ${c.summary} ${JSON.stringify(c.details)}`);
      assert(c.details.relayProtocol === protocol, `${id}: relayProtocol ${c.details.relayProtocol}, expected ${protocol}`);
      assert(typeof c.details.url === 'string' && c.details.url.startsWith(protocol === 'tls' ? 'turns:' : 'turn:'),
        `${id}: url ${c.details.url}`);
      seen.push(`${id} ${c.details.relayProtocol} (from ${c.details.relayProtocolSource}) ${c.details.url}`);
    }
    const tls = byId(report, 'turn_tls');
    assert(VERDICTS.includes(tls.verdict), `turn_tls: ${tls.verdict}`);
    seen.push(line(tls));
    return seen.join('; ');
  });

  await scenario.step('the relayed loopback call carries more than 2000 kbit/s', async () => {
    const c = byId(report, 'bandwidth');
    assert(c.verdict === 'pass', `bandwidth: ${c.verdict} — ${c.summary} ${JSON.stringify(c.details)}`);
    assert(c.details.kbps > 2000, `bandwidth ${c.details.kbps} kbit/s`);
    assert(c.details.streams === Math.floor(c.details.kbps / 1000), `streams ${c.details.streams} for ${c.details.kbps} kbit/s`);
    return `${c.summary} (${JSON.stringify(c.details)})`;
  });

  await scenario.step('host and server-reflexive candidates: local addresses found, UDP to the STUN port works', async () => {
    const host = byId(report, 'host_candidates');
    const srflx = byId(report, 'srflx_candidates');
    assert(host.verdict === 'pass' && host.details.count > 0, `host_candidates: ${host.verdict} — ${host.summary}`);
    assert(srflx.verdict === 'pass', `srflx_candidates: ${srflx.verdict} — ${srflx.summary}`);
    return `${host.summary}; ${srflx.summary}`;
  });

  await scenario.step('the page shows the grade the server gave, with its headline', async () => {
    // Loopback is an open network: with every check passing the rules give the best grade.
    assert(report.grade === 'best', `grade ${report.grade}: ${report.headline} ${JSON.stringify(report.remedies)}`);
    assert(report.remedies.length === 0, `remedies on an open network: ${JSON.stringify(report.remedies)}`);
    assert(typeof report.headline === 'string' && report.headline.length > 0, 'no headline');
    assert(Array.isArray(report.remedies), 'no remedies list');
    const shown = await page.evaluate(() => {
      const box = document.querySelector('.check-grade');
      return {
        visible: Boolean(box) && !box.hidden,
        grade: box && box.dataset.grade,
        title: document.querySelector('[data-testid=check-grade]').textContent,
        headline: document.querySelector('[data-testid=check-headline]').textContent,
        remedies: [...document.querySelectorAll('[data-testid=check-remedies] li')].map((li) => li.textContent),
      };
    });
    assert(shown.visible, 'the grade is not shown');
    assert(shown.grade === report.grade, `the page shows grade ${shown.grade}, the report has ${report.grade}`);
    assert(shown.title === report.gradeTitle && shown.title.length > 0, `title ${shown.title} vs ${report.gradeTitle}`);
    assert(shown.headline === report.headline, 'the headline shown differs from the report');
    assert(JSON.stringify(shown.remedies) === JSON.stringify(report.remedies), 'the remedies shown differ from the report');
    await page.screenshot(screenshotPath(out, 'check-graded.png'));
    return `${report.gradeTitle}: ${report.headline} (${report.remedies.length} remedies)`;
  });

  if (!firefox) {
    await scenario.step('"Download report" saves the report as JSON with every check', async () => {
      const [download] = await Promise.all([
        page.page.waitForEvent('download', { timeout: 10_000 }),
        page.click('[data-testid=check-download]'),
      ]);
      const file = path.join(out, download.suggestedFilename() || 'parley-check.json');
      await download.saveAs(file);
      const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert(saved.version === 1, `version ${saved.version}`);
      assert(saved.url === server.origin, `url ${saved.url}`);
      assert(typeof saved.client === 'string' && /Chrom/.test(saved.client), `client ${saved.client}`);
      assert(!Number.isNaN(Date.parse(saved.startedAt)), `startedAt ${saved.startedAt}`);
      assert(typeof saved.durationMs === 'number' && saved.durationMs > 0, `durationMs ${saved.durationMs}`);
      assert(saved.proxy === null, `proxy ${saved.proxy}`);
      assert(saved.grade === report.grade && saved.headline === report.headline, 'the file has another grade than the page');
      const ids = saved.checks.map((c) => c.id);
      for (const id of CHECK_IDS) assert(ids.includes(id), `the file has no check ${id}`);
      return `${path.basename(file)}: ${ids.length} checks, grade ${saved.grade}`;
    });

    await scenario.step('"Run again" from the keyboard runs the checks again', async () => {
      const firstStartedAt = report.startedAt;
      await page.page.focus('[data-testid=check-again]');
      await page.page.keyboard.press('Enter');
      await page.waitFor(() => document.querySelector('[data-testid=check]').dataset.state === 'running'
        || (window.parleyCheckReport && window.parleyCheckReport.startedAt), null, 5000, 'the second run to start');
      await page.waitFor((first) => window.parleyCheckReport && window.parleyCheckReport.startedAt !== first
        && document.querySelector('[data-testid=check]').dataset.state === 'done', firstStartedAt, DONE_WITHIN_MS,
      'the second run to finish');
      const second = await page.evaluate(() => window.parleyCheckReport);
      assert(second.checks.length === CHECK_IDS.length, `second run has ${second.checks.length} checks`);
      return `grade ${second.grade}; ${second.checks.map(line).join(', ')}`;
    }, { timeoutMs: DONE_WITHIN_MS + 10_000 });

    await scenario.step('phone-sized viewport (360x640): nothing overflows', async () => {
      await page.setViewport({ width: 360, height: 640 });
      await new Promise((r) => setTimeout(r, 400));
      await page.screenshot(screenshotPath(out, 'check-phone-360x640.png'));
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert(width <= 360, `the page is ${width} px wide at 360`);
      await page.setViewport({ width: 1280, height: 800 });
      return `scrollWidth ${width}`;
    });
  }

  await scenario.step('no request went to another host and no CSP violation happened', () => {
    const total = onlyOwnRequests([page], server.origin);
    noCspViolations([page]);
    return `${total} requests, all to ${server.origin}`;
  });
} finally {
  scenario.writeLogs();
  if (browser) await browser.close().catch(() => {});
  if (server) {
    await server.stop();
    if (scenario.broken) console.log(`--- parley log (tail) ---\n${server.tail(60)}`);
    server.removeDataDir();
  }
}
process.exit(scenario.finish());
