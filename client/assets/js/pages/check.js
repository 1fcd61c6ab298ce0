// `/check`: the connection check a customer (or their IT) runs before a meeting, and the page
// the meeting links to when it cannot connect. It runs the browser's network checks on load
// (netcheck.js: WebSocket, STUN, TURN per transport, a relayed test call for bandwidth, camera,
// microphone, codecs), shows each verdict as it arrives, lets the server grade the results with
// the rules of `parley netcheck` (docs/netcheck.md) and offers the report as a JSON download.
//
// Test hooks (the e2e test and the network lab rely on them): the section has
// data-testid="check" and data-state running|done; every row has data-check=<id> and
// data-verdict=<verdict>; window.parleyCheckReport is the graded report once done.
import { h } from '../dom.js';
import { CHECKS, buildReport, gradeReport, runChecks } from '../netcheck.js';
import { reportCaught } from '../report.js';

const VERDICT_TEXT = {
  pending: 'Waiting',
  running: 'Checking…',
  pass: 'Passed',
  warn: 'Warning',
  fail: 'Failed',
  skipped: 'Skipped',
};
const VERDICT_MARK = { pending: '…', running: '…', pass: '✓', warn: '!', fail: '✕', skipped: '–' };

function formatDuration(ms) {
  if (typeof ms !== 'number') return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

// One check's row: verdict, title, time, summary, and the technical facts for IT folded away.
function checkRow({ id, title }) {
  const mark = h('span', { class: 'check-mark', 'aria-hidden': 'true' });
  const verdict = h('span', { class: 'check-verdict' });
  const time = h('span', { class: 'check-time' });
  const summary = h('p', { class: 'check-summary' });
  const facts = h('dl', { class: 'check-facts' });
  const more = h('details', { class: 'check-more', hidden: true }, h('summary', {}, 'Details for IT'), facts);
  const el = h('li', { class: 'check-row', 'data-check': id, 'data-verdict': 'pending' },
    h('div', { class: 'check-head' }, mark, h('span', { class: 'check-title' }, title),
      h('span', { class: 'check-status' }, verdict, time)),
    summary, more);
  const set = (state, result = null) => {
    el.dataset.verdict = state;
    mark.textContent = VERDICT_MARK[state] || '';
    verdict.textContent = VERDICT_TEXT[state] || state;
    time.textContent = result ? formatDuration(result.durationMs) : '';
    summary.textContent = result ? result.summary : state === 'running' ? 'Checking…' : '';
    facts.replaceChildren();
    if (!result) {
      more.hidden = true;
      return;
    }
    const fact = (name, value) => {
      if (value === null || value === undefined || value === '') return;
      facts.append(h('dt', {}, name), h('dd', {}, typeof value === 'string' ? value : JSON.stringify(value)));
    };
    fact('Tried', result.target);
    fact('Failure', result.failure);
    for (const [key, value] of Object.entries(result.details || {})) fact(key, value);
    more.hidden = facts.childElementCount === 0;
    if (!more.hidden) facts.prepend(h('dt', {}, 'Check'), h('dd', {}, id));
  };
  set('pending');
  return { el, set };
}

export function checkPage(main) {
  const rows = new Map(CHECKS.map((check) => [check.id, checkRow(check)]));
  const progress = h('p', { class: 'check-progress', 'data-testid': 'check-progress' });
  const gradeTitle = h('h2', { class: 'check-grade-title', 'data-testid': 'check-grade' });
  const headline = h('p', { class: 'check-headline', 'data-testid': 'check-headline' });
  const remedyList = h('ul', { class: 'check-remedies', 'data-testid': 'check-remedies' });
  const remediesBox = h('div', { hidden: true },
    h('h3', { class: 'check-remedies-title' }, 'What your IT department can change'), remedyList);
  const gradeBox = h('div', { class: 'check-grade', role: 'status', 'aria-live': 'polite', hidden: true },
    gradeTitle, headline, remediesBox);
  const preview = h('video', { class: 'check-preview', autoplay: true, playsinline: true, 'aria-label': 'Camera preview' });
  preview.muted = true;
  const previewBox = h('figure', { class: 'check-preview-box', hidden: true },
    preview, h('figcaption', { class: 'hint' }, 'Your camera, as others will see you.'));
  const again = h('button', { type: 'button', class: 'primary', 'data-testid': 'check-again', disabled: true }, 'Run again');
  const download = h('a', {
    class: 'button', 'data-testid': 'check-download', href: '#', download: 'parley-check.json', hidden: true,
  }, 'Download report');
  const section = h('section', { class: 'card check-page', 'data-testid': 'check', 'data-state': 'running', 'aria-labelledby': 'check-heading' },
    h('h1', { id: 'check-heading' }, 'Connection check'),
    h('p', {}, 'This page tests whether video meetings work from this device and this network: the connection '
      + 'to the server, the ways video can travel, the bandwidth, your camera and microphone. It takes about '
      + '20 seconds. Your browser may ask to use the camera and microphone: please allow it.'),
    gradeBox,
    progress,
    h('div', { class: 'check-body' },
      h('ol', { class: 'check-list', 'aria-live': 'polite', 'aria-label': 'Checks' }, [...rows.values()].map((r) => r.el)),
      previewBox),
    h('div', { class: 'button-row check-actions' }, again, download,
      h('a', { class: 'button secondary', href: '/network-requirements' }, 'Network requirements for IT')),
    h('p', { class: 'hint' }, 'If a check fails, send the downloaded report to your advisor or IT department: it '
      + 'says exactly what to open.'));
  main.replaceChildren(section);

  let runNumber = 0;
  let cleanups = [];
  let blobUrl = null;
  const cleanUp = () => {
    for (const fn of cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // Already closed.
      }
    }
    preview.srcObject = null;
  };

  const showProgress = () => {
    const done = [...rows.values()].filter((r) => !['pending', 'running'].includes(r.el.dataset.verdict)).length;
    progress.textContent = done < rows.size ? `Checking… ${done} of ${rows.size} done` : 'All checks done.';
  };

  const offerDownload = (report) => {
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = URL.createObjectURL(new Blob([`${JSON.stringify(report, null, 2)}\n`], { type: 'application/json' }));
    download.href = blobUrl;
    download.download = `parley-check-${report.startedAt.replace(/[:.]/g, '-')}.json`;
    download.hidden = false;
  };

  async function run() {
    const mine = ++runNumber;
    const current = () => mine === runNumber;
    cleanUp();
    window.parleyCheckReport = null;
    section.dataset.state = 'running';
    again.disabled = true;
    download.hidden = true;
    gradeBox.hidden = true;
    previewBox.hidden = true;
    for (const row of rows.values()) row.set('pending');
    showProgress();
    const startedAt = new Date().toISOString();
    const began = performance.now();
    let checks;
    try {
      checks = await runChecks({
        track: (fn) => cleanups.push(fn),
        onStart: (id) => { if (current()) rows.get(id).set('running'); },
        onResult: (id, result) => {
          if (!current()) return;
          rows.get(id).set(result.verdict, result);
          showProgress();
        },
        onStream: (stream) => {
          if (!current()) return;
          preview.srcObject = stream;
          previewBox.hidden = false;
          preview.play().catch(() => {});
        },
      });
    } catch (err) {
      reportCaught('check run', err);
      if (!current()) return;
      progress.textContent = `The check stopped: ${err && err.message ? err.message : err}`;
      section.dataset.state = 'done';
      again.disabled = false;
      return;
    }
    if (!current()) return;
    const report = buildReport({ startedAt, durationMs: Math.round(performance.now() - began), checks });
    progress.textContent = 'All checks done. Grading…';
    try {
      Object.assign(report, await gradeReport(report));
      gradeBox.dataset.grade = report.grade;
      gradeTitle.textContent = report.gradeTitle;
      headline.textContent = report.headline;
      remedyList.replaceChildren(...report.remedies.map((text) => h('li', {}, text)));
      remediesBox.hidden = report.remedies.length === 0;
    } catch (err) {
      if (!current()) return;
      gradeBox.dataset.grade = 'unknown';
      gradeTitle.textContent = 'Not graded';
      headline.textContent = `The server could not grade the results (${err && err.message ? err.message : err}). `
        + 'The results below and the report still say what works.';
      remediesBox.hidden = true;
    }
    if (!current()) return;
    progress.textContent = 'All checks done.';
    gradeBox.hidden = false;
    offerDownload(report);
    window.parleyCheckReport = report;
    section.dataset.state = 'done';
    again.disabled = false;
  }

  again.addEventListener('click', () => { run(); });
  run();

  return {
    dispose() {
      runNumber += 1;
      cleanUp();
      if (blobUrl) URL.revokeObjectURL(blobUrl);
    },
  };
}
