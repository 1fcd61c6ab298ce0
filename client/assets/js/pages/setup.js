// `/setup#t=TOKEN`: creates the first advisor with the one-time set-up token printed by the
// server at start-up.
import { h, field, messageBox } from '../dom.js';
import { ApiError, get, post, setCsrfToken } from '../api.js';
import { navigate } from '../router.js';

function tokenFromHash() {
  return new URLSearchParams(location.hash.slice(1)).get('t') || '';
}

function setupErrorText(err) {
  if (!(err instanceof ApiError)) return 'Set-up failed. Try again.';
  switch (err.code) {
    case 'invalid_token': return 'This set-up link is not valid. Use the complete link from the server log.';
    case 'token_expired': return 'This set-up link has expired. Restart the server to get a new one.';
    case 'already_set_up': return 'Parley is already set up. Sign in instead.';
    case 'username_taken': return 'This username is taken. Choose another one.';
    default: return err.message || 'Set-up failed.';
  }
}

export function setupPage(main) {
  const token = tokenFromHash();
  const username = h('input', { type: 'text', autocomplete: 'username', required: true, maxlength: 64, 'data-testid': 'setup-username' });
  const displayName = h('input', { type: 'text', autocomplete: 'name', required: true, maxlength: 100, 'data-testid': 'setup-display-name' });
  const password = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, 'data-testid': 'setup-password' });
  const repeat = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8, 'data-testid': 'setup-password-repeat' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'setup-submit' }, 'Create advisor account');
  const message = messageBox('setup-error');
  const form = h('form', { class: 'card narrow', 'data-testid': 'setup-form', 'aria-labelledby': 'setup-title' },
    h('h1', { id: 'setup-title' }, 'Set up Parley'),
    h('p', {}, 'Create the first advisor account. You can add more advisors later.'),
    field('Username', username), field('Display name', displayName, 'Shown to your customers.'),
    field('Password', password, 'At least 8 characters.'), field('Password again', repeat),
    message.el, submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    if (password.value !== repeat.value) {
      message.show('The two passwords differ.');
      repeat.focus();
      return;
    }
    submit.disabled = true;
    try {
      const answer = await post('/api/v1/setup', {
        token, username: username.value.trim(), password: password.value, displayName: displayName.value.trim(),
      });
      setCsrfToken(answer.csrfToken);
      // Drop the token from the address bar and history.
      navigate('/', { replace: true });
      return;
    } catch (err) {
      message.show(setupErrorText(err));
      if (err instanceof ApiError && err.code === 'already_set_up') {
        message.showNodes('error', 'Parley is already set up. ', h('a', { href: '/' }, 'Sign in'));
      }
    }
    submit.disabled = false;
  });

  (async () => {
    if (!token) {
      main.replaceChildren(h('section', { class: 'card narrow', role: 'alert', 'data-testid': 'setup-error' },
        h('h1', {}, 'Incomplete set-up link'),
        h('p', {}, 'Open the complete set-up link from the server log; it ends with #t= and a long code.')));
      return;
    }
    try {
      const state = await get('/api/v1/setup');
      if (!state.needed) {
        main.replaceChildren(h('section', { class: 'card narrow', 'data-testid': 'setup-done' },
          h('h1', {}, 'Parley is already set up'), h('p', {}, h('a', { href: '/' }, 'Sign in'))));
        return;
      }
    } catch {
      // Show the form anyway; submitting reports the problem.
    }
    main.replaceChildren(form);
    username.focus();
  })();
  return null;
}
