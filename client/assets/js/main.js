// Entry point: error reporting first, then the routes of docs/api.md "Static pages".
import { installErrorReporting } from './report.js';
import { addRoute, render } from './router.js';
import { h } from './dom.js';
import { advisorPage } from './pages/advisor.js';
import { setupPage } from './pages/setup.js';
import { joinPage } from './pages/join.js';
import { roomPage } from './pages/room.js';
import { checkPage } from './pages/check.js';

installErrorReporting();

addRoute(/^\/$/, advisorPage);
addRoute(/^\/setup$/, setupPage);
addRoute(/^\/join$/, joinPage);
addRoute(/^\/room\/([A-Za-z0-9_-]{1,64})$/, roomPage);
addRoute(/^\/check$/, checkPage);
addRoute(/^.*$/, (main) => {
  main.replaceChildren(h('section', { class: 'card narrow', 'data-testid': 'not-found' },
    h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/' }, 'Go to the start page'))));
  return null;
});

render();
