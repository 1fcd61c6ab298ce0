// What this browser is and can do. Feature detection first; the user agent only where no
// feature tells (Safari's codec needs, phones without screen capture).

const ua = navigator.userAgent || '';

export const isFirefox = /firefox|fxios/i.test(ua);
// Safari (macOS and iOS, where every browser is WebKit): "Safari" without Chrome/Chromium/
// Android/Edge/Firefox tokens.
export const isSafari = /safari/i.test(ua) && !/chrome|chromium|crios|android|edg|fxios|firefox/i.test(ua);
export const browserFamily = isFirefox ? 'firefox' : isSafari ? 'safari'
  : /chrome|chromium|crios|edg/i.test(ua) ? 'chromium' : 'other';

export function isMobile() {
  if (/Mobi|Android|iPhone|iPad|iPod/i.test(ua)) return true;
  // iPadOS presents itself as a Mac with touch.
  if (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1) return true;
  return typeof matchMedia === 'function' && matchMedia('(pointer: coarse)').matches;
}

export function canShareScreen() {
  return Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function')
    && !isMobile();
}

export const canSelectSpeaker = typeof HTMLMediaElement !== 'undefined'
  && typeof HTMLMediaElement.prototype.setSinkId === 'function';

export const hasWebRtc = typeof RTCPeerConnection === 'function'
  && Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

// ?relay=1 in the URL (or localStorage parley.relay=1) forces every call through TURN:
// iceTransportPolicy 'relay'. Used by the end-to-end tests and for diagnosing networks.
export function relayOnly() {
  if (new URLSearchParams(location.search).get('relay') === '1') return true;
  try {
    return localStorage.getItem('parley.relay') === '1';
  } catch {
    return false;
  }
}

export function storageGet(key) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function storageSet(key, value) {
  try {
    if (value === null || value === undefined) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or quota: the page still works, it only forgets across reloads.
  }
}
