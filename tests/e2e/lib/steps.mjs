// The scenario steps both e2e tests share: what an advisor and a customer do in the browser,
// and the checks on what they see (through the client's data-testid hooks and
// window.parleyDebug).
import path from 'node:path';
import { assert } from './scenario.mjs';

export const ADVISOR = { username: 'advisor', password: 'e2e-Secret-password-1', displayName: 'Alice Advisor' };
export const CUSTOMER_NAME = 'Carl Customer';

// Adds ?relay=1 (forces iceTransportPolicy 'relay') to a URL, before its fragment.
export function withRelay(url, relay) {
  if (!relay) return url;
  const u = new URL(url);
  u.searchParams.set('relay', '1');
  return u.toString();
}

export async function advisorLogsIn(advisor, origin, relay) {
  await advisor.goto(withRelay(`${origin}/`, relay));
  await advisor.fill('[data-testid=login-username]', ADVISOR.username);
  await advisor.fill('[data-testid=login-password]', ADVISOR.password);
  await advisor.click('[data-testid=login-submit]');
  await advisor.waitVisible('[data-testid=dashboard]');
  const who = await advisor.evaluate(() => document.querySelector('.who') && document.querySelector('.who').textContent);
  assert(who && who.includes(ADVISOR.displayName), `dashboard does not greet ${ADVISOR.displayName}: ${who}`);
}

// Creates a room and an invitation in the dashboard; returns the invitation URL.
export async function createInvitation(advisor, origin, roomName) {
  await advisor.fill('[data-testid=room-name]', roomName);
  await advisor.click('[data-testid=create-room]');
  await advisor.waitVisible('[data-testid=room]');
  await advisor.click('[data-testid=room] [data-testid=create-invitation]');
  const url = await advisor.waitFor(() => {
    const input = document.querySelector('[data-testid=invitation-link]');
    return input && input.value;
  }, null, 10_000, 'the invitation link');
  assert(/\/join#t=.+/.test(url), `invitation link has no token: ${url}`);
  await advisor.click('[data-testid=copy-invitation]');
  const copied = await advisor.waitFor(() => {
    const status = document.querySelector('[data-testid=invitation] .copy-status');
    return status && status.textContent;
  }, null, 5000, 'the copy confirmation');
  // The link must point at this server (localhost:PORT) for the browser's origin checks.
  const link = new URL(url);
  assert(link.origin === origin, `invitation link origin ${link.origin} is not the server's ${origin}`);
  return { url, copied };
}

export async function advisorStartsMeeting(advisor) {
  await advisor.click('[data-testid=room] [data-testid=start-meeting]');
  await advisor.waitVisible('[data-testid=meeting]', 20_000);
  await advisor.waitFor(() => window.parleyDebug && window.parleyDebug.state() && window.parleyDebug.state().me,
    null, 10_000, 'the welcome');
  assert(await advisor.evaluate(() => window.parleyDebug.state().me.role === 'host'), 'the advisor is not host');
  await advisor.waitVisible('[data-testid=video-tile][data-self=true][data-kind=camera]');
}

// Opens the invitation, checks the camera preview, picks devices, enters the name, joins and
// waits in the lobby. Returns the devices chosen.
export async function customerJoins(customer, url, relay) {
  await customer.goto(withRelay(url, relay));
  await customer.waitVisible('[data-testid=join-form]');
  await customer.waitFor(() => {
    const video = document.querySelector('[data-testid=preview]');
    return video && video.srcObject && video.videoWidth > 0 && video.srcObject.getVideoTracks().length > 0;
  }, null, 15_000, 'the camera preview');
  // Device lists fill after permission; pick the last microphone and speaker offered.
  await customer.waitFor(() => {
    const mic = document.querySelector('[data-testid=mic-select]');
    return mic && mic.options.length > 0 && mic.options[0].value;
  }, null, 10_000, 'the device lists');
  const counts = await customer.evaluate(() => ({
    cameras: document.querySelector('[data-testid=camera-select]').options.length,
    mics: document.querySelector('[data-testid=mic-select]').options.length,
    speakers: document.querySelector('[data-testid=speaker-select]').options.length,
    speakerShown: !document.querySelector('[data-testid=speaker-select]').closest('.field').hidden,
  }));
  const chosen = { counts };
  if (counts.mics > 1) {
    chosen.mic = await customer.selectIndex('[data-testid=mic-select]', counts.mics - 1);
    await customer.waitFor((id) => {
      const video = document.querySelector('[data-testid=preview]');
      const track = video && video.srcObject && video.srcObject.getAudioTracks()[0];
      return track && track.readyState === 'live' && track.getSettings().deviceId === id;
    }, chosen.mic, 10_000, 'the chosen microphone to be live');
  }
  if (counts.speakerShown && counts.speakers > 1) {
    chosen.speaker = await customer.selectIndex('[data-testid=speaker-select]', counts.speakers - 1);
  }
  chosen.camera = await customer.selectIndex('[data-testid=camera-select]', counts.cameras - 1);
  await customer.fill('[data-testid=join-name]', CUSTOMER_NAME);
  await customer.click('[data-testid=join-button]');
  await customer.waitVisible('[data-testid=lobby-screen]', 15_000);
  const text = await customer.evaluate(() => document.querySelector('[data-testid=lobby-screen]').textContent);
  assert(text.includes('Waiting for your advisor to let you in'), `lobby text: ${text}`);
  return chosen;
}

export async function advisorAdmits(advisor, customer) {
  await advisor.waitVisible('[data-testid=lobby-entry]', 15_000);
  const name = await advisor.evaluate(() => document.querySelector('[data-testid=lobby-entry]').textContent);
  assert(name.includes(CUSTOMER_NAME), `lobby entry shows ${name}`);
  await advisor.click('[data-testid=lobby-entry] [data-testid=admit]');
  await customer.waitVisible('[data-testid=meeting]', 15_000);
  const customerId = await customer.waitFor(() => window.parleyDebug.state().me && window.parleyDebug.state().me.id,
    null, 5000, 'the customer id');
  await advisor.waitVisible(`[data-testid=video-tile][data-participant-id="${customerId}"][data-kind=camera]`);
  const advisorId = await advisor.evaluate(() => window.parleyDebug.state().me.id);
  return { customerId, advisorId };
}

// framesDecoded of the inbound video tracks labelled `label` ('camera' | 'screen') from one
// remote participant; -1 while there is no connection to it.
export function framesFrom(page, remoteId, label) {
  return page.evaluate(async ([id, wanted]) => {
    if (!window.parleyDebug) return -1;
    const stats = await window.parleyDebug.stats();
    const peer = stats[id];
    if (!peer) return -1;
    return peer.inbound.filter((s) => s.kind === 'video' && s.label === wanted)
      .reduce((sum, s) => sum + (s.framesDecoded || 0), 0);
  }, [remoteId, label]);
}

// Waits until frames are decoded and then still increasing (video really flows).
export async function videoFlows(page, remoteId, label, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let first = -1;
  while (Date.now() < deadline) {
    first = await framesFrom(page, remoteId, label).catch(() => -1);
    if (first > 5) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!(first > 5)) {
    const state = await connectionDump(page, remoteId);
    throw new Error(`${page.name}: no ${label} video decoded from ${remoteId} within ${timeout} ms `
      + `(framesDecoded ${first})\n${JSON.stringify(state, null, 1)}`);
  }
  let later = first;
  while (Date.now() < deadline + 10_000) {
    await new Promise((r) => setTimeout(r, 500));
    later = await framesFrom(page, remoteId, label);
    // A lower count is a new connection (after a reload): count from there.
    if (later < first) first = Math.max(later, 0);
    else if (later >= first + 10) return { first, later };
  }
  throw new Error(`${page.name}: ${label} framesDecoded from ${remoteId} stopped at ${later} (was ${first})`);
}

export function selectedPair(page, remoteId) {
  return page.evaluate(async (id) => {
    const stats = await window.parleyDebug.stats();
    return stats[id] ? stats[id].pair : null;
  }, remoteId);
}

// Both sides' view of their connection to the other, for failure messages.
async function connectionDump(page, remoteId) {
  return page.evaluate(async (id) => {
    const stats = window.parleyDebug ? await window.parleyDebug.stats() : {};
    return { peer: stats[id] || null, meeting: window.parleyDebug ? window.parleyDebug.state() : null };
  }, remoteId).catch((err) => ({ error: err.message }));
}

export async function videoBothWays(advisor, customer, ids, { relay }) {
  let a;
  let c;
  const began = Date.now();
  try {
    a = await videoFlows(advisor, ids.customerId, 'camera');
    a.ms = Date.now() - began;
    c = await videoFlows(customer, ids.advisorId, 'camera');
    c.ms = Date.now() - began - a.ms;
  } catch (err) {
    const other = await connectionDump(customer, ids.advisorId);
    throw new Error(`${err.message}\n--- customer side ---\n${JSON.stringify(other, null, 1)}`);
  }
  if (Date.now() - began > 8000) {
    // Slow but recovered: keep the negotiation history in the log for whoever looks next.
    for (const [page, remote] of [[advisor, ids.customerId], [customer, ids.advisorId]]) {
      const dump = await connectionDump(page, remote);
      console.log(`  slow connection (${Date.now() - began} ms: advisor side ${a.ms} ms, customer side ${c.ms} ms), ${page.name} events:\n    `
        + ((dump.peer && dump.peer.events) || []).join('\n    '));
    }
  }
  const pairs = {
    advisor: await selectedPair(advisor, ids.customerId),
    customer: await selectedPair(customer, ids.advisorId),
  };
  for (const [who, pair] of Object.entries(pairs)) {
    assert(pair && pair.local && pair.remote, `${who}: no selected candidate pair`);
    if (relay) {
      assert(pair.local.candidateType === 'relay', `${who}: local candidate is ${pair.local.candidateType}, want relay`);
      assert(pair.remote.candidateType === 'relay', `${who}: remote candidate is ${pair.remote.candidateType}, want relay`);
      assert(pair.local.relayProtocol, `${who}: relay candidate without relayProtocol`);
    }
  }
  const describe = (p) => `${p.local.candidateType}${p.local.relayProtocol ? `/${p.local.relayProtocol}` : ''}->${p.remote.candidateType}`;
  return `advisor decoded ${a.first}->${a.later}, customer ${c.first}->${c.later}; pairs advisor ${describe(pairs.advisor)}, customer ${describe(pairs.customer)}`;
}

export async function sendChat(from, text) {
  await from.fill('[data-testid=chat-input]', text);
  await from.click('[data-testid=chat-send]');
}

export async function chatArrives(to, text, timeout = 10_000) {
  await to.waitFor((wanted) => [...document.querySelectorAll('[data-testid=chat-message]:not([data-pending])')]
    .some((li) => li.textContent.includes(wanted)), text, timeout, `chat message "${text}"`);
}

export async function meetingEnds(advisor, customer) {
  await advisor.click('[data-testid=end-meeting]');
  await advisor.click('[data-testid=confirm-ok]');
  await customer.waitVisible('[data-testid=final-screen][data-reason=ended]', 15_000);
  const text = await customer.evaluate(() => document.querySelector('[data-testid=final-screen]').textContent);
  assert(text.includes('The meeting has ended'), `customer sees: ${text}`);
  await advisor.waitVisible('[data-testid=final-screen][data-reason=ended]', 15_000);
}

// Every request of every page went to the server under test (nothing from another host).
export function onlyOwnRequests(pages, origin) {
  const foreign = [];
  let total = 0;
  for (const page of pages) {
    for (const url of page.requests) {
      total += 1;
      if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:') || url === 'about:blank') continue;
      foreign.push(`${page.name}: ${url}`);
    }
  }
  assert(!foreign.length, `requests to other hosts:\n  ${foreign.join('\n  ')}`);
  return total;
}

export function noCspViolations(pages) {
  const violations = [];
  for (const page of pages) {
    for (const line of page.consoleErrors) {
      if (/Content[- ]Security[- ]Policy|Refused to (load|execute|apply)/i.test(line)) violations.push(`${page.name}: ${line}`);
    }
  }
  assert(!violations.length, `CSP violations:\n  ${violations.join('\n  ')}`);
}

export function screenshotPath(outDir, name) {
  return path.join(outDir, name);
}
