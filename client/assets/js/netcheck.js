// The browser's half of the network check (docs/netcheck.md, "Browser-only ids"): each check as
// a function resolving to {verdict, summary, failure, target, details}, and runChecks() that
// runs them all (concurrently where they do not depend on each other) and reports each result
// as it finishes. No DOM here: the /check page (pages/check.js) shows what this measures, and
// the server grades it (POST /api/v1/netcheck/grade) with the same rules as `parley netcheck`.
import { ApiError, post } from './api.js';

export const REPORT_VERSION = 1;
// Bandwidth planning per video stream, each way (docs/netcheck.md).
export const STREAM_KBPS = 1000;

// Every check of the page, in the order the page shows and the report lists them. Titles are
// for the customer; the summary and details say the rest for their IT.
export const CHECKS = [
  { id: 'browser', title: 'Browser support' },
  { id: 'https', title: 'Connection to the Parley server' },
  { id: 'wss_direct', title: 'Meeting connection (WebSocket)' },
  { id: 'host_candidates', title: 'Local network addresses' },
  { id: 'srflx_candidates', title: 'Public address (STUN over UDP)' },
  { id: 'turn_udp', title: 'Media relay over UDP' },
  { id: 'turn_tcp', title: 'Media relay over TCP' },
  { id: 'turn_tls', title: 'Media relay over TLS' },
  { id: 'turn_tls_443', title: 'Media relay over TLS on the HTTPS port' },
  { id: 'bandwidth', title: 'Bandwidth for video' },
  { id: 'camera', title: 'Camera' },
  { id: 'microphone', title: 'Microphone' },
  { id: 'codecs', title: 'Video formats (VP8, H.264)' },
];

// Deadlines (each check has its own, so the whole run stays well under a minute).
const REQUEST_TIMEOUT_MS = 8000;
const ECHO_TIMEOUT_MS = 6000;
const ECHO_ROUND_TRIPS = 5;
const GATHER_TIMEOUT_MS = 6000;
const PERMISSION_TIMEOUT_MS = 30_000;
const BANDWIDTH_CONNECT_TIMEOUT_MS = 8000;
const BANDWIDTH_SEND_MS = 3000;
const BANDWIDTH_MAX_BYTES = 4 * 1024 * 1024;
const BANDWIDTH_CHUNK_BYTES = 16 * 1024;
const BANDWIDTH_HIGH_WATER = 1024 * 1024;
const BANDWIDTH_LOW_WATER = 256 * 1024;
const BANDWIDTH_DRAIN_MS = 2500;

const result = (verdict, summary, { failure = null, target = null, details = {} } = {}) =>
  ({ verdict, summary, failure, target, details });
const pass = (summary, extra) => result('pass', summary, extra);
const warn = (summary, extra) => result('warn', summary, extra);
const fail = (summary, extra) => result('fail', summary, extra);
const skipped = (summary, extra) => result('skipped', summary, extra);

const brokenSummary = (err) => `The check broke: ${String(err && err.message ? err.message : err).slice(0, 300)}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The promise's outcome, or onTimeout()'s (its value, or its exception as a rejection).
function withTimeout(promise, ms, onTimeout) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        try {
          resolve(onTimeout());
        } catch (err) {
          reject(err);
        }
      }, ms);
    }),
  ]);
}

async function fetchWithTimeout(url, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    return await fetch(url, { ...options, signal: controller.signal, cache: 'no-store', credentials: 'same-origin' });
  } finally {
    clearTimeout(timer);
  }
}

// "Chrome 120", "Firefox 115 ESR"-style name from the user agent: only for people.
export function browserName(ua = navigator.userAgent || '') {
  const version = (re) => {
    const m = re.exec(ua);
    return m ? m[1] : '';
  };
  if (/Edg\//.test(ua)) return `Microsoft Edge ${version(/Edg\/(\d+)/)}`;
  if (/OPR\//.test(ua)) return `Opera ${version(/OPR\/(\d+)/)}`;
  if (/Firefox\//.test(ua)) return `Firefox ${version(/Firefox\/(\d+)/)}`;
  if (/FxiOS\//.test(ua)) return `Firefox ${version(/FxiOS\/(\d+)/)} (iOS)`;
  if (/CriOS\//.test(ua)) return `Chrome ${version(/CriOS\/(\d+)/)} (iOS)`;
  if (/Chromium\//.test(ua)) return `Chromium ${version(/Chromium\/(\d+)/)}`;
  if (/Chrome\//.test(ua)) return `Chrome ${version(/Chrome\/(\d+)/)}`;
  if (/Safari\//.test(ua)) return `Safari ${version(/Version\/(\d+(?:\.\d+)?)/)}`.trim();
  return 'an unknown browser';
}

export function checkBrowser() {
  const name = browserName();
  const features = {
    RTCPeerConnection: typeof RTCPeerConnection === 'function',
    getUserMedia: Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function'),
    WebSocket: typeof WebSocket === 'function',
    RTCDataChannel: typeof RTCDataChannel === 'function',
    secureContext: window.isSecureContext !== false,
  };
  const missing = Object.entries(features).filter(([, ok]) => !ok).map(([feature]) => feature);
  const details = { name, ...features };
  if (missing.length) {
    return fail(`${name} cannot run video meetings here (missing: ${missing.join(', ')}). Use a current Chrome, `
      + 'Edge, Firefox or Safari.', { failure: 'unsupported', details });
  }
  return pass(`${name} supports video meetings`, { details });
}

// GET the published requirements and POST /api/v1/netcheck for a test session. Resolves
// {result, session} (session null when none could be made).
export async function checkHttps() {
  const target = `${location.origin}/.well-known/parley/requirements.json`;
  let requirements;
  try {
    const response = await fetchWithTimeout('/.well-known/parley/requirements.json', { headers: { Accept: 'application/json' } });
    if (!response.ok) {
      return { result: fail(`The server answered ${response.status} for its network requirements`,
        { failure: response.status === 404 ? 'not_parley' : 'http_status', target, details: { status: response.status } }), session: null };
    }
    try {
      requirements = await response.json();
    } catch {
      requirements = null;
    }
    if (!requirements || typeof requirements !== 'object' || requirements.version === undefined) {
      return { result: fail('The answer is not a Parley server\'s network requirements (a proxy may answer instead)',
        { failure: 'not_parley', target }), session: null };
    }
  } catch (err) {
    const timedOut = err && err.name === 'AbortError';
    return { result: fail(timedOut ? 'The server did not answer within 8 s' : 'The server cannot be reached over HTTPS',
      { failure: timedOut ? 'timeout' : 'unreachable', target }), session: null };
  }
  let session;
  try {
    session = await withTimeout(post('/api/v1/netcheck', {}), REQUEST_TIMEOUT_MS, () => {
      throw new ApiError(0, 'timeout', 'no answer');
    });
  } catch (err) {
    const status = err instanceof ApiError ? err.status : 0;
    const details = { status, code: err instanceof ApiError ? err.code : null };
    const sessionTarget = `POST ${location.origin}/api/v1/netcheck`;
    if (status === 429) {
      return { result: fail(`Too many checks from this network in the last minute: try again in ${err.retryAfterSeconds || 60} s`,
        { failure: 'rate_limited', target: sessionTarget, details }), session: null };
    }
    if (status === 404) {
      return { result: fail('The server has the network check turned off', { failure: 'http_status', target: sessionTarget, details }),
        session: null };
    }
    if (err instanceof ApiError && err.code === 'timeout') {
      return { result: fail('No test session within 8 s', { failure: 'timeout', target: sessionTarget, details }), session: null };
    }
    return { result: fail(status ? `The server answered ${status} for a test session` : 'The server cannot be reached over HTTPS',
      { failure: status ? 'http_status' : 'unreachable', target: sessionTarget, details }), session: null };
  }
  if (!session || !session.turn || !session.echo || typeof session.echo.path !== 'string') {
    return { result: fail('The test session the server gave is incomplete', { failure: 'not_parley', target }), session: null };
  }
  return {
    result: pass('The Parley server answers over HTTPS', {
      target: location.origin,
      details: { requirementsVersion: requirements.version, sessionId: session.id || null, expiresAt: session.expiresAt || null },
    }),
    session,
  };
}

// Echo round trips over the session's WebSocket echo.
export function checkWebSocketEcho(session, track) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const target = `${scheme}://${location.host}${session.echo.path.replace(/ticket=[^&]*/, 'ticket=…')}`;
  return new Promise((resolve) => {
    let ws;
    let opened = false;
    let done = false;
    const rtts = [];
    let sentAt = 0;
    let expected = '';
    const finish = (value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        ws.close(1000, 'check done');
      } catch {
        // Already closed.
      }
      resolve(value);
    };
    const timer = setTimeout(() => finish(rtts.length
      ? warn(`Only ${rtts.length} of ${ECHO_ROUND_TRIPS} echoes came back within ${ECHO_TIMEOUT_MS / 1000} s`,
        { failure: 'timeout', target, details: { roundTrips: rtts.length, rttMs: median(rtts) } })
      : fail(opened ? 'The connection opened but nothing came back (a proxy may hold WebSocket messages)'
        : 'The WebSocket connection did not open (a proxy or firewall may block it)', { failure: 'timeout', target })),
    ECHO_TIMEOUT_MS);
    const sendNext = () => {
      expected = `parley-check ${rtts.length} ${Math.random().toString(36).slice(2)}`;
      sentAt = performance.now();
      ws.send(expected);
    };
    try {
      ws = new WebSocket(`${scheme}://${location.host}${session.echo.path}`);
    } catch (err) {
      finish(fail('This browser refused to open the WebSocket', { failure: 'protocol', target }));
      return;
    }
    track(() => finish(skipped('Stopped')));
    ws.addEventListener('open', () => {
      opened = true;
      sendNext();
    });
    ws.addEventListener('message', (event) => {
      if (event.data !== expected) {
        finish(fail('The WebSocket echo came back changed (a proxy rewrites the connection)', { failure: 'protocol', target }));
        return;
      }
      rtts.push(performance.now() - sentAt);
      if (rtts.length >= ECHO_ROUND_TRIPS) {
        const rtt = median(rtts);
        finish(pass(`WebSocket works, round trip ${formatMs(rtt)}`,
          { target, details: { roundTrips: rtts.length, rttMs: round1(rtt), maxRttMs: round1(Math.max(...rtts)) } }));
      } else {
        sendNext();
      }
    });
    ws.addEventListener('close', (event) => {
      if (!opened) {
        finish(fail(`The WebSocket connection was refused (close code ${event.code})`,
          { failure: 'refused', target, details: { closeCode: event.code } }));
      } else if (rtts.length < ECHO_ROUND_TRIPS) {
        finish(fail(`The WebSocket connection closed early (code ${event.code})`,
          { failure: 'protocol', target, details: { closeCode: event.code, roundTrips: rtts.length } }));
      }
    });
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
}
const round1 = (value) => Math.round(value * 10) / 10;
const formatMs = (ms) => `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;

// A candidate's facts: {type, address, port, protocol, relayProtocol}; read from the fields
// where the browser has them, else from the candidate line (RFC 8839 section 5.1).
export function parseCandidate(candidate) {
  const line = candidate.candidate || '';
  const parts = line.replace(/^a=/, '').split(/\s+/);
  const typ = parts.indexOf('typ');
  return {
    type: candidate.type || (typ >= 0 ? parts[typ + 1] : null),
    address: candidate.address || candidate.ip || parts[4] || null,
    port: candidate.port || Number(parts[5]) || null,
    protocol: candidate.protocol || (parts[2] ? parts[2].toLowerCase() : null),
    relayProtocol: candidate.relayProtocol || null,
  };
}

// Gathers the ICE candidates of `pc` (a data channel and an offer make it start) until `until`
// says enough, gathering completes or the deadline passes.
function gather(pc, { until = () => false, timeoutMs = GATHER_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const candidates = [];
    const errors = [];
    let done = false;
    const began = performance.now();
    const finish = (reason) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ candidates, errors, reason, ms: Math.round(performance.now() - began) });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    pc.addEventListener('icecandidate', (event) => {
      if (!event.candidate) {
        finish('complete');
        return;
      }
      if (!event.candidate.candidate) return;  // Firefox's end-of-candidates marker
      const parsed = parseCandidate(event.candidate);
      candidates.push(parsed);
      if (until(parsed)) finish('found');
    });
    pc.addEventListener('icecandidateerror', (event) => {
      // Bounded: the grade endpoint takes at most 4 KiB of details per check.
      if (errors.length < 4) {
        errors.push({ errorCode: event.errorCode, errorText: String(event.errorText || '').slice(0, 100), url: event.url || '' });
      }
    });
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') setTimeout(() => finish('complete'), 0);
    });
    pc.createDataChannel('parley-check');
    pc.createOffer().then((offer) => pc.setLocalDescription(offer)).catch(() => finish('error'));
  });
}

const isMdns = (address) => typeof address === 'string' && address.endsWith('.local');

// host_candidates and srflx_candidates from one non-relay peer connection with the session's
// STUN server. srflx's verdict may be revised once the UDP relay result is known (see runChecks).
export async function checkCandidates(session, track) {
  const stunPort = session.turn.udpPort;
  const stunUrl = stunPort ? `stun:${session.turn.host}:${stunPort}` : null;
  const pc = new RTCPeerConnection({ iceServers: stunUrl ? [{ urls: stunUrl }] : [] });
  track(() => pc.close());
  let gathered;
  try {
    gathered = await gather(pc);
  } finally {
    pc.close();
  }
  const hosts = gathered.candidates.filter((c) => c.type === 'host');
  const mdns = hosts.filter((c) => isMdns(c.address));
  const srflx = gathered.candidates.filter((c) => c.type === 'srflx');
  const hostDetails = {
    count: hosts.length,
    mdns: mdns.length,
    addresses: [...new Set(hosts.filter((c) => !isMdns(c.address)).map((c) => c.address))].slice(0, 8),
    protocols: [...new Set(hosts.map((c) => c.protocol))],
  };
  const host = hosts.length
    ? pass(`${hosts.length} local address${hosts.length === 1 ? '' : 'es'} found${mdns.length ? ` (${mdns.length} hidden by the browser for privacy)` : ''}`,
      { details: hostDetails })
    : warn('This browser shows no local addresses: calls then always go through the relay', { failure: 'unsupported', details: hostDetails });
  let reflexive;
  if (!stunUrl) {
    reflexive = skipped('The server offers no STUN over UDP', { target: null });
  } else if (srflx.length) {
    const addresses = [...new Set(srflx.map((c) => `${c.address}:${c.port}`))].slice(0, 8);
    reflexive = pass(`Public address ${srflx[0].address} found: UDP ${stunPort} out works`,
      { target: `udp ${session.turn.host}:${stunPort}`, details: { addresses, count: srflx.length } });
  } else {
    reflexive = fail(`No answer from the STUN server over UDP ${stunPort}`, {
      failure: 'timeout',
      target: `udp ${session.turn.host}:${stunPort}`,
      details: { count: 0, gathering: gathered.reason, errors: gathered.errors.slice(0, 4) },
    });
  }
  return { host, srflx: reflexive };
}

// The TURN URLs the session offers, by check id (port 0 = not offered).
export function turnUrls(session) {
  const t = session.turn;
  const urls = {};
  if (t.udpPort) urls.turn_udp = { url: `turn:${t.host}:${t.udpPort}?transport=udp`, expect: 'udp' };
  if (t.tcpPort) urls.turn_tcp = { url: `turn:${t.host}:${t.tcpPort}?transport=tcp`, expect: 'tcp' };
  if (t.tlsPort) urls.turn_tls = { url: `turns:${t.host}:${t.tlsPort}?transport=tcp`, expect: 'tls' };
  if (t.httpsPort) urls.turn_tls_443 = { url: `turns:${t.host}:${t.httpsPort}?transport=tcp`, expect: 'tls' };
  return urls;
}

async function relayProtocolFromStats(pc) {
  try {
    const stats = await pc.getStats();
    for (const report of stats.values()) {
      if (report.type === 'local-candidate' && report.candidateType === 'relay' && report.relayProtocol) {
        return report.relayProtocol;
      }
    }
  } catch {
    // No stats: the caller falls back to the URL.
  }
  return null;
}

function describeIceErrors(errors) {
  const codes = errors.map((e) => e.errorCode);
  if (codes.some((c) => c === 401 || c === 403 || c === 441)) return { failure: 'auth_failed', text: 'the relay refused the test credential' };
  if (codes.some((c) => c === 486 || c === 508)) return { failure: 'refused', text: 'the relay has no capacity left' };
  return null;
}

// One relay-only peer connection through one TURN URL: a relay candidate proves the allocation.
export async function checkTurn(session, { url, expect }, track) {
  const target = url;
  const pc = new RTCPeerConnection({
    iceServers: [{ urls: url, username: session.turn.username, credential: session.turn.credential }],
    iceTransportPolicy: 'relay',
  });
  track(() => pc.close());
  try {
    const gathered = await gather(pc, { until: (c) => c.type === 'relay' });
    const relay = gathered.candidates.find((c) => c.type === 'relay');
    if (!relay) {
      const known = describeIceErrors(gathered.errors);
      const details = { gathering: gathered.reason, errors: gathered.errors.slice(0, 4) };
      if (known) return fail(`No relay: ${known.text}`, { failure: known.failure, target, details });
      return fail(gathered.reason === 'timeout' ? `No relay within ${GATHER_TIMEOUT_MS / 1000} s: the network blocks this way`
        : 'No relay: the network blocks this way', { failure: gathered.reason === 'timeout' ? 'timeout' : 'unreachable', target, details });
    }
    let relayProtocol = relay.relayProtocol;
    let source = 'candidate';
    if (!relayProtocol) {
      relayProtocol = await relayProtocolFromStats(pc);
      source = 'stats';
    }
    if (!relayProtocol) {
      relayProtocol = expect;
      source = 'url';
    }
    const details = { relayProtocol, relayProtocolSource: source, url, relayAddress: `${relay.address}:${relay.port}`, ms: gathered.ms };
    if (relayProtocol !== expect) {
      return warn(`Relay found, but over ${relayProtocol.toUpperCase()} instead of ${expect.toUpperCase()}`, { failure: 'protocol', target, details });
    }
    return pass(`Relay works over ${relayProtocol.toUpperCase()}`, { target, details });
  } finally {
    pc.close();
  }
}

// The best working TURN URL for the loopback call: UDP first (what calls prefer), then TCP, TLS.
export const RELAY_PREFERENCE = ['turn_udp', 'turn_tcp', 'turn_tls', 'turn_tls_443'];

// A relayed loopback call: two relay-only peer connections in this page through `url`,
// connected to each other, and a data channel sending as fast as it drains (bounded in time
// and bytes). What arrives per second is what a call can carry through this network.
export async function checkBandwidth(session, url, relayProtocol, track) {
  const config = {
    iceServers: [{ urls: url, username: session.turn.username, credential: session.turn.credential }],
    iceTransportPolicy: 'relay',
  };
  const sender = new RTCPeerConnection(config);
  const receiver = new RTCPeerConnection(config);
  const closeBoth = () => {
    sender.close();
    receiver.close();
  };
  track(closeBoth);
  const target = url;
  try {
    sender.addEventListener('icecandidate', (e) => { if (e.candidate) receiver.addIceCandidate(e.candidate).catch(() => {}); });
    receiver.addEventListener('icecandidate', (e) => { if (e.candidate) sender.addIceCandidate(e.candidate).catch(() => {}); });
    const channel = sender.createDataChannel('parley-bandwidth', { ordered: true });
    channel.binaryType = 'arraybuffer';
    const incoming = new Promise((resolve) => {
      receiver.addEventListener('datachannel', (event) => resolve(event.channel));
    });
    const opened = new Promise((resolve) => channel.addEventListener('open', () => resolve(true)));
    const offer = await sender.createOffer();
    await sender.setLocalDescription(offer);
    await receiver.setRemoteDescription(offer);
    const answer = await receiver.createAnswer();
    await receiver.setLocalDescription(answer);
    await sender.setRemoteDescription(answer);
    const ready = await withTimeout(Promise.all([opened, incoming]), BANDWIDTH_CONNECT_TIMEOUT_MS, () => null);
    if (!ready) {
      return fail(`The test call through the relay did not connect within ${BANDWIDTH_CONNECT_TIMEOUT_MS / 1000} s`,
        { failure: 'timeout', target, details: { url, kbps: 0, streams: 0 } });
    }
    const [, inbound] = ready;
    let received = 0;
    let firstAt = 0;
    let lastAt = 0;
    inbound.addEventListener('message', (event) => {
      const now = performance.now();
      if (!firstAt) firstAt = now;
      lastAt = now;
      received += event.data.byteLength || event.data.size || event.data.length || 0;
    });
    const chunk = new Uint8Array(BANDWIDTH_CHUNK_BYTES);
    let sent = 0;
    const started = performance.now();
    channel.bufferedAmountLowThreshold = BANDWIDTH_LOW_WATER;
    // Send while the buffer drains, until the time or byte bound; bounded loop either way.
    while (sent < BANDWIDTH_MAX_BYTES && performance.now() - started < BANDWIDTH_SEND_MS && channel.readyState === 'open') {
      if (channel.bufferedAmount > BANDWIDTH_HIGH_WATER) {
        await Promise.race([
          new Promise((resolve) => channel.addEventListener('bufferedamountlow', resolve, { once: true })),
          sleep(100),
        ]);
        continue;
      }
      channel.send(chunk);
      sent += chunk.byteLength;
    }
    // Let what is in flight arrive (bounded).
    const drainUntil = performance.now() + BANDWIDTH_DRAIN_MS;
    while (received < sent && performance.now() < drainUntil) await sleep(50);
    const windowMs = Math.max(lastAt - firstAt, 1);
    const kbps = received && lastAt > firstAt ? Math.round((received * 8) / windowMs) : 0;
    const streams = Math.floor(kbps / STREAM_KBPS);
    const details = {
      kbps, streams, url, relayProtocol, bytesSent: sent, bytesReceived: received, ms: Math.round(windowMs),
    };
    const rate = kbps >= 10_000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${kbps} kbit/s`;
    if (streams < 1) {
      return fail(`${rate} through the relay: not enough for one video stream (${STREAM_KBPS} kbit/s)`, { failure: 'low_bandwidth', target, details });
    }
    if (streams < 2) return warn(`${rate} through the relay: enough for one video stream, not two`, { failure: 'low_bandwidth', target, details });
    return pass(`${rate} through the relay: enough for ${streams} video streams`, { target, details });
  } finally {
    closeBoth();
  }
}

// Camera and microphone: one getUserMedia for both (one permission prompt), each kind alone
// when one device is missing or busy. Resolves {camera, microphone, stream}.
export async function checkCaptureDevices(track) {
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== 'function') {
    const r = fail('This browser cannot use a camera or microphone here', { failure: 'unsupported' });
    return { camera: r, microphone: r, stream: null };
  }
  const stream = new MediaStream();
  track(() => stream.getTracks().forEach((t) => t.stop()));
  const errors = { audio: null, video: null };
  const ask = (constraints) => {
    let gaveUp = false;
    const request = navigator.mediaDevices.getUserMedia(constraints);
    // A late answer after the deadline must not leave the camera on.
    request.then((late) => { if (gaveUp) late.getTracks().forEach((t) => t.stop()); }, () => {});
    return withTimeout(request, PERMISSION_TIMEOUT_MS, () => {
      gaveUp = true;
      const err = new Error('no answer to the permission request');
      err.name = 'PermissionTimeout';
      throw err;
    });
  };
  try {
    const both = await ask({ audio: true, video: true });
    both.getTracks().forEach((t) => stream.addTrack(t));
  } catch (err) {
    if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError' || err.name === 'PermissionTimeout')) {
      errors.audio = err;
      errors.video = err;
    } else {
      for (const kind of ['audio', 'video']) {
        try {
          const one = await ask({ [kind]: true });
          one.getTracks().forEach((t) => stream.addTrack(t));
        } catch (kindError) {
          errors[kind] = kindError;
        }
      }
    }
  }
  const describe = (kind, what) => {
    const trackOf = kind === 'video' ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    if (trackOf) {
      const settings = typeof trackOf.getSettings === 'function' ? trackOf.getSettings() : {};
      const details = { label: trackOf.label || null };
      if (kind === 'video') {
        details.width = settings.width || null;
        details.height = settings.height || null;
        details.frameRate = settings.frameRate ? Math.round(settings.frameRate) : null;
      }
      const size = kind === 'video' && settings.width ? ` (${settings.width}×${settings.height})` : '';
      return pass(`${what} works${trackOf.label ? `: ${trackOf.label}` : ''}${size}`, { details });
    }
    const err = errors[kind];
    const name = (err && err.name) || 'unknown';
    switch (name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return fail(`Access to the ${what.toLowerCase()} was denied: allow it in the browser's site settings`, { failure: 'denied', details: { error: name } });
      case 'PermissionTimeout':
        return warn(`No answer to the request for the ${what.toLowerCase()}`, { failure: 'timeout', details: { error: name } });
      case 'NotFoundError':
      case 'OverconstrainedError':
        return fail(`No ${what.toLowerCase()} found`, { failure: 'unsupported', details: { error: name } });
      case 'NotReadableError':
      case 'AbortError':
        return fail(`The ${what.toLowerCase()} is in use by another application`, { failure: 'unsupported', details: { error: name } });
      default:
        return fail(`The ${what.toLowerCase()} could not be started (${name})`, { failure: 'unsupported', details: { error: name } });
    }
  };
  return { camera: describe('video', 'Camera'), microphone: describe('audio', 'Microphone'), stream };
}

export function checkCodecs() {
  if (typeof RTCRtpSender === 'undefined' || typeof RTCRtpSender.getCapabilities !== 'function') {
    return skipped('This browser does not list its video formats', { failure: 'unsupported' });
  }
  const capabilities = RTCRtpSender.getCapabilities('video');
  const names = [...new Set(((capabilities && capabilities.codecs) || [])
    .map((c) => String(c.mimeType || '').replace(/^video\//i, ''))
    .filter((n) => n && !/^(rtx|red|ulpfec|flexfec-03)$/i.test(n)))];
  const has = (name) => names.some((n) => n.toLowerCase() === name.toLowerCase());
  const details = { video: names, vp8: has('VP8'), h264: has('H264') };
  if (!details.vp8) return fail('VP8 video is missing: this browser cannot exchange video with Parley', { failure: 'unsupported', details });
  if (!details.h264) return pass('VP8 works; H.264 is not available (fine: Parley uses VP8 then)', { details });
  return pass('VP8 and H.264 work', { details });
}

// Runs every check; onResult(id, result) as each finishes (result.durationMs added), onStream
// when camera/microphone are live. Resolves the list of checks in CHECKS order. `track`
// registers a clean-up for stop().
export async function runChecks({ onStart, onResult, onStream, track }) {
  const results = new Map();
  const started = new Map();
  const begin = (id) => {
    started.set(id, performance.now());
    if (onStart) onStart(id);
  };
  const finish = (id, value) => {
    const durationMs = Math.round(performance.now() - (started.get(id) ?? performance.now()));
    const entry = { ...value, durationMs };
    results.set(id, entry);
    onResult(id, entry);
    return entry;
  };
  const guarded = async (id, fn) => {
    begin(id);
    try {
      return finish(id, await fn());
    } catch (err) {
      return finish(id, fail(brokenSummary(err), { failure: 'protocol' }));
    }
  };

  guarded('browser', () => checkBrowser());
  guarded('codecs', () => checkCodecs());
  const capture = (async () => {
    begin('camera');
    begin('microphone');
    let devices;
    try {
      devices = await checkCaptureDevices(track);
    } catch (err) {
      const broken = fail(brokenSummary(err), { failure: 'protocol' });
      devices = { camera: broken, microphone: broken, stream: null };
    }
    if (devices.stream && devices.stream.getTracks().length && onStream) onStream(devices.stream);
    finish('camera', devices.camera);
    finish('microphone', devices.microphone);
  })();

  const network = (async () => {
    let session = null;
    await guarded('https', async () => {
      const answer = await checkHttps();
      session = answer.session;
      return answer.result;
    });
    const dependent = ['wss_direct', 'host_candidates', 'srflx_candidates', ...RELAY_PREFERENCE, 'bandwidth'];
    if (!session) {
      for (const id of dependent) {
        begin(id);
        finish(id, skipped('Not tested: no test session from the server'));
      }
      return;
    }
    const echo = guarded('wss_direct', () => checkWebSocketEcho(session, track));
    const candidates = (async () => {
      begin('host_candidates');
      begin('srflx_candidates');
      try {
        return await checkCandidates(session, track);
      } catch (err) {
        const broken = fail(brokenSummary(err), { failure: 'protocol' });
        return { host: broken, srflx: broken };
      }
    })();
    const urls = turnUrls(session);
    const relays = RELAY_PREFERENCE.map((id) => guarded(id, () => (urls[id]
      ? checkTurn(session, urls[id], track) : skipped('The server does not offer this way'))));
    const relayResults = await Promise.all(relays);
    const found = await candidates;
    // What srflx_candidates stands for is "UDP to the STUN/TURN port works". With no
    // server-reflexive candidate but a working UDP relay on that same host and port, it does:
    // the device then has no address other than the one it sends from (no NAT, and browsers
    // drop a reflexive candidate equal to a host one), or the browser withholds it.
    const udpRelay = results.get('turn_udp');
    if (found.srflx.verdict === 'fail' && udpRelay && udpRelay.verdict === 'pass'
      && urls.turn_udp && udpRelay.target === urls.turn_udp.url) {
      found.srflx = pass(`UDP ${session.turn.udpPort} out works (the relay answered over UDP); no separate public address`,
        { target: found.srflx.target, details: { ...found.srflx.details, udpRelay: true } });
    }
    finish('host_candidates', found.host);
    finish('srflx_candidates', found.srflx);
    const best = RELAY_PREFERENCE.map((id, i) => ({ id, r: relayResults[i] })).find(({ r }) => r.verdict === 'pass');
    await guarded('bandwidth', async () => {
      if (!best) return skipped('Not tested: no relay works', { failure: null });
      return checkBandwidth(session, urls[best.id].url, best.r.details.relayProtocol, track);
    });
    await echo;
  })();

  await Promise.all([capture, network]);
  return CHECKS.map(({ id, title }) => ({ id, title, ...results.get(id) }));
}

// The report of docs/netcheck.schema.json (grade and remedies filled in after grading).
export function buildReport({ startedAt, durationMs, checks }) {
  return {
    version: REPORT_VERSION,
    url: location.origin,
    client: navigator.userAgent,
    startedAt,
    durationMs,
    proxy: null,
    grade: null,
    gradeTitle: null,
    headline: null,
    remedies: [],
    checks: checks.map((c) => ({
      id: c.id,
      title: c.title,
      verdict: c.verdict,
      durationMs: c.durationMs,
      summary: c.summary,
      failure: c.failure || null,
      target: c.target || null,
      details: c.details || {},
    })),
  };
}

export const GRADE_TITLES = {
  best: 'Best experience', works: 'Works', reduced: 'Works with reduced quality', blocked: 'Blocked',
};

// POST the report for its grade; returns {grade, gradeTitle, headline, remedies}.
export async function gradeReport(report) {
  const answer = await post('/api/v1/netcheck/grade', report);
  if (!answer || typeof answer.grade !== 'string') throw new ApiError(0, 'not_parley', 'the server gave no grade');
  return {
    grade: answer.grade,
    gradeTitle: answer.gradeTitle || GRADE_TITLES[answer.grade] || answer.grade,
    headline: answer.headline || '',
    remedies: Array.isArray(answer.remedies) ? answer.remedies.map(String) : [],
  };
}
