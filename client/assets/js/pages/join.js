// `/join#t=TOKEN`: the customer's way in. Pre-join page (camera/microphone preview, device
// choice, name) -> POST /api/v1/join -> signaling (lobby, then meeting). After a reload the
// guest cookie and what sessionStorage remembers (name, devices, "joined") bring the customer
// straight back without the form: POST /api/v1/join is idempotent for the same guest.
import { h, field, messageBox, announce } from '../dom.js';
import { ApiError, post } from '../api.js';
import { hasWebRtc, storageGet, storageSet } from '../env.js';
import { LocalMedia, describeMediaError, applySpeaker, loadDevicePrefs } from '../media.js';
import { deviceSelectors } from '../devices.js';
import { Meeting } from '../meeting.js';

const JOIN_KEY = 'parley.join';

function tokenFromHash() {
  return new URLSearchParams(location.hash.slice(1)).get('t') || '';
}

export function joinErrorText(err) {
  if (!(err instanceof ApiError)) return 'Joining failed. Try again.';
  switch (err.code) {
    case 'invalid_token': return 'This invitation link is not valid. Check that you opened the complete link, or ask your advisor for a new one.';
    case 'token_expired': return 'This invitation link has expired. Ask your advisor for a new one.';
    case 'invitation_used': return 'This invitation link has already been used. Ask your advisor for a new one.';
    case 'room_not_found':
    case 'not_found': return 'This meeting no longer exists. Ask your advisor for a new link.';
    case 'too_many_requests': return `Too many attempts. Try again in ${err.retryAfterSeconds || 10} s.`;
    case 'network': return err.message;
    default: return err.message || 'Joining failed.';
  }
}

// Messages for the camera and microphone, as nodes.
function mediaProblems(errors) {
  const { audio, video } = errors;
  if (!audio && !video) return null;
  if (audio && video && audio.name === video.name) return describeMediaError(audio);
  const parts = [];
  if (video) parts.push(describeMediaError(video, 'camera'));
  if (audio) parts.push(describeMediaError(audio, 'microphone'));
  return parts.join(' ');
}

export function joinPage(main) {
  const token = tokenFromHash() || (storageGet(JOIN_KEY) || {}).token || '';
  const stored = storageGet(JOIN_KEY);
  const media = new LocalMedia();
  let meeting = null;
  let selectors = null;
  let disposed = false;

  if (!token) {
    main.replaceChildren(h('section', { class: 'card narrow', role: 'alert', 'data-testid': 'join-error' },
      h('h1', {}, 'Incomplete invitation link'),
      h('p', {}, 'Open the complete link from your invitation; it ends with #t= followed by a long code.')));
    return null;
  }
  if (!hasWebRtc) {
    main.replaceChildren(h('section', { class: 'card narrow', role: 'alert', 'data-testid': 'join-error' },
      h('h1', {}, 'This browser cannot join video meetings'),
      h('p', {}, 'Use a current version of Chrome, Edge, Firefox or Safari.')));
    return null;
  }

  async function join(name, messageTarget) {
    let answer;
    try {
      answer = await post('/api/v1/join', { token, name });
    } catch (err) {
      messageTarget(joinErrorText(err));
      return false;
    }
    if (disposed) return false;
    storageSet(JOIN_KEY, { token, name, joined: true, roomId: answer.room.id });
    if (selectors) selectors.dispose();
    meeting = new Meeting({
      root: main,
      roomId: answer.room.id,
      role: 'guest',
      media,
      name,
      reauthenticate: async () => {
        try {
          await post('/api/v1/join', { token, name });
          return true;
        } catch {
          return false;
        }
      },
      onFinal: (reason, section) => {
        storageSet(JOIN_KEY, { token, name, joined: false });
        if (reason === 'left' || reason === 'replaced' || reason === 'full') {
          section.append(h('p', {}, h('button', { type: 'button', class: 'primary', 'data-testid': 'rejoin',
            onclick: () => location.reload() }, 'Join again')));
        } else {
          section.append(h('p', {}, 'You can close this page now.'));
        }
      },
    });
    meeting.start();
    return true;
  }

  function renderPrejoin(initialError) {
    const preview = h('video', { class: 'preview mirror', autoplay: true, playsinline: true, 'data-testid': 'preview', 'aria-label': 'Your camera preview' });
    preview.muted = true;
    const mediaMessage = messageBox('media-error');
    const retry = h('button', { type: 'button', class: 'secondary small', hidden: true, 'data-testid': 'media-retry' }, 'Try the camera and microphone again');
    const name = h('input', { type: 'text', maxlength: 60, required: true, autocomplete: 'name', 'data-testid': 'join-name' });
    name.value = (stored && stored.name) || '';
    const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'join-button' }, 'Join');
    const message = messageBox('join-error');
    selectors = deviceSelectors(media, {
      onSpeakerChange: (id) => applySpeaker(preview, id),
    });
    const form = h('form', { class: 'prejoin-form card', 'data-testid': 'join-form', 'aria-labelledby': 'join-title' },
      h('h1', { id: 'join-title' }, 'Join your meeting'),
      field('Your name', name, 'Your advisor sees this name.'),
      selectors.el, message.el, submit);
    const section = h('section', { class: 'prejoin', 'data-testid': 'prejoin' },
      h('div', { class: 'prejoin-media card' }, h('div', { class: 'preview-frame' }, preview,
        h('p', { class: 'preview-off', 'aria-hidden': 'true' }, 'Camera off')), mediaMessage.el, retry),
      form);
    main.replaceChildren(section);
    if (initialError) message.show(initialError);

    const showMedia = () => {
      preview.srcObject = media.stream;
      section.classList.toggle('no-video', !media.videoTrack);
      const problem = mediaProblems(media.errors);
      if (problem) {
        mediaMessage.show(`${problem} You can still join; your advisor will not see or hear you.`,
          media.audioTrack || media.videoTrack ? 'warn' : 'error');
        retry.hidden = false;
      } else {
        mediaMessage.clear();
        retry.hidden = true;
      }
    };
    const startMedia = async () => {
      await media.start();
      if (disposed) return;
      showMedia();
      await selectors.refresh();
    };
    retry.addEventListener('click', async () => {
      media.stop();
      await startMedia();
    });
    media.addEventListener('trackchange', () => { if (!meeting) showMedia(); });
    startMedia();
    applySpeaker(preview, loadDevicePrefs().speakerId);

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      message.clear();
      const value = name.value.trim();
      if (!value) {
        message.show('Enter your name.');
        name.focus();
        return;
      }
      submit.disabled = true;
      const ok = await join(value, (text) => message.show(text));
      if (!ok) submit.disabled = false;
    });
    if (!name.value) name.focus();
  }

  if (stored && stored.token === token && stored.joined && stored.name) {
    // Reload during a meeting: straight back in with the same devices.
    main.replaceChildren(h('section', { class: 'card connecting', 'data-testid': 'connecting-screen' },
      h('h1', {}, 'Reconnecting to your meeting…')));
    (async () => {
      await media.start();
      if (disposed) return;
      const problem = mediaProblems(media.errors);
      if (problem) announce(problem, { level: 'warn' });
      let failure = null;
      const ok = await join(stored.name, (text) => { failure = text; });
      if (!ok && !disposed) {
        storageSet(JOIN_KEY, { token, name: stored.name, joined: false });
        media.stop();
        renderPrejoin(failure);
      }
    })();
  } else {
    renderPrejoin(null);
  }

  return {
    dispose() {
      disposed = true;
      if (selectors) selectors.dispose();
      if (meeting) meeting.dispose();
      else media.stop();
    },
  };
}
