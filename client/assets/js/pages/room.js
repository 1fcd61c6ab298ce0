// `/room/<id>`: the advisor's meeting (role host): the meeting UI plus lobby, admit/reject,
// remove, mute and end. A reload comes straight back (the session cookie identifies the host).
import { h, announce } from '../dom.js';
import { ApiError, get, currentSession } from '../api.js';
import { hasWebRtc } from '../env.js';
import { LocalMedia, describeMediaError } from '../media.js';
import { Meeting } from '../meeting.js';
import { navigate } from '../router.js';
import { loginForm } from './advisor.js';

export function roomPage(main, [roomId]) {
  let meeting = null;
  let child = null;
  let disposed = false;
  const media = new LocalMedia();
  const backLink = () => {
    const link = h('a', { href: '/', class: 'button secondary', 'data-testid': 'back-to-rooms' }, 'Back to your rooms');
    link.addEventListener('click', (event) => {
      event.preventDefault();
      navigate('/');
    });
    return link;
  };

  async function enter() {
    if (!hasWebRtc) {
      main.replaceChildren(h('section', { class: 'card narrow', role: 'alert' },
        h('h1', {}, 'This browser cannot hold video meetings'),
        h('p', {}, 'Use a current version of Chrome, Edge, Firefox or Safari.')));
      return;
    }
    main.replaceChildren(h('section', { class: 'card connecting', 'data-testid': 'connecting-screen' },
      h('h1', {}, 'Opening the meeting…')));
    let session;
    let room;
    try {
      session = await currentSession();
      if (disposed) return;
      if (!session) {
        child = loginForm(() => enter());
        main.replaceChildren(child.el);
        return;
      }
      room = await get(`/api/v1/rooms/${encodeURIComponent(roomId)}`);
    } catch (err) {
      const text = err instanceof ApiError && (err.status === 404 || err.status === 403)
        ? 'This room does not exist or belongs to another advisor.' : err.message;
      main.replaceChildren(h('section', { class: 'card narrow', role: 'alert', 'data-testid': 'room-error' },
        h('h1', {}, 'The meeting cannot be opened'), h('p', {}, text), backLink()));
      return;
    }
    if (disposed) return;
    const errors = await media.start();
    if (disposed) {
      media.stop();
      return;
    }
    const problem = errors.audio || errors.video;
    if (problem) {
      announce(`${describeMediaError(problem, errors.audio && errors.video ? 'camera or microphone'
        : errors.audio ? 'microphone' : 'camera')} The meeting continues without it.`, { level: 'warn', sticky: true });
    }
    meeting = new Meeting({
      root: main,
      roomId: room.id,
      role: 'host',
      media,
      name: session.advisor.displayName || session.advisor.username,
      reauthenticate: async () => Boolean(await currentSession().catch(() => null)),
      onFinal: (reason, section) => {
        section.append(h('p', { class: 'button-row' }, backLink(),
          h('button', { type: 'button', class: 'primary', 'data-testid': 'restart-meeting', onclick: () => location.reload() },
            reason === 'ended' ? 'Start a new meeting in this room' : 'Rejoin the meeting')));
      },
    });
    meeting.start();
  }

  enter();
  return {
    dispose() {
      disposed = true;
      if (child && child.dispose) child.dispose();
      if (meeting) meeting.dispose();
      else media.stop();
    },
  };
}
