// The /check page of the browser client in a lab browser: open it, wait until it has run every
// check (section[data-testid=check][data-state=done]), and read its report
// (window.parleyCheckReport) and the verdict of every row ([data-check=ID][data-verdict=V]).
import fs from 'node:fs';
import path from 'node:path';
import { labPage } from './browsers.mjs';

// Opens ORIGIN/check in a new page of `browser`; resolves {report, rows, ms, screenshot}.
// The page is left open (the caller's scenario screenshots and closes it).
export async function runCheckPage(browser, origin, outDir, { name = 'check', timeoutMs = 60_000 } = {}) {
  const page = await labPage(browser, name);
  const began = Date.now();
  await page.goto(`${origin}/check`);
  await page.waitVisible('section[data-testid=check]', 15_000);
  // Some versions of the page wait for a click to start (camera access asks the user first).
  const start = await page.evaluate(() => {
    const section = document.querySelector('section[data-testid=check]');
    const button = section && section.dataset.state !== 'running' && section.dataset.state !== 'done'
      && section.querySelector('[data-testid=check-start], button[data-action=start]');
    if (button && !button.disabled) {
      button.click();
      return true;
    }
    return false;
  });
  const state = await page.waitFor(() => {
    const section = document.querySelector('section[data-testid=check]');
    return section && section.dataset.state === 'done' && window.parleyCheckReport ? 'done' : null;
  }, null, timeoutMs, '/check to finish (data-state=done and window.parleyCheckReport)').catch(async (err) => {
    const partial = await page.evaluate(() => {
      const section = document.querySelector('section[data-testid=check]');
      return { state: section && section.dataset.state,
        rows: [...document.querySelectorAll('[data-check]')].map((r) => `${r.dataset.check}=${r.dataset.verdict || '?'}`) };
    }).catch(() => null);
    const file = path.join(outDir, 'check-page-timeout.png');
    await page.screenshot(file).catch(() => {});
    throw new Error(`${err.message}; page state ${JSON.stringify(partial)}`);
  });
  const ms = Date.now() - began;
  const { report, rows } = await page.evaluate(() => ({
    report: window.parleyCheckReport,
    rows: Object.fromEntries([...document.querySelectorAll('section[data-testid=check] [data-check]')]
      .map((r) => [r.dataset.check, r.dataset.verdict || null])),
  }));
  fs.writeFileSync(path.join(outDir, 'check-report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const screenshot = path.join(outDir, 'check-page.png');
  await page.page.screenshot({ path: screenshot, fullPage: true });
  return { page, report, rows, ms, started: start, state };
}
