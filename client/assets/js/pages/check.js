// `/check`: a first look at why a meeting may not connect: server reachable over HTTPS,
// WebSocket upgrade through proxies and firewalls, WebRTC and capture support, permissions.
import { h } from '../dom.js';
import { hasWebRtc, canShareScreen } from '../env.js';

function row(label) {
  const result = h('span', { class: 'check-result', 'data-level': 'unknown' }, 'checking…');
  return { el: h('li', { class: 'check-row' }, h('span', { class: 'check-label' }, label), result), result };
}

function set(result, ok, text) {
  result.dataset.level = ok === null ? 'unknown' : ok ? 'good' : 'poor';
  result.textContent = text;
}

function checkWebSocket() {
  return new Promise((resolve) => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/ws?room=connection-check`);
    } catch {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => { ws.close(); resolve(false); }, 8000);
    ws.addEventListener('open', () => { clearTimeout(timer); ws.close(1000, 'check'); resolve(true); });
    ws.addEventListener('error', () => { clearTimeout(timer); resolve(false); });
  });
}

export function checkPage(main) {
  const server = row('Parley server (HTTPS)');
  const socket = row('Meeting connection (WebSocket)');
  const webrtc = row('Video calls (WebRTC) in this browser');
  const camera = row('Camera permission');
  const microphone = row('Microphone permission');
  main.replaceChildren(h('section', { class: 'card narrow', 'data-testid': 'check' },
    h('h1', {}, 'Connection check'),
    h('ul', { class: 'check-list', 'aria-live': 'polite' }, server.el, socket.el, webrtc.el, camera.el, microphone.el),
    h('p', { class: 'hint' }, 'If the meeting connection fails while the server is reachable, a proxy or firewall '
      + 'blocks WebSockets: ask your IT department to allow this site.')));

  fetch('/healthz', { cache: 'no-store' })
    .then((r) => set(server.result, r.ok, r.ok ? 'reachable' : `answers ${r.status}`))
    .catch(() => set(server.result, false, 'not reachable'));
  checkWebSocket().then((ok) => set(socket.result, ok, ok ? 'works' : 'blocked'));
  set(webrtc.result, hasWebRtc, hasWebRtc ? `supported${canShareScreen() ? ', screen sharing too' : ''}` : 'not supported');
  for (const [name, entry] of [['camera', camera], ['microphone', microphone]]) {
    if (!navigator.permissions || !navigator.permissions.query) {
      set(entry.result, null, 'asked when you join');
      continue;
    }
    navigator.permissions.query({ name }).then(
      (status) => set(entry.result, status.state !== 'denied',
        status.state === 'granted' ? 'allowed' : status.state === 'denied' ? 'blocked: allow it in the site settings' : 'asked when you join'),
      () => set(entry.result, null, 'asked when you join'));
  }
  return null;
}
