#!/usr/bin/env node
// End-to-end across browsers: the customer in Firefox ESR (puppeteer-core over WebDriver BiDi)
// calls the advisor in Chromium (playwright-core), against a real `parley serve`. Login,
// invitation, lobby, admit, video both ways (framesDecoded increasing on both sides), chat,
// end of meeting; no request to another host.
//
// Needs PARLEY_BIN, Debian's chromium and firefox-esr, and `npm ci` in this folder. Output as
// in call.test.mjs.
import { ParleyServer, parleyBinary } from './lib/parley.mjs';
import { BrowserPage, launchChromium, launchFirefox } from './lib/browsers.mjs';
import { Scenario, outputDir, watchdog } from './lib/scenario.mjs';
import {
  ADVISOR, advisorLogsIn, createInvitation, advisorStartsMeeting, customerJoins, advisorAdmits,
  videoBothWays, sendChat, chatArrives, meetingEnds, onlyOwnRequests, noCspViolations,
} from './lib/steps.mjs';

const testName = 'e2e_firefox_chromium';
watchdog(175_000);
const out = outputDir(testName);
const scenario = new Scenario(testName, out);

let server = null;
let chromium = null;
let firefox = null;
let advisor = null;
let customer = null;
let invitation = null;
let ids = null;

try {
  await scenario.step('parley serve starts and the advisor account is created', async () => {
    server = new ParleyServer({ bin: parleyBinary(), outDir: out });
    await server.start();
    await server.createAdvisor(ADVISOR.username, ADVISOR.password, ADVISOR.displayName);
    return server.origin;
  });

  await scenario.step('Chromium (advisor) and Firefox ESR (customer) start', async () => {
    [chromium, firefox] = await Promise.all([launchChromium(), launchFirefox()]);
    advisor = await BrowserPage.chromium(chromium, 'advisor-chromium');
    customer = await BrowserPage.puppeteer(firefox, 'customer-firefox');
    scenario.addPage(advisor);
    scenario.addPage(customer);
    return `${chromium.version()} / ${await firefox.version()}`;
  }, { timeoutMs: 60_000 });

  await scenario.step('the advisor logs in', () => advisorLogsIn(advisor, server.origin, false));

  await scenario.step('the advisor creates a room and an invitation link', async () => {
    invitation = await createInvitation(advisor, server.origin, 'Cross-browser consultation');
  });

  await scenario.step('the advisor starts the meeting', () => advisorStartsMeeting(advisor));

  await scenario.step('the Firefox customer opens the link, picks devices and waits in the lobby',
    async () => JSON.stringify(await customerJoins(customer, invitation.url, false)));

  await scenario.step('the advisor admits the customer', async () => {
    ids = await advisorAdmits(advisor, customer);
    return JSON.stringify(ids);
  });

  await scenario.step("Chromium and Firefox see each other's video",
    () => videoBothWays(advisor, customer, ids, { relay: false }), { timeoutMs: 45_000 });

  await scenario.step('chat messages arrive both ways', async () => {
    await sendChat(customer, 'Hello from Firefox');
    await chatArrives(advisor, 'Hello from Firefox');
    await sendChat(advisor, 'Hello from Chromium');
    await chatArrives(customer, 'Hello from Chromium');
  });

  await scenario.step('the advisor ends the meeting and the Firefox customer sees that it ended',
    () => meetingEnds(advisor, customer));

  await scenario.step('no request went to another host and no CSP violation happened', () => {
    const total = onlyOwnRequests([advisor, customer], server.origin);
    noCspViolations([advisor, customer]);
    return `${total} requests, all to ${server.origin}`;
  });
} finally {
  scenario.writeLogs();
  if (chromium) await chromium.close().catch(() => {});
  if (firefox) await firefox.close().catch(() => {});
  if (server) {
    await server.stop();
    if (scenario.broken) console.log(`--- parley log (tail) ---\n${server.tail(60)}`);
    server.removeDataDir();
  }
}
process.exit(scenario.finish());
