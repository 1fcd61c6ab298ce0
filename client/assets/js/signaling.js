// The signaling WebSocket of docs/api.md ("Signaling"): connects to /ws?room=ID, sends `join`
// on every (re)connect, reconnects by itself with exponential backoff and jitter, and tells the
// page why it stopped when it stops for good (ended, removed, rejected, replaced, ...).
//
// Events: 'message' (detail: parsed server message), 'state' (detail: 'connecting' | 'open' |
// 'reconnecting' | 'closed'), 'unreachable' (detail: attempts; the socket never opened after
// several tries: a firewall or proxy blocks WebSockets), 'final' (detail: {reason, code}),
// 'unauthenticated' (close 4401: the page re-authenticates, then calls reconnectNow()).

const BACKOFF_START_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const UNREACHABLE_AFTER_ATTEMPTS = 4;
// The server pings every 20 s, but a browser does not show those pings to the page, so a dead
// path (laptop lid, Wi-Fi switch) is only noticed by our own ping/pong.
const PING_EVERY_MS = 10_000;
const SILENCE_LIMIT_MS = 25_000;
const MAX_QUEUED = 200;

// Close codes after which reconnecting cannot help.
const FINAL_CLOSE = new Map([
  [4000, 'replaced'],
  [4001, 'removed'],
  [4002, 'ended'],
  [4003, 'rejected'],
  [4403, 'forbidden'],
  [4409, 'full'],
]);

export class Signaling extends EventTarget {
  // joinMessage(): the `join` message to send on each connect (name, media state).
  constructor({ roomId, joinMessage }) {
    super();
    this.roomId = roomId;
    this.joinMessage = joinMessage;
    this.ws = null;
    this.attempt = 0;
    this.everOpened = false;
    this.stopped = false;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.shutdownRetryMs = null;
    this.queue = [];
    this.accepted = false;  // the server answered join (welcome or lobby) on this socket
    this.onOnline = () => {
      if (!this.stopped && (!this.ws || this.ws.readyState === WebSocket.CLOSED)) this.reconnectNow();
    };
    window.addEventListener('online', this.onOnline);
  }

  get url() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/ws?room=${encodeURIComponent(this.roomId)}`;
  }

  get isOpen() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.emit('state', this.everOpened ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.accepted = false;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      this.everOpened = true;
      this.lastHeard = Date.now();
      this.emit('state', 'open');
      this.sendNow({ type: 'join', ...this.joinMessage() });
      this.startPing();
    });
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!message || typeof message !== 'object' || typeof message.type !== 'string') return;
      if (message.type === 'welcome' || message.type === 'lobby') {
        this.accepted = true;
        this.attempt = 0;
        this.flushQueue();
      }
      if (message.type === 'shutdown') {
        this.shutdownRetryMs = Number(message.retryAfterMs) || 1000;
      }
      if (message.type === 'pong') return;
      this.emit('message', message);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== this.ws) return;
      this.stopPing();
      this.ws = null;
      this.onClosed(event.code);
    });
    // 'error' is always followed by 'close'; nothing to do here.
  }

  onClosed(code) {
    if (this.stopped) return;
    const finalReason = FINAL_CLOSE.get(code);
    if (finalReason) {
      this.finish(finalReason, code);
      return;
    }
    if (code === 4401) {
      // Not authenticated: the guest cookie or advisor session is gone. The page decides
      // (re-join with the invitation token, or log in again).
      this.emit('state', 'reconnecting');
      this.emit('unauthenticated', code);
      return;
    }
    if (this.shutdownRetryMs !== null) {
      // Server restart: come back after the delay it asked for, with jitter so that every
      // client does not arrive in the same millisecond.
      const delay = this.shutdownRetryMs + Math.random() * 1000;
      this.shutdownRetryMs = null;
      this.emit('state', 'reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.attempt += 1;
    if (!this.everOpened && this.attempt === UNREACHABLE_AFTER_ATTEMPTS) {
      this.emit('unreachable', this.attempt);
    }
    // Full jitter over an exponential ceiling (capped): spreads a crowd of reconnecting
    // clients after an outage instead of synchronising them.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** (this.attempt - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.emit('state', 'reconnecting');
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped) return;
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      this.stopPing();
      try { old.close(1000, 'reconnecting'); } catch { /* already closed */ }
    }
    this.connect();
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      if (!this.isOpen) return;
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        // Nothing heard for too long: the path is dead even if the browser has not noticed.
        const stale = this.ws;
        this.ws = null;
        this.stopPing();
        try { stale.close(4900, 'silent'); } catch { /* ignore */ }
        this.scheduleReconnect();
        return;
      }
      this.sendNow({ type: 'ping', t: Date.now() });
    }, PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  sendNow(message) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify({ v: 1, ...message }));
    return true;
  }

  // Sends now when joined; otherwise queues (bounded) until the next welcome, so negotiation
  // messages produced during a reconnect are not lost.
  send(message) {
    if (this.isOpen && this.accepted) return this.sendNow(message);
    if (this.queue.length < MAX_QUEUED) this.queue.push(message);
    return false;
  }

  flushQueue() {
    const pending = this.queue;
    this.queue = [];
    for (const message of pending) this.sendNow(message);
  }

  finish(reason, code) {
    this.stop();
    this.emit('final', { reason, code });
  }

  // Leave on purpose: tell the server, then close.
  leave() {
    if (this.isOpen) this.sendNow({ type: 'leave' });
    this.stop();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stopPing();
    window.removeEventListener('online', this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
    this.emit('state', 'closed');
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
