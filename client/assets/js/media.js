// The local camera and microphone: acquisition with clear error messages, device lists, and
// switching devices while tracks are in use (listeners replace the tracks in their senders).
import { reportCaught } from './report.js';
import { storageGet, storageSet } from './env.js';

const PREFS_KEY = 'parley.devices';

export function loadDevicePrefs() {
  return storageGet(PREFS_KEY) || {};
}

export function saveDevicePrefs(prefs) {
  storageSet(PREFS_KEY, { ...loadDevicePrefs(), ...prefs });
}

// getUserMedia's DOMException names -> what the person can do about it.
export function describeMediaError(err, what = 'camera or microphone') {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
    case 'PermissionDeniedError':
      return `Access to your ${what} was denied. Allow it in the browser's site settings `
        + '(the camera icon in the address bar), then reload this page.';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return `No ${what} was found. Connect one and reload, or continue without it.`;
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return `Your ${what} is in use by another application or cannot be started. `
        + 'Close the other application, then try again.';
    case 'TypeError':
      return 'This browser cannot use a camera or microphone here (the page must be opened over https).';
    default:
      return `Your ${what} could not be started (${(err && err.name) || 'unknown error'}).`;
  }
}

// A remembered device is only `ideal` (it may be gone; then another one is fine); a device the
// person just picked is `exact` (browsers otherwise keep the device already open).
function deviceConstraint(deviceId, exact) {
  return exact ? { exact: deviceId } : { ideal: deviceId };
}

function videoConstraints(deviceId, exact = false) {
  const constraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };
  if (deviceId) constraints.deviceId = deviceConstraint(deviceId, exact);
  return constraints;
}

function audioConstraints(deviceId, exact = false) {
  const constraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) constraints.deviceId = deviceConstraint(deviceId, exact);
  return constraints;
}

export class LocalMedia extends EventTarget {
  constructor() {
    super();
    // One stream for the camera and microphone tracks; its id is how the other side tells the
    // camera from the screen (see peer.js).
    this.stream = new MediaStream();
    this.audioTrack = null;
    this.videoTrack = null;
    this.errors = { audio: null, video: null };
    this.onDeviceChange = () => this.dispatchEvent(new Event('devicechange'));
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', this.onDeviceChange);
    }
  }

  get audioEnabled() {
    return Boolean(this.audioTrack && this.audioTrack.enabled);
  }

  get videoEnabled() {
    return Boolean(this.videoTrack && this.videoTrack.enabled);
  }

  // Starts camera and microphone (each optional). Never throws: what failed is in
  // this.errors.audio / this.errors.video, the page shows describeMediaError() for it.
  async start({ audio = true, video = true } = {}) {
    const prefs = loadDevicePrefs();
    this.errors = { audio: null, video: null };
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const err = new TypeError('mediaDevices unavailable');
      this.errors = { audio: audio ? err : null, video: video ? err : null };
      return this.errors;
    }
    if (audio && video) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({
          audio: audioConstraints(prefs.micId), video: videoConstraints(prefs.cameraId),
        });
        this.setTrack('audio', stream.getAudioTracks()[0] || null);
        this.setTrack('video', stream.getVideoTracks()[0] || null);
        return this.errors;
      } catch (err) {
        // Denied applies to both; for a missing or busy device try each kind alone, so a
        // laptop with a busy camera still joins with its microphone.
        if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) {
          this.errors = { audio: err, video: err };
          reportCaught('getUserMedia', err);
          return this.errors;
        }
      }
    }
    if (audio) await this.startKind('audio', prefs.micId);
    if (video) await this.startKind('video', prefs.cameraId);
    return this.errors;
  }

  async startKind(kind, deviceId, exact = false) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(kind === 'audio'
        ? { audio: audioConstraints(deviceId, exact) } : { video: videoConstraints(deviceId, exact) });
      const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      this.setTrack(kind, track || null);
      this.errors[kind] = null;
    } catch (err) {
      this.errors[kind] = err;
      if (err && err.name !== 'NotFoundError') reportCaught(`getUserMedia ${kind}`, err);
    }
  }

  setTrack(kind, track) {
    const old = kind === 'audio' ? this.audioTrack : this.videoTrack;
    // Keep the mute/camera-off choice across a device switch.
    if (old && track) track.enabled = old.enabled;
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    if (track) this.stream.addTrack(track);
    if (kind === 'audio') this.audioTrack = track;
    else this.videoTrack = track;
    this.dispatchEvent(new CustomEvent('trackchange', { detail: { kind, track } }));
  }

  // Switch to another camera or microphone; listeners replace the track in their senders.
  async useDevice(kind, deviceId) {
    saveDevicePrefs(kind === 'audio' ? { micId: deviceId } : { cameraId: deviceId });
    await this.startKind(kind, deviceId, true);
    const err = this.errors[kind];
    const old = kind === 'audio' ? this.audioTrack : this.videoTrack;
    if (err && err.name === 'NotReadableError' && old) {
      // Some systems cannot open a second capture of a device: free the old one and retry.
      old.stop();
      await this.startKind(kind, deviceId, true);
      if (this.errors[kind]) this.setTrack(kind, null);
    }
    return this.errors[kind];
  }

  setEnabled(kind, enabled) {
    const track = kind === 'audio' ? this.audioTrack : this.videoTrack;
    if (track) track.enabled = enabled;
    this.dispatchEvent(new CustomEvent('enabledchange', { detail: { kind, enabled } }));
  }

  // {cameras, microphones, speakers}: labels are empty until permission is granted.
  static async devices() {
    const result = { cameras: [], microphones: [], speakers: [] };
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return result;
    try {
      const list = await navigator.mediaDevices.enumerateDevices();
      let n = { videoinput: 0, audioinput: 0, audiooutput: 0 };
      for (const device of list) {
        if (!device.deviceId) continue;
        n[device.kind] = (n[device.kind] || 0) + 1;
        const entry = { id: device.deviceId, label: device.label };
        if (device.kind === 'videoinput') result.cameras.push({ ...entry, label: entry.label || `Camera ${n.videoinput}` });
        if (device.kind === 'audioinput') result.microphones.push({ ...entry, label: entry.label || `Microphone ${n.audioinput}` });
        if (device.kind === 'audiooutput') result.speakers.push({ ...entry, label: entry.label || `Speaker ${n.audiooutput}` });
      }
    } catch (err) {
      reportCaught('enumerateDevices', err);
    }
    return result;
  }

  stop() {
    for (const track of this.stream.getTracks()) track.stop();
    this.audioTrack = null;
    this.videoTrack = null;
    this.stream = new MediaStream();
    if (navigator.mediaDevices && navigator.mediaDevices.removeEventListener) {
      navigator.mediaDevices.removeEventListener('devicechange', this.onDeviceChange);
    }
  }
}

// Speaker choice for a media element where the browser supports it (Chromium, Firefox 116+).
export async function applySpeaker(element, speakerId) {
  if (!speakerId || typeof element.setSinkId !== 'function') return;
  try {
    await element.setSinkId(speakerId);
  } catch (err) {
    reportCaught('setSinkId', err);
  }
}
