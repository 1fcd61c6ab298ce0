// The meeting: the signaling socket, one PeerLink per admitted remote participant, and the UI
// (video tiles, controls, chat, participant list, lobby and host controls). Used by the
// customer's join page (role guest) and the advisor's room page (role host).
import { h, append, announce, confirmDialog, formatTime, setHeaderExtra } from './dom.js';
import { iceServers as fetchIceServers } from './api.js';
import { canShareScreen, relayOnly } from './env.js';
import { applySpeaker, loadDevicePrefs, describeMediaError } from './media.js';
import { deviceSelectors } from './devices.js';
import { PeerLink, rateQuality } from './peer.js';
import { Signaling } from './signaling.js';
import { reportCaught } from './report.js';

const STATS_EVERY_MS = 2000;

const FINAL_TEXT = {
  ended: 'The meeting has ended.',
  removed: 'You were removed from the meeting by the host.',
  rejected: 'The advisor did not let you into the meeting.',
  replaced: 'This meeting was opened in another tab or window, so it was closed here.',
  full: 'The meeting is full. Try again later.',
  forbidden: 'You are not allowed to join this meeting.',
  left: 'You left the meeting.',
};

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return (parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2)).toUpperCase();
}

export class Meeting {
  // root: element to render into; role: 'host' | 'guest'; media: LocalMedia (started);
  // name: display name for join; reauthenticate(): re-establishes the cookie after a 4401;
  // onFinal(reason): the meeting is over for us (ended, removed, left, ...).
  constructor({ root, roomId, role, media, name, reauthenticate, onFinal }) {
    this.root = root;
    this.roomId = roomId;
    this.role = role;
    this.media = media;
    this.name = name;
    this.reauthenticate = reauthenticate;
    this.onFinal = onFinal;
    this.me = null;
    this.roomInfo = null;
    this.participants = new Map();   // id -> Participant (others)
    this.lobby = [];
    this.chat = [];
    this.pendingChat = [];
    this.peers = new Map();          // id -> PeerLink
    this.lastStats = new Map();      // id -> last stats summary
    this.tiles = new Map();          // `${id}:${kind}` -> tile record
    this.screen = null;              // {stream, track} while sharing
    this.screenStream = new MediaStream();
    this.ice = [];
    this.view = 'connecting';
    this.finished = false;
    this.messageChain = Promise.resolve();
    this.statsTimer = null;
    this.ui = null;
    this.blockedNotice = false;
    this.mediaProblem = null;        // {reason, text, peerId} shown in the status banner

    this.signaling = new Signaling({
      roomId,
      joinMessage: () => {
        const message = { media: this.mediaState() };
        if (this.name) message.name = this.name;
        return message;
      },
    });
    this.signaling.addEventListener('message', (e) => {
      const message = e.detail;
      // One message at a time: welcome fetches ICE servers before later messages need them.
      this.messageChain = this.messageChain.then(() => this.handle(message)).catch((err) => {
        reportCaught(`signaling ${message.type}`, err);
        console.error(err);
      });
    });
    this.signaling.addEventListener('state', (e) => this.onSignalingState(e.detail));
    this.signaling.addEventListener('final', (e) => this.finish(e.detail.reason));
    this.signaling.addEventListener('unreachable', () => this.showUnreachable());
    this.signaling.addEventListener('unauthenticated', async () => {
      const ok = this.reauthenticate ? await this.reauthenticate() : false;
      if (ok) this.signaling.reconnectNow();
      else this.finish('forbidden');
    });

    this.onTrackChange = (e) => {
      const { kind, track } = e.detail;
      for (const peer of this.peers.values()) peer.replaceCameraTrack(kind, track);
      this.renderSelfTile();
      this.updateControls();
      this.sendMedia();
    };
    this.media.addEventListener('trackchange', this.onTrackChange);
    this.onKey = (e) => {
      if (e.key === 'Escape' && this.ui && this.ui.panel.classList.contains('open')) this.togglePanel(false);
    };
    document.addEventListener('keydown', this.onKey);
    installDebug(this);
  }

  start() {
    this.renderConnecting();
    this.signaling.connect();
  }

  mediaState() {
    return { audio: this.media.audioEnabled, video: this.media.videoEnabled, screen: Boolean(this.screen) };
  }

  sendMedia() {
    if (this.view === 'meeting') this.signaling.sendNow({ type: 'media', ...this.mediaState() });
  }

  iceConfig() {
    return {
      iceServers: this.ice,
      iceTransportPolicy: relayOnly() ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
    };
  }

  async refreshIceServers() {
    try {
      this.ice = await fetchIceServers();
    } catch (err) {
      // Keep the previous servers; STUN-less host candidates still work on a LAN.
      reportCaught('ice-servers', err);
    }
    for (const peer of this.peers.values()) peer.updateIceServers();
  }

  // ---- server messages -------------------------------------------------------------------

  async handle(message) {
    if (this.finished) return;
    switch (message.type) {
      case 'welcome':
        await this.onWelcome(message);
        break;
      case 'lobby':
        this.me = message.you || this.me;
        this.roomInfo = message.room || this.roomInfo;
        this.renderLobbyScreen();
        break;
      case 'participant-joined':
        this.upsertParticipant(message.participant, true);
        break;
      case 'participant-updated':
        this.upsertParticipant(message.participant, false);
        break;
      case 'participant-left':
        this.removeParticipant(message.id, message.reason);
        break;
      case 'lobby-update':
        this.onLobbyUpdate(message.lobby || []);
        break;
      case 'signal': {
        const peer = this.peers.get(message.from) || this.ensurePeer(message.from);
        if (peer) peer.handleSignal(message.data);
        break;
      }
      case 'chat':
        this.addChat(message);
        break;
      case 'muted':
        if (message.kind === 'audio' || !message.kind) {
          this.media.setEnabled('audio', false);
          this.updateControls();
          this.renderSelfTile();
          this.sendMedia();
          announce('The host muted your microphone.', { level: 'info' });
        }
        break;
      case 'ended':
        this.finish('ended');
        break;
      case 'removed':
        this.finish('removed');
        break;
      case 'rejected':
        this.finish('rejected');
        break;
      case 'error':
        this.onServerError(message);
        break;
      default:
        break;
    }
  }

  async onWelcome(message) {
    const resumed = this.view === 'meeting';
    this.me = message.you;
    this.roomInfo = message.room || this.roomInfo;
    const others = (message.participants || []).filter((p) => p && p.id !== this.me.id);
    const ids = new Set(others.map((p) => p.id));
    for (const id of [...this.participants.keys()]) {
      if (!ids.has(id)) this.removeParticipant(id, 'left', { quiet: true });
    }
    for (const p of others) this.participants.set(p.id, p);
    if (this.role === 'host' || Array.isArray(message.lobby)) this.lobby = message.lobby || [];
    this.chat = [];
    for (const entry of message.chat || []) this.chat.push(entry);
    this.pendingChat = [];
    await this.refreshIceServers();
    if (this.view !== 'meeting') this.renderMeeting();
    for (const p of others) {
      if (p.connected !== false) {
        const peer = this.ensurePeer(p.id);
        // An offer we made while the socket was down never arrived: send it again.
        if (peer && resumed) peer.resendPendingOffer();
      }
    }
    this.renderAll();
    this.sendMedia();
    announce(resumed || message.resumed ? 'Reconnected to the meeting.' : 'You are in the meeting.');
  }

  onServerError(message) {
    const code = message.code || 'error';
    if (code === 'room_full') announce('The meeting is full: nobody else can be admitted.', { level: 'error' });
    else if (message.ref === 'chat') announce(`Your message was not sent: ${message.message || code}`, { level: 'error' });
    else console.warn('signaling error', message);
  }

  upsertParticipant(participant, joined) {
    if (!participant || !this.me || participant.id === this.me.id) {
      if (participant && this.me && participant.id === this.me.id) this.me = participant;
      return;
    }
    const before = this.participants.get(participant.id);
    this.participants.set(participant.id, participant);
    if (participant.connected !== false) {
      const peer = this.ensurePeer(participant.id);
      if (peer && before && before.connected === false) peer.resendPendingOffer();
    }
    if (!participant.screen) this.removeTile(participant.id, 'screen');
    if (joined && !before) announce(`${participant.name} joined the meeting.`);
    else if (before && before.connected !== false && participant.connected === false) {
      announce(`${participant.name} lost the connection; waiting for them to come back.`);
    } else if (before && before.connected === false && participant.connected !== false) {
      announce(`${participant.name} is back.`);
    }
    this.renderRemoteTile(participant);
    this.renderParticipants();
  }

  removeParticipant(id, reason, { quiet = false } = {}) {
    const participant = this.participants.get(id);
    this.participants.delete(id);
    const peer = this.peers.get(id);
    if (peer) peer.close();
    this.peers.delete(id);
    this.lastStats.delete(id);
    this.removeTile(id, 'camera');
    this.removeTile(id, 'screen');
    this.renderParticipants();
    if (participant && !quiet) {
      const why = reason === 'removed' ? 'was removed' : reason === 'disconnected' ? 'was disconnected' : 'left';
      announce(`${participant.name} ${why}.`);
    }
  }

  onLobbyUpdate(lobby) {
    const before = new Set(this.lobby.map((p) => p.id));
    this.lobby = lobby;
    const newcomers = lobby.filter((p) => !before.has(p.id));
    if (newcomers.length) {
      announce(`${newcomers.map((p) => p.name).join(', ')} ${newcomers.length > 1 ? 'are' : 'is'} waiting to be let in.`);
    }
    this.renderLobby();
  }

  ensurePeer(id) {
    if (this.peers.has(id)) return this.peers.get(id);
    if (!this.me || this.view !== 'meeting' || !this.participants.has(id)) return null;
    const peer = new PeerLink({
      localId: this.me.id,
      remoteId: id,
      media: this.media,
      screen: () => this.screen,
      iceConfig: () => this.iceConfig(),
      send: (data) => this.signaling.send({ type: 'signal', to: id, data }),
      onTrack: (link, track) => this.onRemoteTrack(link, track),
      onTrackGone: (link, trackId, kind) => this.onRemoteTrackGone(link, trackId, kind),
      onStateChange: (link, state) => this.onPeerState(link, state),
      onConnected: () => this.updateMediaProblem(),
    });
    this.peers.set(id, peer);
    return peer;
  }

  onRemoteTrack(link, { track, stream, kind }) {
    const participant = this.participants.get(link.remoteId);
    if (!participant) return;
    if (kind === 'screen') {
      const tile = this.tileFor(link.remoteId, 'screen', `${participant.name}: screen`);
      this.attach(tile, stream, false);
    } else {
      const tile = this.tileFor(link.remoteId, 'camera', participant.name);
      this.attach(tile, stream, false);
      if (track.kind === 'video') tile.hasVideo = true;
      this.renderRemoteTile(participant);
    }
  }

  onRemoteTrackGone(link, trackId, kind) {
    if (kind === 'screen') this.removeTile(link.remoteId, 'screen');
  }

  onPeerState(link, state) {
    const tile = this.tiles.get(`${link.remoteId}:camera`);
    if (tile) tile.el.dataset.connection = state;
  }

  onSignalingState(state) {
    if (this.finished) return;
    if (state === 'reconnecting' && this.view === 'meeting') {
      announce('Connection to the meeting lost. Reconnecting…', { level: 'warn', sticky: true });
    }
    if (this.ui) this.ui.root.dataset.signaling = state;
  }

  showUnreachable() {
    if (this.finished) return;
    const text = 'The meeting server cannot be reached. A firewall or proxy on your network may block '
      + 'the connection. Parley keeps trying; meanwhile you can run the connection check.';
    this.showReason('signaling-blocked', text);
  }

  // A sticky error in the status banner with a stable reason code (data-reason) and a link to
  // the connection check.
  showReason(reason, text) {
    announce(text, { level: 'error', sticky: true, reason });
    const banner = document.getElementById('status');
    if (banner) {
      banner.append(' ', h('a', { href: '/check', 'data-testid': 'check-link' }, 'Run the connection check'));
    }
  }

  // Media that does not connect must not spin forever: after peer.js's MEDIA_BLOCKED_MS the
  // banner says what failed (which transports to which host, on which side). Parley keeps
  // retrying meanwhile; the banner goes away when media connects.
  updateMediaProblem() {
    if (this.finished || this.view !== 'meeting') return;
    let problem = null;
    for (const peer of this.peers.values()) {
      const found = peer.mediaProblem();
      if (found) {
        problem = { ...found, peerId: peer.remoteId };
        break;
      }
    }
    const banner = document.getElementById('status');
    if (!problem) {
      if (this.mediaProblem) {
        this.mediaProblem = null;
        if (banner && banner.dataset.reason && banner.dataset.reason !== 'signaling-blocked') {
          announce('Audio and video are connected.');
        }
      }
      return;
    }
    const text = this.describeMediaProblem(problem);
    const changed = !this.mediaProblem || this.mediaProblem.text !== text;
    this.mediaProblem = { reason: problem.reason, text, peerId: problem.peerId };
    // Other sticky news (the signaling reconnecting) goes first; a non-sticky one is replaced.
    const bannerBusy = banner && !banner.hidden && (banner.dataset.reason === 'signaling-blocked'
      || (!banner.dataset.reason && banner.dataset.level !== 'info'));
    if ((changed || !banner || banner.hidden || banner.dataset.reason !== problem.reason) && !bannerBusy) {
      this.showReason(problem.reason, text);
    }
  }

  describeMediaProblem(problem) {
    const participant = this.participants.get(problem.peerId);
    const who = participant ? participant.name : 'the other participant';
    const tried = problem.tried.length ? problem.tried.join(', ').replace(/, ([^,]*)$/, ' or $1') : 'any port';
    if (problem.reason === 'media-blocked') {
      const open = problem.tried.includes('TLS 443') ? 'TCP 443 (better also UDP and TCP 3478)' : tried;
      return `Audio and video cannot connect: your network lets nothing through to ${problem.host} `
        + `on ${tried}. A firewall or proxy blocks it; ask your IT department to allow ${problem.host} `
        + `on ${open}. Parley keeps trying.`;
    }
    if (problem.reason === 'media-filtered') {
      return `Audio and video cannot connect: your network lets this page through to ${problem.host} `
        + `on port ${problem.port} but stops the audio and video sent the same way (tried ${tried}). `
        + 'A proxy or firewall inspects the connection (TLS inspection) or passes only web requests; '
        + `ask your IT department to exempt ${problem.host} from TLS inspection. Parley keeps trying.`;
    }
    if (problem.reason === 'peer-media-blocked') {
      return `Audio and video cannot connect to ${who}: their network seems to block every way to `
        + `${problem.host} (${tried}). Parley keeps trying.`;
    }
    return `Audio and video cannot connect to ${who}, although both sides reach ${problem.host}: `
      + 'the relay path fails between you. Parley keeps trying.';
  }

  // ---- chat ------------------------------------------------------------------------------

  addChat(message) {
    if (this.chat.some((c) => c.seq === message.seq)) return;
    this.chat.push(message);
    if (this.me && message.from === this.me.id) {
      const pending = this.pendingChat.findIndex((p) => p.text === message.text);
      if (pending >= 0) this.pendingChat.splice(pending, 1);
    } else if (this.ui && !this.ui.panel.classList.contains('open') && this.isNarrow()) {
      announce(`${message.name}: ${message.text}`);
    }
    this.renderChat();
  }

  sendChat(text) {
    const trimmed = text.trim();
    if (!trimmed) return false;
    if (!this.signaling.sendNow({ type: 'chat', text: trimmed.slice(0, 2000) })) {
      announce('Not connected: your message was not sent. Try again in a moment.', { level: 'error' });
      return false;
    }
    this.pendingChat.push({ text: trimmed, at: Date.now() });
    this.renderChat();
    return true;
  }

  // ---- local controls --------------------------------------------------------------------

  toggleMic() {
    if (!this.media.audioTrack) return;
    this.media.setEnabled('audio', !this.media.audioEnabled);
    this.afterLocalChange(this.media.audioEnabled ? 'Microphone on.' : 'Microphone muted.');
  }

  toggleCamera() {
    if (!this.media.videoTrack) return;
    this.media.setEnabled('video', !this.media.videoEnabled);
    this.afterLocalChange(this.media.videoEnabled ? 'Camera on.' : 'Camera off.');
  }

  afterLocalChange(text) {
    this.updateControls();
    this.renderSelfTile();
    this.sendMedia();
    announce(text);
  }

  async toggleScreen() {
    if (this.screen) {
      this.stopScreen();
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    } catch (err) {
      if (err && err.name !== 'NotAllowedError' && err.name !== 'AbortError') {
        reportCaught('getDisplayMedia', err);
        announce(`Screen sharing could not start (${err.name}).`, { level: 'error' });
      }
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    if ('contentHint' in track) track.contentHint = 'detail';
    for (const old of this.screenStream.getTracks()) this.screenStream.removeTrack(old);
    this.screenStream.addTrack(track);
    this.screen = { stream: this.screenStream, track };
    // The browser's own "Stop sharing" button ends the track.
    track.addEventListener('ended', () => {
      if (this.screen && this.screen.track === track) this.stopScreen();
    });
    for (const peer of this.peers.values()) await peer.setScreen(this.screen);
    const tile = this.tileFor(this.me.id, 'screen', 'Your screen', true);
    this.attach(tile, new MediaStream([track]), true);
    this.afterLocalChange('You are sharing your screen.');
  }

  stopScreen() {
    if (!this.screen) return;
    const { track } = this.screen;
    this.screen = null;
    track.stop();
    this.screenStream.removeTrack(track);
    for (const peer of this.peers.values()) peer.setScreen(null);
    if (this.me) this.removeTile(this.me.id, 'screen');
    this.afterLocalChange('Screen sharing stopped.');
  }

  leave() {
    this.signaling.leave();
    this.finish('left');
  }

  async endMeeting() {
    const ok = await confirmDialog({
      title: 'End the meeting for everyone?',
      text: 'Everyone is disconnected and the chat is cleared.',
      confirmLabel: 'End meeting',
      danger: true,
    });
    if (ok) this.signaling.sendNow({ type: 'end' });
  }

  async removeGuest(participant) {
    const ok = await confirmDialog({
      title: `Remove ${participant.name}?`,
      text: 'They cannot come back into this meeting with their link.',
      confirmLabel: 'Remove',
      danger: true,
    });
    if (ok) this.signaling.sendNow({ type: 'remove', id: participant.id });
  }

  finish(reason) {
    if (this.finished) return;
    this.finished = true;
    this.view = 'final';
    this.stopScreenQuietly();
    this.signaling.stop();
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    clearInterval(this.statsTimer);
    this.media.stop();
    const text = FINAL_TEXT[reason] || 'The meeting is over.';
    announce(text, { sticky: true });
    const section = h('section', { class: 'final-screen card', 'data-testid': 'final-screen', 'data-reason': reason },
      h('h1', {}, text));
    this.root.replaceChildren(section);
    if (this.onFinal) this.onFinal(reason, section);
  }

  dispose() {
    if (!this.finished) {
      this.signaling.leave();
      this.finished = true;
      for (const peer of this.peers.values()) peer.close();
      this.stopScreenQuietly();
      this.media.stop();
    }
    clearInterval(this.statsTimer);
    this.media.removeEventListener('trackchange', this.onTrackChange);
    document.removeEventListener('keydown', this.onKey);
    if (window.parleyDebug && window.parleyDebug.meeting === this) window.parleyDebug.meeting = null;
  }

  stopScreenQuietly() {
    if (this.screen) this.screen.track.stop();
    this.screen = null;
  }

  // ---- rendering -------------------------------------------------------------------------

  renderConnecting() {
    this.view = 'connecting';
    this.root.replaceChildren(h('section', { class: 'card connecting', 'data-testid': 'connecting-screen' },
      h('h1', {}, 'Connecting to the meeting…'),
      h('p', { class: 'spinner', 'aria-hidden': 'true' })));
  }

  renderLobbyScreen() {
    this.view = 'lobby';
    const preview = h('video', { class: 'preview mirror', autoplay: true, playsinline: true, 'aria-label': 'Your camera' });
    preview.muted = true;
    preview.srcObject = this.media.stream;
    const leave = h('button', { type: 'button', class: 'secondary', 'data-testid': 'leave', onclick: () => this.leave() }, 'Leave');
    this.root.replaceChildren(h('section', { class: 'card lobby-screen', 'data-testid': 'lobby-screen' },
      h('h1', {}, 'Waiting for your advisor to let you in'),
      h('p', {}, `You are in the waiting room of “${(this.roomInfo && this.roomInfo.name) || 'the meeting'}”. `
        + 'Please keep this page open; the meeting starts as soon as your advisor admits you.'),
      this.media.videoTrack ? preview : null,
      h('p', { class: 'spinner', 'aria-hidden': 'true' }),
      leave));
    announce('Waiting for your advisor to let you in.', { sticky: true });
  }

  renderMeeting() {
    this.view = 'meeting';
    const tiles = h('div', { class: 'tiles', 'data-testid': 'tiles' });
    const lobbyPanel = h('section', { class: 'lobby-panel', 'aria-label': 'Waiting room', 'data-testid': 'lobby-list', hidden: true });
    const participantsList = h('ul', { class: 'participant-list', 'data-testid': 'participant-list' });
    const chatLog = h('ol', { class: 'chat-log', 'data-testid': 'chat-messages', 'aria-live': 'polite', 'aria-label': 'Chat messages' });
    const chatInput = h('input', { type: 'text', maxlength: 2000, autocomplete: 'off', 'data-testid': 'chat-input', 'aria-label': 'Chat message', placeholder: 'Write a message' });
    const chatForm = h('form', { class: 'chat-form', 'data-testid': 'chat-form' }, chatInput,
      h('button', { type: 'submit', 'data-testid': 'chat-send' }, 'Send'));
    chatForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (this.sendChat(chatInput.value)) chatInput.value = '';
    });
    const panelId = 'meeting-panel';
    const panel = h('aside', { class: 'side-panel', id: panelId, 'aria-label': 'Participants and chat' },
      h('div', { class: 'panel-head' }, h('h2', { class: 'panel-title' }, 'People'),
        h('button', { type: 'button', class: 'icon-button close-panel', 'aria-label': 'Close panel', onclick: () => this.togglePanel(false) }, '×')),
      participantsList,
      h('h2', { class: 'panel-title' }, 'Chat'),
      chatLog, chatForm);

    const button = (testid, label, onclick, extra = {}) => h('button', { type: 'button', 'data-testid': testid, onclick, ...extra }, label);
    const mic = button('toggle-mic', 'Mute', () => this.toggleMic(), { 'aria-pressed': 'false' });
    const camera = button('toggle-camera', 'Stop camera', () => this.toggleCamera(), { 'aria-pressed': 'false' });
    const share = button('share-screen', 'Share screen', () => this.toggleScreen(), { 'aria-pressed': 'false' });
    if (!canShareScreen()) share.hidden = true;
    const settings = button('open-settings', 'Devices', () => this.openSettings());
    const panelToggle = button('toggle-panel', 'Chat & people', () => this.togglePanel(), { 'aria-expanded': 'false', 'aria-controls': panelId, class: 'panel-toggle' });
    const leave = button('leave', 'Leave', () => this.leave(), { class: 'danger-outline' });
    const end = this.role === 'host' ? button('end-meeting', 'End meeting', () => this.endMeeting(), { class: 'danger' }) : null;
    const controls = h('nav', { class: 'controls', 'aria-label': 'Meeting controls' }, mic, camera, share, settings, panelToggle, leave, end);
    const audioUnlock = h('button', { type: 'button', class: 'primary audio-unlock', hidden: true, 'data-testid': 'enable-audio' }, 'Turn on sound');
    audioUnlock.addEventListener('click', () => {
      for (const tile of this.tiles.values()) tile.video.play().catch(() => {});
      audioUnlock.hidden = true;
    });

    const root = h('section', { class: 'meeting', 'data-testid': 'meeting', 'data-role': this.role },
      h('h1', { class: 'visually-hidden' }, `Meeting: ${(this.roomInfo && this.roomInfo.name) || ''}`),
      h('div', { class: 'stage' }, h('div', { class: 'stage-main' }, lobbyPanel, audioUnlock, tiles), panel),
      controls);
    this.ui = { root, tiles, lobbyPanel, participantsList, chatLog, chatInput, panel, mic, camera, share, panelToggle, audioUnlock };
    this.root.replaceChildren(root);
    setHeaderExtra(h('span', { class: 'room-name', 'data-testid': 'room-name' }, (this.roomInfo && this.roomInfo.name) || ''));
    this.tiles.clear();
    this.renderSelfTile();
    this.startStats();
    this.updateControls();
  }

  renderAll() {
    if (!this.ui) return;
    for (const p of this.participants.values()) this.renderRemoteTile(p);
    this.renderSelfTile();
    this.renderParticipants();
    this.renderLobby();
    this.renderChat();
    this.updateControls();
  }

  isNarrow() {
    return typeof matchMedia === 'function' && matchMedia('(max-width: 899px)').matches;
  }

  togglePanel(open) {
    if (!this.ui) return;
    const panel = this.ui.panel;
    const next = typeof open === 'boolean' ? open : !panel.classList.contains('open');
    panel.classList.toggle('open', next);
    this.ui.panelToggle.setAttribute('aria-expanded', String(next));
    if (next) this.ui.chatInput.focus();
    else this.ui.panelToggle.focus();
  }

  openSettings() {
    const selectors = deviceSelectors(this.media, {
      onSpeakerChange: (id) => {
        for (const tile of this.tiles.values()) if (!tile.self) applySpeaker(tile.video, id);
      },
    });
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'settings-title', 'data-testid': 'settings-dialog' },
      h('h2', { id: 'settings-title' }, 'Devices'), selectors.el,
      h('div', { class: 'dialog-buttons' }, h('button', { type: 'button', class: 'primary', 'data-testid': 'settings-close', onclick: () => dialog.close() }, 'Done')));
    dialog.addEventListener('close', () => {
      selectors.dispose();
      dialog.remove();
    });
    document.body.append(dialog);
    selectors.refresh();
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
  }

  updateControls() {
    if (!this.ui) return;
    const { mic, camera, share } = this.ui;
    const hasAudio = Boolean(this.media.audioTrack);
    const hasVideo = Boolean(this.media.videoTrack);
    mic.disabled = !hasAudio;
    mic.textContent = !hasAudio ? 'No microphone' : this.media.audioEnabled ? 'Mute' : 'Unmute';
    mic.setAttribute('aria-pressed', String(hasAudio && !this.media.audioEnabled));
    camera.disabled = !hasVideo;
    camera.textContent = !hasVideo ? 'No camera' : this.media.videoEnabled ? 'Stop camera' : 'Start camera';
    camera.setAttribute('aria-pressed', String(hasVideo && !this.media.videoEnabled));
    share.textContent = this.screen ? 'Stop sharing' : 'Share screen';
    share.setAttribute('aria-pressed', String(Boolean(this.screen)));
  }

  tileFor(participantId, kind, name, self = false) {
    const key = `${participantId}:${kind}`;
    let tile = this.tiles.get(key);
    if (tile) return tile;
    const video = h('video', { autoplay: true, playsinline: true });
    video.muted = self || kind === 'screen';
    const nameEl = h('span', { class: 'tile-name' }, name);
    const flags = h('span', { class: 'tile-flags' });
    const quality = h('span', { class: 'quality', 'data-testid': 'quality', 'data-level': 'unknown', hidden: self || kind === 'screen' });
    const placeholder = h('div', { class: 'tile-placeholder', 'aria-hidden': 'true' }, h('span', { class: 'avatar' }, initials(name)));
    const el = h('figure', {
      class: `tile tile-${kind}${self ? ' tile-self' : ''}`,
      'data-testid': 'video-tile',
      'data-participant-id': participantId,
      'data-kind': kind,
      'data-self': self ? 'true' : 'false',
    }, video, placeholder, h('figcaption', { class: 'tile-caption' }, nameEl, flags, quality));
    tile = { key, el, video, nameEl, flags, quality, placeholder, self, kind, hasVideo: false, participantId };
    this.tiles.set(key, tile);
    if (this.ui) {
      // Screens first (they matter most), then cameras; own camera last.
      if (kind === 'screen') this.ui.tiles.prepend(el);
      else if (self) this.ui.tiles.append(el);
      else {
        const selfTile = this.ui.tiles.querySelector('.tile-self.tile-camera');
        this.ui.tiles.insertBefore(el, selfTile);
      }
      this.ui.tiles.dataset.count = String(this.tiles.size);
    }
    return tile;
  }

  attach(tile, stream, muted) {
    if (tile.video.srcObject !== stream) tile.video.srcObject = stream;
    tile.video.muted = muted || tile.self || tile.kind === 'screen';
    if (!tile.self) applySpeaker(tile.video, loadDevicePrefs().speakerId);
    const playing = tile.video.play();
    if (playing && typeof playing.catch === 'function') {
      playing.catch((err) => {
        // Autoplay with sound refused until the person interacts with the page.
        if (err && err.name === 'NotAllowedError' && this.ui) this.ui.audioUnlock.hidden = false;
      });
    }
  }

  removeTile(participantId, kind) {
    const key = `${participantId}:${kind}`;
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.el.remove();
    this.tiles.delete(key);
    if (this.ui) this.ui.tiles.dataset.count = String(this.tiles.size);
  }

  setFlags(tile, { audio, video, connected }) {
    tile.flags.replaceChildren();
    if (!audio) tile.flags.append(h('span', { class: 'flag flag-mic-off', 'data-flag': 'mic-off' }, 'Mic off'));
    if (!video) tile.flags.append(h('span', { class: 'flag flag-cam-off', 'data-flag': 'camera-off' }, 'Camera off'));
    if (connected === false) tile.flags.append(h('span', { class: 'flag flag-away', 'data-flag': 'reconnecting' }, 'Reconnecting…'));
    tile.el.classList.toggle('no-video', !video);
  }

  renderSelfTile() {
    if (!this.ui || !this.me) return;
    const tile = this.tileFor(this.me.id, 'camera', `${this.me.name || this.name || 'You'} (you)`, true);
    tile.el.classList.add('mirror');
    if (tile.video.srcObject !== this.media.stream) this.attach(tile, this.media.stream, true);
    this.setFlags(tile, { audio: this.media.audioEnabled, video: this.media.videoEnabled, connected: true });
  }

  renderRemoteTile(participant) {
    if (!this.ui) return;
    const tile = this.tileFor(participant.id, 'camera', participant.name);
    tile.nameEl.textContent = participant.role === 'host' ? `${participant.name} (host)` : participant.name;
    this.setFlags(tile, { audio: participant.audio, video: participant.video, connected: participant.connected });
    tile.el.classList.toggle('no-video', !participant.video || !tile.hasVideo);
  }

  renderParticipants() {
    if (!this.ui || !this.me) return;
    const list = this.ui.participantsList;
    list.replaceChildren();
    const everyone = [this.me, ...this.participants.values()];
    for (const p of everyone) {
      const self = p.id === this.me.id;
      const state = self ? 'connected' : p.connected === false ? 'reconnecting…' : 'connected';
      const audio = self ? this.media.audioEnabled : p.audio;
      const video = self ? this.media.videoEnabled : p.video;
      const li = h('li', { class: 'participant', 'data-testid': 'participant', 'data-participant-id': p.id, 'data-connected': String(state === 'connected') },
        h('span', { class: 'participant-name' }, p.name || 'Unnamed', self ? ' (you)' : '', p.role === 'host' ? ' · host' : ''),
        h('span', { class: 'participant-state' }, `${state}${audio ? '' : ' · mic off'}${video ? '' : ' · camera off'}${p.screen ? ' · sharing screen' : ''}`));
      if (this.role === 'host' && !self && p.role !== 'host') {
        const mute = h('button', { type: 'button', class: 'small', 'data-testid': 'mute-participant', 'aria-label': `Mute ${p.name}`, disabled: !p.audio }, 'Mute');
        mute.addEventListener('click', () => this.signaling.sendNow({ type: 'mute', id: p.id, kind: 'audio' }));
        const remove = h('button', { type: 'button', class: 'small danger-outline', 'data-testid': 'remove-participant', 'aria-label': `Remove ${p.name}` }, 'Remove');
        remove.addEventListener('click', () => this.removeGuest(p));
        li.append(h('span', { class: 'participant-actions' }, mute, remove));
      }
      list.append(li);
    }
    if (this.ui.panelToggle) this.ui.panelToggle.textContent = `Chat & people (${everyone.length})`;
  }

  renderLobby() {
    if (!this.ui) return;
    const panel = this.ui.lobbyPanel;
    panel.replaceChildren();
    if (this.role !== 'host' || !this.lobby.length) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    panel.append(h('h2', {}, `Waiting to join (${this.lobby.length})`));
    const list = h('ul', {});
    for (const p of this.lobby) {
      const admit = h('button', { type: 'button', class: 'primary small', 'data-testid': 'admit', 'aria-label': `Admit ${p.name}` }, 'Admit');
      admit.addEventListener('click', () => this.signaling.sendNow({ type: 'admit', id: p.id }));
      const reject = h('button', { type: 'button', class: 'small danger-outline', 'data-testid': 'reject', 'aria-label': `Reject ${p.name}` }, 'Reject');
      reject.addEventListener('click', () => this.signaling.sendNow({ type: 'reject', id: p.id }));
      list.append(h('li', { class: 'lobby-entry', 'data-testid': 'lobby-entry', 'data-participant-id': p.id },
        h('span', { class: 'participant-name' }, p.name), h('span', { class: 'lobby-actions' }, admit, reject)));
    }
    panel.append(list);
  }

  renderChat() {
    if (!this.ui) return;
    const log = this.ui.chatLog;
    log.replaceChildren();
    for (const message of this.chat) {
      const mine = this.me && message.from === this.me.id;
      log.append(h('li', { class: `chat-message${mine ? ' mine' : ''}`, 'data-testid': 'chat-message', 'data-from': message.from },
        h('span', { class: 'chat-meta' }, h('span', { class: 'chat-name' }, mine ? 'You' : message.name),
          ' ', h('time', {}, formatTime(message.at))),
        h('p', { class: 'chat-text' }, message.text)));
    }
    // Sent but not yet echoed by the server.
    for (const pending of this.pendingChat) {
      log.append(h('li', { class: 'chat-message mine pending', 'data-testid': 'chat-message', 'data-pending': 'true' },
        h('span', { class: 'chat-meta' }, h('span', { class: 'chat-name' }, 'You'), ' ', h('time', {}, formatTime(pending.at))),
        h('p', { class: 'chat-text' }, pending.text)));
    }
    log.scrollTop = log.scrollHeight;
  }

  startStats() {
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this.sampleStats(), STATS_EVERY_MS);
  }

  async sampleStats() {
    this.updateMediaProblem();
    for (const [id, peer] of this.peers) {
      peer.checkStuck();
      const current = await peer.stats();
      const previous = this.lastStats.get(id);
      this.lastStats.set(id, current);
      const quality = rateQuality(previous, current);
      const tile = this.tiles.get(`${id}:camera`);
      if (!tile) continue;
      tile.quality.dataset.level = quality.level;
      tile.quality.textContent = `Connection: ${quality.text}`;
      tile.quality.title = quality.detail || '';
      tile.quality.setAttribute('aria-label', `Connection quality ${quality.text}${quality.detail ? ` (${quality.detail})` : ''}`);
    }
  }
}

// window.parleyDebug: hooks for the end-to-end tests and for support sessions.
function installDebug(meeting) {
  window.parleyDebug = {
    meeting,
    ws: () => (window.parleyDebug.meeting ? window.parleyDebug.meeting.signaling.ws : null),
    // Closes the signaling socket as a network failure would; Parley reconnects by itself.
    dropWebSocket: () => {
      const current = window.parleyDebug.meeting;
      const ws = current && current.signaling.ws;
      if (ws) ws.close(4900, 'test: simulated drop');
      return Boolean(ws);
    },
    state: () => {
      const m = window.parleyDebug.meeting;
      if (!m) return null;
      return {
        view: m.view,
        me: m.me,
        participants: [...m.participants.values()],
        lobby: m.lobby,
        chat: m.chat.length,
        signaling: m.signaling.ws ? m.signaling.ws.readyState : -1,
        relayOnly: relayOnly(),
        iceServers: m.ice.map((server) => server.urls),
      };
    },
    // {participantId: {connectionState, pair: {local: {candidateType, relayProtocol}, remote},
    //  inbound: [{kind, label: camera|screen|audio, framesDecoded, ...}]}}
    stats: async () => {
      const m = window.parleyDebug.meeting;
      const result = {};
      if (!m) return result;
      for (const [id, peer] of m.peers) result[id] = await peer.stats();
      return result;
    },
  };
}

export { describeMediaError, append };
