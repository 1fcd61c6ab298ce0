// Small DOM helpers. Everything is built with createElement and textContent, never innerHTML,
// so text from the server or other participants (names, chat) cannot inject markup, and the
// CSP needs no 'unsafe-inline'.

// h('button', {class: 'primary', 'data-testid': 'join-button', onclick: fn}, 'Join')
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// A labelled form field: <label for=id>text</label><input id=id ...>.
let fieldCounter = 0;
export function field(labelText, control, hint) {
  const id = control.id || `field-${++fieldCounter}`;
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hintEl);
}

// The page-wide status banner is an ARIA live region: what is written here is read out by
// screen readers, so every status change (reconnecting, admitted, errors) goes through it.
// `reason` (a stable code, e.g. 'media-blocked') goes into data-reason so tests and support can
// tell which problem is shown; any other announcement replaces it.
let statusTimer = null;
export function announce(text, { level = 'info', sticky = false, reason = null } = {}) {
  const banner = document.getElementById('status');
  if (!banner) return;
  clearTimeout(statusTimer);
  if (reason) banner.dataset.reason = reason;
  else delete banner.dataset.reason;
  if (!text) {
    banner.hidden = true;
    banner.textContent = '';
    return;
  }
  banner.textContent = text;
  banner.dataset.level = level;
  banner.hidden = false;
  if (!sticky) statusTimer = setTimeout(() => { banner.hidden = true; }, 6000);
}

// A message box inside a form or page: role=alert for errors so it is read out at once.
export function messageBox(testid) {
  const box = h('p', { class: 'message', 'data-testid': testid, hidden: true });
  return {
    el: box,
    show(text, level = 'error') {
      box.textContent = text;
      box.dataset.level = level;
      box.setAttribute('role', level === 'error' ? 'alert' : 'status');
      box.hidden = false;
    },
    showNodes(level, ...nodes) {
      box.replaceChildren();
      append(box, nodes);
      box.dataset.level = level;
      box.setAttribute('role', level === 'error' ? 'alert' : 'status');
      box.hidden = false;
    },
    clear() {
      box.hidden = true;
      box.textContent = '';
    },
  };
}

export function setHeaderExtra(...nodes) {
  const extra = document.getElementById('header-extra');
  if (extra) extra.replaceChildren(...nodes.filter(Boolean));
}

// Accessible confirmation with <dialog>: resolves true on confirm, false on cancel/Escape.
export function confirmDialog({ title, text, confirmLabel, cancelLabel = 'Cancel', danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${++fieldCounter}`;
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'data-testid': 'confirm-dialog' });
    const cancel = h('button', { type: 'button', 'data-testid': 'confirm-cancel' }, cancelLabel);
    const ok = h('button', { type: 'button', class: danger ? 'danger' : 'primary', 'data-testid': 'confirm-ok' },
      confirmLabel);
    append(dialog, [
      h('h2', { id: titleId }, title),
      text ? h('p', {}, text) : null,
      h('div', { class: 'dialog-buttons' }, cancel, ok),
    ]);
    let result = false;
    const finish = (value) => {
      result = value;
      dialog.close();
    };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    cancel.focus();
  });
}

export function formatTime(value) {
  const date = typeof value === 'number' ? new Date(value) : new Date(String(value));
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
