// Headless browsers from Debian packages: Chromium through playwright-core, Firefox ESR through
// puppeteer-core over WebDriver BiDi. Both behind one small page interface (BrowserPage) so a
// scenario step reads the same for either. Every request a page makes is recorded, and console
// errors are kept (CSP violations show up there).
import { createRequire } from 'node:module';
import fs from 'node:fs';

const require = createRequire(import.meta.url);

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  // Grants camera/microphone and auto-accepts getDisplayMedia (a fake "screen" source).
  '--use-fake-ui-for-media-stream',
  '--auto-select-desktop-capture-source=Entire screen',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--ignore-certificate-errors',
  '--no-first-run',
  '--disable-dev-shm-usage',
  // Background tabs must keep rendering and decoding (two contexts share one browser).
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

export async function launchChromium() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (err) {
    throw new Error(`playwright-core missing: run scripts/install-npm-test-deps.sh tests/e2e (${err.message})`);
  }
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (Debian package chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 60_000, args: CHROMIUM_ARGS });
}

export async function launchFirefox() {
  let puppeteer;
  try {
    puppeteer = require('puppeteer-core');
  } catch (err) {
    throw new Error(`puppeteer-core missing: run scripts/install-npm-test-deps.sh tests/e2e (${err.message})`);
  }
  if (!fs.existsSync(FIREFOX)) throw new Error(`${FIREFOX} not found (Debian package firefox-esr)`);
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    acceptInsecureCerts: true,
    protocolTimeout: 60_000,
    timeout: 60_000,
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.peerconnection.ice.loopback': true,
      'media.autoplay.default': 0,
      'media.autoplay.blocking_policy': 0,
      'network.dns.disableIPv6': true,
    },
  });
}

// The part of a page API the scenarios use, over Playwright or Puppeteer.
export class BrowserPage {
  constructor(name, page, kind) {
    this.name = name;
    this.page = page;
    this.kind = kind;  // 'playwright' | 'puppeteer'
    this.requests = [];
    this.consoleLines = [];
    this.consoleErrors = [];
    page.on('request', (request) => this.requests.push(request.url()));
    page.on('console', (message) => {
      const type = typeof message.type === 'function' ? message.type() : message.type;
      const line = `${type}: ${message.text()}`;
      this.consoleLines.push(`${new Date().toISOString()} ${line}`);
      if (type === 'error') this.consoleErrors.push(line);
    });
    page.on('pageerror', (err) => {
      const line = `pageerror: ${err && err.message ? err.message : err}`;
      this.consoleLines.push(`${new Date().toISOString()} ${line}`);
      this.consoleErrors.push(line);
    });
  }

  static async chromium(browser, name, { viewport = { width: 1280, height: 800 }, isMobile = false } = {}) {
    const context = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, ignoreHTTPSErrors: true,
      permissions: ['camera', 'microphone'] });
    const page = await context.newPage();
    const wrapped = new BrowserPage(name, page, 'playwright');
    wrapped.context = context;
    return wrapped;
  }

  static async puppeteer(browser, name, { viewport = { width: 1280, height: 800 } } = {}) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport(viewport);
    const wrapped = new BrowserPage(name, page, 'puppeteer');
    wrapped.context = context;
    return wrapped;
  }

  get isPlaywright() {
    return this.kind === 'playwright';
  }

  async goto(url) {
    await this.page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  }

  async reload() {
    await this.page.reload({ waitUntil: 'load', timeout: 20_000 });
  }

  async waitVisible(selector, timeout = 15_000) {
    if (this.isPlaywright) await this.page.locator(selector).first().waitFor({ state: 'visible', timeout });
    else await this.page.waitForSelector(selector, { visible: true, timeout });
  }

  async click(selector, timeout = 15_000) {
    await this.waitVisible(selector, timeout);
    if (this.isPlaywright) await this.page.locator(selector).first().click({ timeout });
    else await this.page.locator(selector).setTimeout(timeout).click();
  }

  async fill(selector, value, timeout = 15_000) {
    await this.waitVisible(selector, timeout);
    if (this.isPlaywright) await this.page.locator(selector).first().fill(value, { timeout });
    else await this.page.locator(selector).setTimeout(timeout).fill(value);
  }

  // Picks the option at `index` of a <select> (device choice) and fires change.
  async selectIndex(selector, index) {
    await this.waitVisible(selector);
    return this.page.evaluate(([sel, i]) => {
      const select = document.querySelector(sel);
      if (!select || select.options.length <= i) return null;
      select.selectedIndex = i;
      select.dispatchEvent(new Event('change', { bubbles: true }));
      return select.value;
    }, [selector, index]);
  }

  async evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  // Polls fn(arg) in the page until it returns something truthy; returns that.
  async waitFor(fn, arg, timeout = 15_000, what = 'condition') {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        last = await this.page.evaluate(fn, arg);
      } catch (err) {
        // Navigation in progress (reload): try again.
        last = undefined;
        if (!/context|navigat|destroyed|Target closed|detached/i.test(String(err && err.message))) throw err;
      }
      if (last) return last;
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out after ${timeout} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async screenshot(file) {
    await this.page.screenshot({ path: file, fullPage: false });
  }

  async setViewport(viewport) {
    if (this.isPlaywright) await this.page.setViewportSize(viewport);
    else await this.page.setViewport(viewport);
  }

  async close() {
    try {
      await this.context.close();
    } catch {
      // The browser may already be gone.
    }
  }
}
