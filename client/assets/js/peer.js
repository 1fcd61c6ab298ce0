// One RTCPeerConnection to one remote participant, negotiated with the "perfect negotiation"
// pattern (W3C webrtc-pc §10.7 example): both sides add their tracks and offer whenever
// negotiation is needed; when offers collide the polite side (the smaller participant id, per
// docs/api.md) rolls back and answers, the impolite side ignores the other's offer.
//
// Signal data (opaque to the server) is {pc, forPc, description | candidate, streams?}:
//  - pc: a random id of the sending RTCPeerConnection, forPc: the id of the receiver's
//    connection the sender talks to (null until it has heard from it). A page reload on the
//    other side shows up as a new `pc` id addressed to nobody: we then start a fresh
//    connection (the old one cannot be renegotiated with new DTLS certificates). Messages
//    addressed to one of our old connections are dropped.
//  - streams: {streamId: "camera" | "screen"} so the receiver can tell the screen from the
//    camera: MediaStream ids travel in the SDP (a=msid, RFC 8830).
import { isSafari } from './env.js';
import { reportCaught } from './report.js';

const DISCONNECTED_RESTART_MS = 3000;
// Not connected this long (since the connection was made or last lost): the page says why
// (mediaProblem()). Through every lab network that allows a call, media connects within
// 1-2.5 s of admission (docs/network-scenarios.md).
export const MEDIA_BLOCKED_MS = 12_000;
// A connection that has not connected this long after negotiation settled gets an ICE restart.
const STUCK_RESTART_MS = 10_000;
// Both sides create their connection at the same moment (admission), so their first offers
// collide; the polite side then rolls its offer back, after which Chromium has been seen never
// to gather candidates on that connection. The polite side therefore waits this long for the
// other side's offer before making its own.
const POLITE_FIRST_OFFER_HOLD_MS = 1500;

function randomId() {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const canSetCodecPreferences = typeof RTCRtpTransceiver !== 'undefined'
  && typeof RTCRtpTransceiver.prototype.setCodecPreferences === 'function'
  && typeof RTCRtpReceiver !== 'undefined' && typeof RTCRtpReceiver.getCapabilities === 'function';

// All receivable video codecs with the preferred family first (nothing is dropped, only
// reordered, so a peer that supports only the other family still connects).
function orderedVideoCodecs(preferH264) {
  const capabilities = RTCRtpReceiver.getCapabilities('video');
  if (!capabilities || !capabilities.codecs) return null;
  const rank = (codec) => {
    const mime = codec.mimeType.toLowerCase();
    if (preferH264 && mime === 'video/h264') {
      // Constrained baseline, packetization-mode=1: what Safari and hardware encoders share.
      const fmtp = codec.sdpFmtpLine || '';
      return /packetization-mode=1/.test(fmtp) && /profile-level-id=42e0/i.test(fmtp) ? 0 : 1;
    }
    if (!preferH264 && mime === 'video/vp8') return 0;
    if (mime === 'video/rtx' || mime === 'video/red' || mime === 'video/ulpfec' || mime === 'video/flexfec-03') return 3;
    return 2;
  };
  return capabilities.codecs
    .map((codec, index) => ({ codec, index }))
    .sort((a, b) => rank(a.codec) - rank(b.codec) || a.index - b.index)
    .map((entry) => entry.codec);
}

export class PeerLink {
  // local: {id}, remote: {id, name}; media: LocalMedia; screen: {stream, track} | null getter;
  // send(data): relays a signal to the remote participant; iceConfig(): RTCConfiguration.
  constructor({ localId, remoteId, media, screen, send, iceConfig, onTrack, onTrackGone, onStateChange, onConnected }) {
    this.localId = localId;
    this.remoteId = remoteId;
    // docs/api.md: "the participant with the smaller id is polite".
    this.polite = localId < remoteId;
    this.media = media;
    this.screen = screen;
    this.sendSignal = send;
    this.iceConfig = iceConfig;
    this.onTrack = onTrack;
    this.onTrackGone = onTrackGone;
    this.onStateChange = onStateChange;
    this.onConnected = onConnected || (() => {});
    this.closed = false;
    // What ICE found out, across restarts: for the reason the page shows when media cannot
    // connect (see mediaProblem()).
    this.waitingSince = Date.now();
    this.connectedNow = false;
    this.everConnected = false;
    this.ice = { relayUrls: new Set(), localTypes: new Set(), remoteTypes: new Set(), errors: new Map() };
    this.remoteLacksVp8 = false;
    this.remoteStreams = {};       // streamId -> 'camera' | 'screen' (from the remote's signals)
    this.trackKinds = new Map();   // receiver track id -> 'camera' | 'screen'
    this.incoming = Promise.resolve();
    // The last negotiation events, for window.parleyDebug and support.
    this.events = [];
    this.create();
  }

  note(text) {
    this.events.push(`${new Date().toISOString().slice(11, 23)} ${text}`);
    if (this.events.length > 60) this.events.shift();
  }

  create() {
    this.pcId = randomId();
    this.remotePcId = null;
    this.hadRemoteDescription = false;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    this.disconnectedTimer = null;
    this.cameraSenders = { audio: null, video: null };
    this.screenTransceiver = null;
    this.firstOfferHoldUntil = this.polite ? Date.now() + POLITE_FIRST_OFFER_HOLD_MS : 0;
    this.stuckSince = null;
    this.stuckRestarts = 0;
    const pc = new RTCPeerConnection(this.iceConfig());
    this.pc = pc;
    this.note(`new connection ${this.pcId} (${this.polite ? 'polite' : 'impolite'})`);

    // Without a camera or microphone (none, or denied) we add nothing: the other side's offer
    // still brings its media to us.
    for (const kind of ['audio', 'video']) {
      const track = kind === 'audio' ? this.media.audioTrack : this.media.videoTrack;
      if (track) this.cameraSenders[kind] = pc.addTrack(track, this.media.stream);
    }
    const screen = this.screen();
    if (screen && screen.track) this.addScreenTransceiver(screen);

    pc.addEventListener('negotiationneeded', () => this.enqueue(() => this.negotiate(pc)));
    pc.addEventListener('icecandidate', (event) => {
      const { candidate } = event;
      if (!candidate || pc !== this.pc) return;
      this.noteLocalCandidate(candidate, event.url);
      this.send({ candidate: candidate.toJSON() });
    });
    pc.addEventListener('track', (event) => this.handleTrack(pc, event));
    pc.addEventListener('iceconnectionstatechange', () => this.onIceState(pc));
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc === this.pc) this.note(`gathering ${pc.iceGatheringState}`);
    });
    pc.addEventListener('icecandidateerror', (event) => {
      if (pc !== this.pc) return;
      this.note(`candidate error ${event.errorCode} ${event.url || ''}`);
      if (event.url) this.ice.errors.set(event.url, { code: event.errorCode, text: event.errorText || '' });
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc === this.pc) this.onStateChange(this, pc.connectionState);
    });
  }

  send(data) {
    this.sendSignal({ pc: this.pcId, forPc: this.remotePcId, ...data });
  }

  noteLocalCandidate(candidate, url) {
    const type = candidate.type || (/ typ (\w+)/.exec(candidate.candidate || '') || [])[1];
    if (!type) return;
    this.ice.localTypes.add(type);
    if (type === 'relay') {
      const server = candidate.url || url || candidate.relayProtocol || 'relay';
      this.ice.relayUrls.add(server);
      this.ice.errors.delete(server);
    }
  }

  streamLabels() {
    const labels = { [this.media.stream.id]: 'camera' };
    const screen = this.screen();
    if (screen && screen.stream) labels[screen.stream.id] = 'screen';
    return labels;
  }

  // Our offers and the other side's descriptions go through one queue: an offer started while
  // a remote offer is being applied would otherwise turn into a second, conflicting local
  // description (seen in Chromium as a connection that never gathers candidates).
  enqueue(task) {
    this.incoming = this.incoming.then(task).catch((err) => console.warn('negotiation task failed', err));
    return this.incoming;
  }

  async negotiate(pc) {
    if (pc !== this.pc || this.closed) return;
    // Only from a settled state; when the current exchange completes the browser fires
    // negotiationneeded again if anything is still missing.
    if (pc.signalingState !== 'stable') {
      this.note(`offer postponed (${pc.signalingState})`);
      return;
    }
    if (!pc.remoteDescription && Date.now() < this.firstOfferHoldUntil) {
      const wait = this.firstOfferHoldUntil - Date.now();
      setTimeout(() => this.enqueue(() => {
        // The other side's offer came meanwhile and was answered: nothing left to do (were
        // something still missing, the browser fires negotiationneeded again).
        if (pc === this.pc && !pc.remoteDescription) return this.negotiate(pc);
        return undefined;
      }), wait);
      return;
    }
    try {
      this.makingOffer = true;
      this.applyCodecPreferences();
      await pc.setLocalDescription();
      if (pc !== this.pc) return;
      this.note(`sent ${pc.localDescription.type}`);
      this.send({ description: pc.localDescription.toJSON(), streams: this.streamLabels() });
    } catch (err) {
      this.note(`offer failed: ${err.name}: ${err.message}`);
      if (pc === this.pc && !this.closed) reportCaught('createOffer', err);
    } finally {
      this.makingOffer = false;
    }
  }

  // Signals are handled one after the other, in the order the server relayed them.
  handleSignal(data) {
    return this.enqueue(() => this.handleSignalNow(data));
  }

  async handleSignalNow(data) {
    if (this.closed || !data || typeof data !== 'object') return;
    const what = data.description ? data.description.type : 'candidate';
    if (data.forPc && data.forPc !== this.pcId) {
      this.note(`dropped ${what} for old connection ${data.forPc}`);
      return;  // meant for a connection we replaced
    }
    if (data.pc && this.remotePcId && data.pc !== this.remotePcId) {
      if (data.forPc) {
        // The other side replaced its connection in answer to ours: adopt it.
        this.remotePcId = data.pc;
      } else {
        // The other side starts from scratch (page reload): so do we.
        this.note(`remote restarted as ${data.pc}`);
        this.restartFromScratch();
      }
    }
    if (data.pc && !this.remotePcId) this.remotePcId = data.pc;
    if (data.streams && typeof data.streams === 'object') Object.assign(this.remoteStreams, data.streams);
    const pc = this.pc;
    try {
      if (data.description) {
        const description = data.description;
        const offerCollision = description.type === 'offer'
          && (this.makingOffer || (pc.signalingState !== 'stable' && !this.isSettingRemoteAnswerPending));
        this.ignoreOffer = !this.polite && offerCollision;
        if (description.type !== 'offer' || !this.ignoreOffer) this.note(`got ${description.type} (${pc.signalingState})`);
        if (this.ignoreOffer) {
          this.note('ignored colliding offer');
          return;
        }
        if (description.type === 'offer' || description.type === 'answer') {
          this.noteRemoteCodecs(description.sdp);
        }
        this.isSettingRemoteAnswerPending = description.type === 'answer';
        await pc.setRemoteDescription(description);
        this.isSettingRemoteAnswerPending = false;
        this.hadRemoteDescription = true;
        if (description.type === 'offer') {
          this.applyCodecPreferences();
          await pc.setLocalDescription();
          if (pc !== this.pc) return;
          this.note(`sent ${pc.localDescription.type}`);
          this.send({ description: pc.localDescription.toJSON(), streams: this.streamLabels() });
        }
      } else if (data.candidate) {
        const type = (/ typ (\w+)/.exec(data.candidate.candidate || '') || [])[1];
        if (type) this.ice.remoteTypes.add(type);
        try {
          await pc.addIceCandidate(data.candidate);
        } catch (err) {
          if (!this.ignoreOffer && pc.remoteDescription) throw err;
        }
      }
    } catch (err) {
      this.isSettingRemoteAnswerPending = false;
      this.note(`${what} failed: ${err.name}: ${err.message}`);
      if (pc === this.pc && !this.closed) {
        reportCaught(`signal ${data.description ? data.description.type : 'candidate'}`, err);
        console.warn('signal handling failed', err);
      }
    }
  }

  // Our offer is still unanswered (it may have been sent while the other side's socket was
  // down and been dropped by the server): send it again.
  resendPendingOffer() {
    const pc = this.pc;
    if (this.closed || pc.signalingState !== 'have-local-offer' || !pc.localDescription) return;
    this.send({ description: pc.localDescription.toJSON(), streams: this.streamLabels() });
  }

  // A fresh RTCPeerConnection; the old one's remote tiles go away with it.
  restartFromScratch() {
    const old = this.pc;
    this.dropConnection(old);
    this.create();
  }

  // Called every few seconds: a connection that negotiated but never connected (or lost its
  // path without the browser reporting 'failed') is restarted.
  checkStuck(now = Date.now()) {
    const pc = this.pc;
    const state = pc.iceConnectionState;
    if (this.closed || state === 'connected' || state === 'completed' || !pc.remoteDescription) {
      this.stuckSince = null;
      return;
    }
    if (!this.stuckSince) {
      this.stuckSince = now;
      return;
    }
    if (now - this.stuckSince >= STUCK_RESTART_MS && pc.signalingState === 'stable') {
      const seconds = Math.round((now - this.stuckSince) / 1000);
      this.stuckSince = now;
      this.stuckRestarts += 1;
      if (this.stuckRestarts % 2 === 1) {
        this.note(`not connected for ${seconds} s (${state}): ICE restart`);
        this.restartIce();
      } else {
        // An ICE restart did not help: a new connection (the other side follows, seeing a
        // new connection id addressed to nobody).
        this.note(`still not connected after an ICE restart (${state}): new connection`);
        const restarts = this.stuckRestarts;
        this.restartFromScratch();
        this.stuckRestarts = restarts;
      }
    }
  }

  dropConnection(pc) {
    clearTimeout(this.disconnectedTimer);
    for (const [trackId, kind] of this.trackKinds) this.onTrackGone(this, trackId, kind);
    this.trackKinds.clear();
    try {
      pc.close();
    } catch { /* already closed */ }
  }

  handleTrack(pc, event) {
    if (pc !== this.pc) return;
    const stream = event.streams && event.streams[0];
    const track = event.track;
    let kind = stream && this.remoteStreams[stream.id];
    if (!kind) {
      // No label (yet): a second video stream from the same peer is its screen.
      const cameraStreamKnown = [...this.trackKinds.values()].includes('camera');
      kind = track.kind === 'video' && cameraStreamKnown && event.transceiver
        && event.transceiver.mid !== null && this.isSecondVideo(event.transceiver) ? 'screen' : 'camera';
    }
    this.trackKinds.set(track.id, kind);
    this.note(`track ${track.kind} as ${kind}`);
    const shownStream = stream || new MediaStream([track]);
    this.onTrack(this, { track, stream: shownStream, kind });
    const gone = () => {
      if (pc !== this.pc || !this.trackKinds.has(track.id)) return;
      this.trackKinds.delete(track.id);
      this.onTrackGone(this, track.id, kind);
    };
    track.addEventListener('ended', gone);
    if (stream) {
      stream.addEventListener('removetrack', (e) => {
        if (e.track === track) gone();
      });
    }
  }

  isSecondVideo(transceiver) {
    const videos = this.pc.getTransceivers().filter((t) => t.receiver.track && t.receiver.track.kind === 'video');
    return videos.indexOf(transceiver) > 0;
  }

  noteRemoteCodecs(sdp) {
    if (typeof sdp !== 'string' || !/^m=video/m.test(sdp)) return;
    if (!/^a=rtpmap:\d+ VP8\//mi.test(sdp)) this.remoteLacksVp8 = true;
  }

  // VP8 first unless this browser is Safari or the remote peer offered no VP8 (older Safari,
  // some hardware): then H.264 first.
  applyCodecPreferences() {
    if (!canSetCodecPreferences) return;
    const codecs = orderedVideoCodecs(isSafari || this.remoteLacksVp8);
    if (!codecs || !codecs.length) return;
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = (transceiver.sender.track && transceiver.sender.track.kind)
        || (transceiver.receiver.track && transceiver.receiver.track.kind);
      if (kind !== 'video' || transceiver.stopped || transceiver.currentDirection === 'stopped') continue;
      try {
        transceiver.setCodecPreferences(codecs);
      } catch (err) {
        // A browser that rejects the list keeps its default order; the call still works.
        console.warn('setCodecPreferences failed', err);
      }
    }
  }

  onIceState(pc) {
    if (pc !== this.pc || this.closed) return;
    const state = pc.iceConnectionState;
    this.note(`ice ${state}`);
    clearTimeout(this.disconnectedTimer);
    if (state === 'connected' || state === 'completed') {
      if (!this.connectedNow) {
        this.connectedNow = true;
        this.everConnected = true;
        this.onConnected(this);
      }
    } else if (this.connectedNow && (state === 'disconnected' || state === 'failed' || state === 'new' || state === 'checking')) {
      this.connectedNow = false;
      this.waitingSince = Date.now();
    }
    if (state === 'failed') {
      this.restartIce();
    } else if (state === 'disconnected') {
      // Often a short blip that heals by itself; restart only if it lasts.
      this.disconnectedTimer = setTimeout(() => {
        if (pc === this.pc && pc.iceConnectionState === 'disconnected') this.restartIce();
      }, DISCONNECTED_RESTART_MS);
    }
    this.onStateChange(this, pc.connectionState);
  }

  // An ICE restart (RFC 8445 §9) through perfect negotiation: restartIce() marks the
  // connection as needing negotiation and the next offer carries new ICE credentials; a
  // collision with the other side's restart resolves like any other.
  restartIce() {
    if (this.closed) return;
    const pc = this.pc;
    this.updateIceServers();
    if (typeof pc.restartIce === 'function') {
      pc.restartIce();
    } else {
      // Older browsers: an explicit offer with iceRestart.
      this.enqueue(async () => {
        if (pc !== this.pc || pc.signalingState !== 'stable') return;
        this.makingOffer = true;
        try {
          await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
          this.send({ description: pc.localDescription.toJSON(), streams: this.streamLabels() });
        } catch (err) {
          reportCaught('iceRestart', err);
        } finally {
          this.makingOffer = false;
        }
      });
    }
  }

  // Fresh TURN credentials (they expire): used by the next ICE gathering or restart.
  updateIceServers() {
    if (this.closed) return;
    try {
      const configuration = this.pc.getConfiguration();
      configuration.iceServers = this.iceConfig().iceServers;
      this.pc.setConfiguration(configuration);
    } catch (err) {
      console.warn('setConfiguration failed', err);
    }
  }

  // Called when the camera or microphone track changed (device switch).
  async replaceCameraTrack(kind, track) {
    if (this.closed) return;
    const sender = this.cameraSenders[kind];
    try {
      if (sender) await sender.replaceTrack(track);
      // The first track of this kind (a device that came later): renegotiates.
      else if (track) this.cameraSenders[kind] = this.pc.addTrack(track, this.media.stream);
    } catch (err) {
      reportCaught('replaceTrack', err);
    }
  }

  addScreenTransceiver(screen) {
    // A transceiver of its own, so the remote side gets the screen as a separate track next
    // to the camera (and the camera keeps going while sharing).
    this.screenTransceiver = this.pc.addTransceiver(screen.track, { direction: 'sendonly', streams: [screen.stream] });
  }

  async setScreen(screen) {
    if (this.closed) return;
    try {
      if (screen && screen.track) {
        if (this.screenTransceiver && !this.screenTransceiver.stopped) {
          await this.screenTransceiver.sender.replaceTrack(screen.track);
          this.screenTransceiver.direction = 'sendonly';
        } else {
          this.addScreenTransceiver(screen);
        }
      } else if (this.screenTransceiver) {
        await this.screenTransceiver.sender.replaceTrack(null);
        // 'inactive' renegotiates: the remote side's track is removed (removetrack event).
        this.screenTransceiver.direction = 'inactive';
      }
    } catch (err) {
      reportCaught('screen share', err);
    }
  }

  // For the quality indicator and window.parleyDebug.
  async stats() {
    const pc = this.pc;
    const summary = {
      participantId: this.remoteId,
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      signalingState: pc.signalingState,
      inbound: [],
      pair: null,
      events: this.events.slice(),
      problem: this.mediaProblem(),
    };
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return summary;
    }
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    if (!pairId) {
      // Firefox marks the pair itself.
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && (s.selected || (s.nominated && s.state === 'succeeded')) && !pairId) pairId = s.id;
      });
    }
    const pair = pairId && byId.get(pairId);
    if (pair) {
      const local = byId.get(pair.localCandidateId) || {};
      const remote = byId.get(pair.remoteCandidateId) || {};
      summary.pair = {
        state: pair.state,
        currentRoundTripTime: pair.currentRoundTripTime,
        local: { candidateType: local.candidateType, relayProtocol: local.relayProtocol || null,
          protocol: local.protocol, address: local.address || local.ip, port: local.port, url: local.url || null },
        remote: { candidateType: remote.candidateType, protocol: remote.protocol,
          address: remote.address || remote.ip, port: remote.port },
      };
    }
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.isRemote) return;
      const kind = s.kind || s.mediaType;
      summary.inbound.push({
        kind,
        label: this.trackKinds.get(s.trackIdentifier) || (kind === 'video' ? 'camera' : 'audio'),
        trackIdentifier: s.trackIdentifier,
        mid: s.mid,
        framesDecoded: s.framesDecoded || 0,
        framesPerSecond: s.framesPerSecond,
        packetsReceived: s.packetsReceived || 0,
        packetsLost: s.packetsLost || 0,
        codec: s.codecId && byId.get(s.codecId) ? byId.get(s.codecId).mimeType : null,
      });
    });
    return summary;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.dropConnection(this.pc);
  }

  // Why media has not connected, once it has been trying for MEDIA_BLOCKED_MS: null, or
  // {reason, side, tried: ['UDP 3478', 'TLS 443', ...], errors: [...]}. reason:
  //  - 'media-blocked': this browser got no relay candidate from any TURN server (its network
  //    or proxy lets none of them through), and no direct path worked either;
  //  - 'media-filtered': the same, although TURN was offered on the very host and port this
  //    page and its signaling came through (TLS 443): a proxy or firewall inspects that traffic
  //    and passes only web requests;
  //  - 'peer-media-blocked': we have relay candidates but the other side sent none (their
  //    network blocks it);
  //  - 'media-failed': both sides have relay candidates and still no path (the relay itself
  //    or something between fails).
  mediaProblem(now = Date.now()) {
    if (this.closed || this.connectedNow || now - this.waitingSince < MEDIA_BLOCKED_MS) return null;
    if (!this.pc || !this.pc.remoteDescription) return null;
    const tried = [];
    for (const server of this.iceConfig().iceServers || []) {
      for (const url of [].concat(server.urls || [])) {
        const label = transportLabel(url);
        if (label && !tried.includes(label)) tried.push(label);
      }
    }
    const errors = [...this.ice.errors].map(([url, e]) => `${url}: ${e.code}${e.text ? ` ${e.text}` : ''}`);
    const host = (() => {
      for (const server of this.iceConfig().iceServers || []) {
        for (const url of [].concat(server.urls || [])) {
          const m = /^turns?:([^:?]+)/.exec(url);
          if (m) return m[1];
        }
      }
      return location.hostname;
    })();
    const base = { host, tried, errors, everConnected: this.everConnected };
    if (!this.ice.relayUrls.size) {
      // This page came over HTTPS from the same host and port as TURN over TLS, and the
      // signaling works: the network passes web traffic there but not TURN. Something looks
      // inside the connections (TLS inspection, a proxy that only forwards HTTP).
      const pagePort = location.port || '443';
      if (location.protocol === 'https:' && host === location.hostname && tried.includes(`TLS ${pagePort}`)) {
        return { reason: 'media-filtered', side: 'local', port: pagePort, ...base };
      }
      return { reason: 'media-blocked', side: 'local', ...base };
    }
    if (!this.ice.remoteTypes.has('relay')) return { reason: 'peer-media-blocked', side: 'remote', ...base };
    return { reason: 'media-failed', side: 'between', ...base };
  }
}

// 'turns:host:443?transport=tcp' -> 'TLS 443'; 'turn:host:3478?transport=udp' -> 'UDP 3478'.
export function transportLabel(url) {
  const m = /^(turns?):(?:\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(\w+))?/i.exec(String(url));
  if (!m) return null;
  const secure = m[1].toLowerCase() === 'turns';
  const port = m[2] || (secure ? '5349' : '3478');
  const transport = (m[3] || 'udp').toLowerCase();
  if (secure) return `TLS ${port}`;
  return `${transport.toUpperCase()} ${port}`;
}

// good / fair / poor from round-trip time, packet loss and frame rate between two samples.
export function rateQuality(previous, current) {
  if (!current || !current.pair || current.connectionState !== 'connected') {
    if (current && (current.connectionState === 'failed' || current.connectionState === 'disconnected')) {
      return { level: 'poor', text: 'connection lost, recovering' };
    }
    return { level: 'unknown', text: 'connecting' };
  }
  const rttMs = typeof current.pair.currentRoundTripTime === 'number' ? current.pair.currentRoundTripTime * 1000 : null;
  let received = 0;
  let lost = 0;
  for (const stream of current.inbound) {
    const before = previous && previous.inbound.find((s) => s.trackIdentifier === stream.trackIdentifier && s.mid === stream.mid);
    received += stream.packetsReceived - (before ? before.packetsReceived : 0);
    lost += stream.packetsLost - (before ? before.packetsLost : 0);
  }
  const lossPercent = received + lost > 0 ? (100 * Math.max(0, lost)) / (received + Math.max(0, lost)) : 0;
  const video = current.inbound.find((s) => s.kind === 'video' && s.label === 'camera' && typeof s.framesPerSecond === 'number');
  const fps = video ? video.framesPerSecond : null;
  let level = 'good';
  if ((rttMs !== null && rttMs > 300) || lossPercent > 2 || (fps !== null && fps < 15)) level = 'fair';
  if ((rttMs !== null && rttMs > 800) || lossPercent > 10 || (fps !== null && fps < 5)) level = 'poor';
  const parts = [];
  if (rttMs !== null) parts.push(`${Math.round(rttMs)} ms`);
  parts.push(`${lossPercent.toFixed(1)}% loss`);
  if (fps !== null) parts.push(`${Math.round(fps)} fps`);
  return { level, text: level, detail: parts.join(', ') };
}
