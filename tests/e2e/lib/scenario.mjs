// A scenario is a list of dependent steps: each runs with a timeout, is reported as PASS/FAIL,
// and leaves a screenshot of every open page in the output folder. After the first failure
// the remaining steps are reported as skipped (they depend on it). The run closes with the
// line "N passed, N failed" and exit status 0 only when nothing failed.
import fs from 'node:fs';
import path from 'node:path';

export function outputDir(testName) {
  const base = process.env.PARLEY_E2E_OUT || path.join(process.cwd(), 'output');
  const dir = path.join(base, testName);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

export class Scenario {
  constructor(name, outDir) {
    this.name = name;
    this.outDir = outDir;
    this.pages = [];
    this.passed = 0;
    this.failed = 0;
    this.skipped = 0;
    this.broken = false;
    this.index = 0;
    this.started = Date.now();
  }

  addPage(page) {
    this.pages.push(page);
  }

  removePage(page) {
    this.pages = this.pages.filter((p) => p !== page);
  }

  async step(title, fn, { timeoutMs = 30_000 } = {}) {
    this.index += 1;
    const label = `${String(this.index).padStart(2, '0')} ${title}`;
    if (this.broken) {
      this.skipped += 1;
      console.log(`SKIP ${label}`);
      return undefined;
    }
    const began = Date.now();
    let timer;
    try {
      const result = await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`step timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      this.passed += 1;
      console.log(`PASS ${label} (${Date.now() - began} ms)${result && typeof result === 'string' ? `: ${result}` : ''}`);
      await this.screenshots(label);
      return result;
    } catch (err) {
      clearTimeout(timer);
      this.failed += 1;
      this.broken = true;
      console.log(`FAIL ${label} (${Date.now() - began} ms): ${err && err.stack ? err.stack : err}`);
      await this.screenshots(`${label} FAILED`);
      return undefined;
    }
  }

  async screenshots(label) {
    for (const page of this.pages) {
      const file = path.join(this.outDir, `${slug(label)}-${page.name}.png`);
      try {
        await Promise.race([page.screenshot(file), new Promise((r) => setTimeout(r, 10_000))]);
      } catch (err) {
        console.log(`  (no screenshot of ${page.name}: ${err.message.split('\n')[0]})`);
      }
    }
  }

  // Console logs of every page, for the post-mortem.
  writeLogs() {
    for (const page of this.pages) {
      fs.writeFileSync(path.join(this.outDir, `console-${page.name}.log`), page.consoleLines.join('\n') + '\n');
    }
  }

  finish() {
    console.log(`${this.name}: ${((Date.now() - this.started) / 1000).toFixed(1)} s, output in ${this.outDir}`);
    console.log(`${this.passed} passed, ${this.failed} failed${this.skipped ? `, ${this.skipped} skipped` : ''}`);
    return this.failed || this.skipped ? 1 : 0;
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// Exits the process if the whole test hangs somewhere a step timeout cannot reach.
export function watchdog(ms) {
  const timer = setTimeout(() => {
    console.log(`FAIL watchdog: the test did not finish within ${ms} ms`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }, ms);
  timer.unref();
}
