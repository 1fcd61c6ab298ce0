// Client errors go to POST /api/v1/client-errors so operators see what breaks in browsers.
// At most MAX_PER_WINDOW reports per minute leave this page (the server limits per IP too),
// and the URL is sent without its fragment: the fragment holds invitation and set-up tokens.
import { getCsrfToken } from './api.js';

const WINDOW_MS = 60_000;
const MAX_PER_WINDOW = 10;
let sentAt = [];

export function reportError(message, { stack, context } = {}) {
  const now = Date.now();
  sentAt = sentAt.filter((t) => now - t < WINDOW_MS);
  if (sentAt.length >= MAX_PER_WINDOW) return;
  sentAt.push(now);
  const body = {
    message: String(message || 'unknown error').slice(0, 1000),
    url: location.origin + location.pathname,
    userAgent: navigator.userAgent,
  };
  if (stack) body.stack = String(stack).slice(0, 4000);
  if (context) body.context = String(context).slice(0, 200);
  const headers = { 'Content-Type': 'application/json' };
  const csrf = getCsrfToken();
  if (csrf) headers['X-CSRF-Token'] = csrf;
  fetch('/api/v1/client-errors', {
    method: 'POST', headers, body: JSON.stringify(body), credentials: 'same-origin', keepalive: true,
  }).catch(() => {});
}

// A caught failure worth reporting (getUserMedia, RTCPeerConnection, ...).
export function reportCaught(context, err) {
  const name = err && err.name ? `${err.name}: ` : '';
  reportError(`${name}${err && err.message ? err.message : String(err)}`, { stack: err && err.stack, context });
}

export function installErrorReporting() {
  window.addEventListener('error', (event) => {
    reportError(event.message, {
      stack: event.error && event.error.stack,
      context: `window.onerror ${event.filename || ''}:${event.lineno || 0}`,
    });
  });
  window.addEventListener('unhandledrejection', (event) => {
    const reason = event.reason;
    reportError(reason && reason.message ? reason.message : String(reason), {
      stack: reason && reason.stack,
      context: 'unhandledrejection',
    });
  });
}
