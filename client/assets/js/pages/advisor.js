// `/`: the advisor's page. Set-up pointer while no advisor exists, else login, else the
// dashboard (rooms, invitation links, start meeting, logout).
import { h, field, messageBox, announce, setHeaderExtra } from '../dom.js';
import { ApiError, get, post, del, currentSession, setCsrfToken } from '../api.js';
import { navigate } from '../router.js';

export function loginErrorText(err) {
  if (!(err instanceof ApiError)) return 'Signing in failed. Try again.';
  if (err.code === 'too_many_attempts' || err.status === 429) {
    const seconds = err.retryAfterSeconds;
    return seconds ? `Too many attempts. Try again in ${seconds} s.` : 'Too many attempts. Try again later.';
  }
  if (err.code === 'invalid_credentials') return 'Wrong username or password.';
  if (err.code === 'bad_origin') return 'This page was opened under an address the server does not accept. Open Parley under its public address.';
  if (err.status === 0) return err.message;
  return err.message || 'Signing in failed.';
}

// The login form; resolves through onLoggedIn(session).
export function loginForm(onLoggedIn) {
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, 'Sign in');
  const message = messageBox('login-error');
  let countdown = null;
  const form = h('form', { class: 'card narrow', 'data-testid': 'login-form', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in'),
    field('Username', username), field('Password', password), message.el, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    submit.disabled = true;
    try {
      const session = await post('/api/v1/session', { username: username.value.trim(), password: password.value });
      setCsrfToken(session.csrfToken);
      password.value = '';
      onLoggedIn(session);
    } catch (err) {
      message.show(loginErrorText(err));
      if (err instanceof ApiError && err.status === 429 && err.retryAfterSeconds) {
        // Keep the button off and the number honest until the server takes attempts again.
        let left = err.retryAfterSeconds;
        clearInterval(countdown);
        countdown = setInterval(() => {
          left -= 1;
          if (left <= 0 || !form.isConnected) {
            clearInterval(countdown);
            submit.disabled = false;
            message.clear();
            return;
          }
          message.show(`Too many attempts. Try again in ${left} s.`);
        }, 1000);
        return;
      }
      password.select();
    }
    submit.disabled = false;
  });
  setTimeout(() => username.focus(), 0);
  return { el: form, dispose: () => clearInterval(countdown) };
}

export function setupNeededNotice() {
  return h('section', { class: 'card narrow', 'data-testid': 'setup-needed' },
    h('h1', {}, 'Parley is not set up yet'),
    h('p', {}, 'Create the first advisor account with the set-up link that the server printed when it started '
      + '(a line "first advisor set-up: https://…/setup#t=…" in its log). Open that link in this browser.'));
}

const EXPIRY_CHOICES = [
  { seconds: 3600, label: '1 hour' },
  { seconds: 86400, label: '1 day' },
  { seconds: 604800, label: '7 days' },
];

async function copyText(input, status) {
  const text = input.value;
  try {
    if (!navigator.clipboard || !navigator.clipboard.writeText) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    status.textContent = 'Link copied.';
    return;
  } catch {
    // Clipboard API missing or refused: select the text so Ctrl+C / long-press copies it.
  }
  input.focus();
  input.select();
  input.setSelectionRange(0, text.length);
  let copied = false;
  try {
    copied = document.execCommand && document.execCommand('copy');
  } catch {
    copied = false;
  }
  status.textContent = copied ? 'Link copied.' : 'The link is selected: press Ctrl+C (⌘C on a Mac) to copy it.';
}

function roomItem(room, { onChanged }) {
  const live = room.live || { participants: 0, waiting: 0 };
  const liveText = live.participants || live.waiting
    ? `Live: ${live.participants} in the meeting, ${live.waiting} waiting` : 'No one in the meeting';
  const expiry = h('select', { 'data-testid': 'invitation-expiry' },
    EXPIRY_CHOICES.map((c) => h('option', { value: c.seconds, selected: c.seconds === 86400 }, c.label)));
  const singleUse = h('input', { type: 'checkbox', 'data-testid': 'invitation-single-use' });
  const linkInput = h('input', { type: 'text', readonly: true, class: 'invitation-link', 'data-testid': 'invitation-link', 'aria-label': `Invitation link for ${room.name}` });
  const copyStatus = h('span', { class: 'copy-status', role: 'status', 'aria-live': 'polite' });
  const copy = h('button', { type: 'button', 'data-testid': 'copy-invitation' }, 'Copy');
  copy.addEventListener('click', () => copyText(linkInput, copyStatus));
  linkInput.addEventListener('focus', () => linkInput.select());
  const invitationBox = h('div', { class: 'invitation', hidden: true, 'data-testid': 'invitation' },
    linkInput, copy, copyStatus, h('p', { class: 'hint invitation-expiry-text' }));
  const message = messageBox('room-error');
  const create = h('button', { type: 'button', 'data-testid': 'create-invitation' }, 'Create invitation link');
  create.addEventListener('click', async () => {
    message.clear();
    create.disabled = true;
    try {
      const invitation = await post(`/api/v1/rooms/${encodeURIComponent(room.id)}/invitations`, {
        expiresInSeconds: Number(expiry.value), singleUse: singleUse.checked,
      });
      linkInput.value = invitation.url;
      const until = new Date(invitation.expiresAt);
      invitationBox.querySelector('.invitation-expiry-text').textContent = `${invitation.singleUse ? 'Single use. ' : ''}`
        + (Number.isNaN(until.getTime()) ? '' : `Valid until ${until.toLocaleString()}.`);
      invitationBox.hidden = false;
      copyStatus.textContent = '';
      announce(`Invitation link for ${room.name} created.`);
    } catch (err) {
      message.show(err.message || 'The invitation could not be created.');
      if (err instanceof ApiError && err.status === 401) onChanged('logout');
    }
    create.disabled = false;
  });
  const start = h('a', { class: 'button primary', href: `/room/${encodeURIComponent(room.id)}`, 'data-testid': 'start-meeting' }, 'Start meeting');
  start.addEventListener('click', (event) => {
    event.preventDefault();
    navigate(`/room/${encodeURIComponent(room.id)}`);
  });
  return h('li', { class: 'room card', 'data-testid': 'room', 'data-room-id': room.id },
    h('div', { class: 'room-head' }, h('h2', { class: 'room-title' }, room.name),
      h('span', { class: 'room-live', 'data-testid': 'room-live' }, liveText)),
    h('div', { class: 'room-actions' },
      h('label', { class: 'inline' }, 'Link valid for ', expiry),
      h('label', { class: 'inline' }, singleUse, ' Single use'),
      create, start),
    invitationBox, message.el);
}

function dashboard(main, session, onLogout) {
  const list = h('ul', { class: 'room-list', 'data-testid': 'room-list' });
  const nameInput = h('input', { type: 'text', maxlength: 100, required: true, 'data-testid': 'room-name', placeholder: 'e.g. Mortgage consultation' });
  const createMessage = messageBox('create-room-error');
  const createForm = h('form', { class: 'card create-room', 'data-testid': 'create-room-form' },
    h('h2', {}, 'New room'), field('Room name', nameInput), createMessage.el,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-room' }, 'Create room'));
  let refreshTimer = null;
  const rendered = new Map();

  const logout = h('button', { type: 'button', class: 'secondary small', 'data-testid': 'logout' }, 'Sign out');
  logout.addEventListener('click', async () => {
    try {
      await del('/api/v1/session');
    } catch {
      // Signed out locally either way.
    }
    setCsrfToken(null);
    onLogout();
  });
  setHeaderExtra(h('span', { class: 'who' }, `Signed in as ${session.advisor.displayName || session.advisor.username}`), logout);

  async function load() {
    try {
      const answer = await get('/api/v1/rooms');
      const rooms = answer.rooms || [];
      const empty = !rooms.length ? h('li', { class: 'empty' }, 'No rooms yet. Create one above.') : null;
      // Keep rooms whose invitation box is open; refresh only the live counts of those.
      const items = rooms.map((room) => {
        const existing = rendered.get(room.id);
        if (existing && !existing.querySelector('[data-testid=invitation]').hidden) {
          const live = room.live || { participants: 0, waiting: 0 };
          existing.querySelector('[data-testid=room-live]').textContent = live.participants || live.waiting
            ? `Live: ${live.participants} in the meeting, ${live.waiting} waiting` : 'No one in the meeting';
          return existing;
        }
        const item = roomItem(room, { onChanged: (what) => { if (what === 'logout') onLogout(); } });
        rendered.set(room.id, item);
        return item;
      });
      list.replaceChildren(...items, ...(empty ? [empty] : []));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        onLogout();
        return;
      }
      announce(`Rooms could not be loaded: ${err.message}`, { level: 'error' });
    }
  }

  createForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    createMessage.clear();
    const name = nameInput.value.trim();
    if (!name) {
      createMessage.show('Enter a room name.');
      return;
    }
    try {
      await post('/api/v1/rooms', { name });
      nameInput.value = '';
      announce(`Room ${name} created.`);
      await load();
    } catch (err) {
      createMessage.show(err.message || 'The room could not be created.');
    }
  });

  main.replaceChildren(h('section', { class: 'dashboard', 'data-testid': 'dashboard' },
    h('h1', {}, 'Your rooms'), createForm, list));
  load();
  // Live counts change as customers arrive; a light poll keeps them honest.
  refreshTimer = setInterval(load, 10_000);
  return { dispose: () => clearInterval(refreshTimer) };
}

export function advisorPage(main) {
  let child = null;
  let disposed = false;
  const show = (next) => {
    if (child && child.dispose) child.dispose();
    child = next;
  };
  const showLogin = () => {
    const form = loginForm((session) => show(dashboard(main, session, showLogin)));
    main.replaceChildren(form.el);
    setHeaderExtra();
    show(form);
  };
  (async () => {
    try {
      const setup = await get('/api/v1/setup');
      if (disposed) return;
      if (setup && setup.needed) {
        main.replaceChildren(setupNeededNotice());
        return;
      }
      const session = await currentSession();
      if (disposed) return;
      if (session) show(dashboard(main, session, showLogin));
      else showLogin();
    } catch (err) {
      main.replaceChildren(h('section', { class: 'card narrow', role: 'alert' },
        h('h1', {}, 'Parley cannot be reached'), h('p', {}, err.message)));
    }
  })();
  return {
    dispose() {
      disposed = true;
      if (child && child.dispose) child.dispose();
    },
  };
}
