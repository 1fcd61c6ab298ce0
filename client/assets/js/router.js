// A small router on location.pathname. Pages are functions (main, params) -> {dispose()};
// navigate() swaps them without a reload (keeping the user activation that lets media play
// with sound) and keeps the relay=1 diagnostic flag in the URL.
import { announce, setHeaderExtra } from './dom.js';

const routes = [];
let current = null;

export function addRoute(pattern, page) {
  routes.push({ pattern, page });
}

function keepQuery(path) {
  const relay = new URLSearchParams(location.search).get('relay');
  if (!relay || path.includes('?')) return path;
  const hash = path.indexOf('#');
  const base = hash >= 0 ? path.slice(0, hash) : path;
  const fragment = hash >= 0 ? path.slice(hash) : '';
  return `${base}?relay=${encodeURIComponent(relay)}${fragment}`;
}

export function navigate(path, { replace = false } = {}) {
  const url = keepQuery(path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

export function render() {
  if (current && typeof current.dispose === 'function') {
    try {
      current.dispose();
    } catch (err) {
      console.error('dispose failed', err);
    }
  }
  current = null;
  const main = document.getElementById('main');
  main.replaceChildren();
  announce('');
  setHeaderExtra();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  for (const { pattern, page } of routes) {
    const match = pattern.exec(path);
    if (match) {
      current = page(main, match.slice(1).map(decodeURIComponent)) || null;
      return;
    }
  }
}

window.addEventListener('popstate', render);
