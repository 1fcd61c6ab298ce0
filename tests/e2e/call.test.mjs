#!/usr/bin/env node
// End-to-end: an advisor and a customer in headless Chromium against a real `parley serve`.
// The advisor logs in and creates an invitation; the customer opens it, picks devices, waits
// in the lobby; the advisor admits; both see each other's video; chat both ways; the customer
// shares the screen and the advisor receives it as its own tile; the customer's page reloads
// and the call resumes by itself; the customer's WebSocket is cut and comes back by itself; a
// phone-sized (360x640) view of the meeting; the advisor ends the meeting and the customer sees
// it. No request may leave for another host and no CSP violation may happen.
//
//   node call.test.mjs            ICE as usual (host candidates on this machine)
//   node call.test.mjs --relay    ?relay=1: iceTransportPolicy 'relay', through Parley's TURN;
//                                 asserts relay candidate pairs on both sides
//
// Needs PARLEY_BIN (the parley binary), Debian's chromium, and `npm ci` in this folder
// (scripts/install-npm-test-deps.sh tests/e2e). Screenshots, console logs and the server log go
// to $PARLEY_E2E_OUT/<test name>/ (default ./output). Prints PASS/FAIL per step and
// "N passed, N failed"; exit status 0 only when every step passed.
import { ParleyServer, parleyBinary } from './lib/parley.mjs';
import { BrowserPage, launchChromium } from './lib/browsers.mjs';
import { Scenario, assert, outputDir, watchdog } from './lib/scenario.mjs';
import {
  ADVISOR, advisorLogsIn, createInvitation, advisorStartsMeeting, customerJoins, advisorAdmits,
  videoBothWays, videoFlows, sendChat, chatArrives, meetingEnds, onlyOwnRequests, noCspViolations,
  screenshotPath,
} from './lib/steps.mjs';

const relay = process.argv.includes('--relay');
const testName = relay ? 'e2e_chromium_relay' : 'e2e_chromium';
watchdog(175_000);
const out = outputDir(testName);
const scenario = new Scenario(testName, out);

let server = null;
let browser = null;
let advisor = null;
let customer = null;
let invitation = null;
let ids = null;

try {
  await scenario.step('parley serve starts and the advisor account is created', async () => {
    const extraArgs = relay ? ['--set', 'turn.allowed_peers=["127.0.0.0/8"]'] : [];
    server = new ParleyServer({ bin: parleyBinary(), outDir: out, extraArgs });
    await server.start();
    await server.createAdvisor(ADVISOR.username, ADVISOR.password, ADVISOR.displayName);
    return server.origin;
  });

  await scenario.step('headless Chromium starts (advisor and customer in separate contexts)', async () => {
    browser = await launchChromium();
    advisor = await BrowserPage.chromium(browser, 'advisor');
    customer = await BrowserPage.chromium(browser, 'customer');
    scenario.addPage(advisor);
    scenario.addPage(customer);
    return browser.version();
  });

  await scenario.step('the advisor logs in', () => advisorLogsIn(advisor, server.origin, relay));

  await scenario.step('the advisor creates a room and an invitation link', async () => {
    invitation = await createInvitation(advisor, server.origin, 'E2E consultation');
    return `${invitation.url.replace(/#t=.*/, '#t=…')} (${invitation.copied})`;
  });

  await scenario.step('the advisor starts the meeting', () => advisorStartsMeeting(advisor));

  await scenario.step('the customer opens the link, picks devices and waits in the lobby', async () => {
    const chosen = await customerJoins(customer, invitation.url, relay);
    return JSON.stringify(chosen);
  });

  await scenario.step('the advisor admits the customer', async () => {
    ids = await advisorAdmits(advisor, customer);
    if (relay) {
      const policy = await customer.evaluate(() => window.parleyDebug.state().relayOnly);
      assert(policy, 'the customer page does not force relay');
    }
    return JSON.stringify(ids);
  });

  await scenario.step(`both see each other's video${relay ? ' through the TURN relay' : ''}`,
    () => videoBothWays(advisor, customer, ids, { relay }), { timeoutMs: 45_000 });

  await scenario.step('chat messages arrive both ways', async () => {
    await sendChat(customer, 'Hello from the customer');
    await chatArrives(advisor, 'Hello from the customer');
    await sendChat(advisor, 'Hello, welcome!');
    await chatArrives(customer, 'Hello, welcome!');
  });

  await scenario.step('the customer shares the screen and the advisor receives it as its own tile', async () => {
    await customer.click('[data-testid=share-screen]');
    await advisor.waitVisible(`[data-testid=video-tile][data-kind=screen][data-participant-id="${ids.customerId}"]`, 20_000);
    const frames = await videoFlows(advisor, ids.customerId, 'screen');
    const camera = await videoFlows(advisor, ids.customerId, 'camera');
    return `screen frames ${frames.first}->${frames.later}, camera still ${camera.first}->${camera.later}`;
  }, { timeoutMs: 45_000 });

  await scenario.step('the customer stops sharing and the screen tile goes away', async () => {
    await customer.click('[data-testid=share-screen]');
    await advisor.waitFor((id) => !document.querySelector(`[data-testid=video-tile][data-kind=screen][data-participant-id="${id}"]`),
      ids.customerId, 15_000, 'the screen tile to disappear');
  });

  await scenario.step("the customer's page reloads and the call resumes by itself", async () => {
    await customer.reload();
    // No form: the guest cookie and sessionStorage bring the customer straight back.
    await customer.waitVisible('[data-testid=meeting]', 20_000);
    const formShown = await customer.evaluate(() => Boolean(document.querySelector('[data-testid=join-form]')));
    assert(!formShown, 'the join form was shown after the reload');
    const sameId = await customer.evaluate(() => window.parleyDebug.state().me.id);
    assert(sameId === ids.customerId, `the customer came back as ${sameId}, not ${ids.customerId}`);
    return videoBothWays(advisor, customer, ids, { relay });
  }, { timeoutMs: 60_000 });

  await scenario.step("the customer's WebSocket is cut and comes back by itself", async () => {
    const dropped = await customer.evaluate(() => {
      window.e2eOldSocket = window.parleyDebug.ws();
      return window.parleyDebug.dropWebSocket();
    });
    assert(dropped, 'there was no open WebSocket to cut');
    await customer.waitFor(() => {
      const ws = window.parleyDebug.ws();
      return ws && ws !== window.e2eOldSocket && ws.readyState === WebSocket.OPEN
        && window.parleyDebug.state().view === 'meeting';
    }, null, 20_000, 'a new signaling socket');
    await advisor.waitFor((id) => {
      const p = window.parleyDebug.state().participants.find((x) => x.id === id);
      return p && p.connected !== false;
    }, ids.customerId, 15_000, 'the customer to show as connected again');
    await sendChat(customer, 'Still here after the cut');
    await chatArrives(advisor, 'Still here after the cut');
    const flowing = await videoFlows(advisor, ids.customerId, 'camera');
    return `video still flowing ${flowing.first}->${flowing.later}`;
  }, { timeoutMs: 45_000 });

  if (!relay) {
    await scenario.step('phone-sized viewport (360x640): tiles stack, nothing overflows', async () => {
      await customer.setViewport({ width: 360, height: 640 });
      await new Promise((r) => setTimeout(r, 500));
      await customer.screenshot(screenshotPath(out, 'phone-360x640-meeting-customer.png'));
      const layout = await customer.evaluate(() => {
        const tiles = [...document.querySelectorAll('[data-testid=video-tile]')].map((t) => t.getBoundingClientRect());
        const controls = [...document.querySelectorAll('.controls button')].filter((b) => !b.hidden)
          .map((b) => b.getBoundingClientRect());
        return {
          scrollWidth: document.documentElement.scrollWidth,
          lefts: [...new Set(tiles.map((r) => Math.round(r.left)))],
          widest: Math.max(...tiles.map((r) => r.width)),
          controlsInside: controls.every((r) => r.left >= 0 && r.right <= 360),
        };
      });
      assert(layout.scrollWidth <= 360, `the page is ${layout.scrollWidth} px wide at 360`);
      assert(layout.lefts.length === 1, `tiles do not stack: left edges ${layout.lefts}`);
      assert(layout.controlsInside, 'controls reach outside the viewport');
      await customer.setViewport({ width: 1280, height: 800 });
      return JSON.stringify(layout);
    });
  }

  await scenario.step('the advisor ends the meeting and the customer sees that it ended', () => meetingEnds(advisor, customer));

  await scenario.step('no request went to another host and no CSP violation happened', () => {
    const total = onlyOwnRequests([advisor, customer], server.origin);
    noCspViolations([advisor, customer]);
    return `${total} requests, all to ${server.origin}`;
  });
} finally {
  scenario.writeLogs();
  if (browser) await browser.close().catch(() => {});
  if (server) {
    const code = await server.stop();
    if (code !== 0 && !scenario.broken) console.log(`note: parley serve exited with ${code} on SIGTERM`);
    if (scenario.broken) console.log(`--- parley log (tail) ---\n${server.tail(60)}`);
    server.removeDataDir();
  }
}
process.exit(scenario.finish());
