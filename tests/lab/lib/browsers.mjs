// Headless Chromium on a lab host: playwright-core launches a generated wrapper
// (`exec ip netns exec NS /usr/bin/chromium "$@"`), so the browser's whole network stack lives
// in that namespace while playwright drives it over a pipe. The flags are those of
// tests/e2e/lib/browsers.mjs, except that certificate errors are not ignored wholesale: each
// browser trusts exactly the public keys listed (the server's, standing in for a CA-issued
// certificate, and on the corporate client the inspection CA that IT installed).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import { BrowserPage, CHROMIUM } from '../../e2e/lib/browsers.mjs';

// playwright-core is installed in tests/e2e/node_modules (scripts/install-npm-test-deps.sh).
const require = createRequire(new URL('../../e2e/lib/browsers.mjs', import.meta.url));

const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--auto-select-desktop-capture-source=Entire screen',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
  // No DNS in the lab (names come from the namespace's hosts file); no QUIC probing.
  '--disable-quic',
];

// host: the topology role the browser runs on; trust: SPKI hashes (base64 SHA-256);
// proxy: {server, username?, password?} or null.
export async function launchLabChromium(topology, host, { trust = [], proxy = null, extraArgs = [] } = {}) {
  const { chromium } = require('playwright-core');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (Debian package chromium)`);
  const args = [...CHROMIUM_ARGS, ...extraArgs];
  if (trust.length) args.push(`--ignore-certificate-errors-spki-list=${trust.join(',')}`);
  const options = {
    executablePath: topology.wrapper(host, CHROMIUM),
    headless: true,
    timeout: 60_000,
    args,
  };
  if (proxy) options.proxy = proxy;
  return chromium.launch(options);
}

// A page in its own context, with camera and microphone granted; HTTPS errors are NOT ignored
// (the SPKI list decides).
export async function labPage(browser, name, { httpCredentials } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 },
    permissions: ['camera', 'microphone'], httpCredentials });
  const page = await context.newPage();
  const wrapped = new BrowserPage(name, page, 'playwright');
  wrapped.context = context;
  return wrapped;
}
