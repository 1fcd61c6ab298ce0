#!/usr/bin/env bash
# Installs the npm packages of the browser interop tests (tests/interop/browser: only
# playwright-core, which drives Debian's /usr/bin/chromium; no browser is downloaded).
# Runs `npm ci` only when node_modules is missing or package-lock.json changed since the
# last install, so repeated runs (and CI) cost nothing. Needs node and npm (apt nodejs npm).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$here/tests/interop/browser"
stamp="$dir/node_modules/.parley-package-lock.sha256"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-npm-test-deps: $tool not found (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ -d "$dir/node_modules/playwright-core" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "install-npm-test-deps: npm ci in tests/interop/browser" >&2
cd "$dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2
echo "$want" > "$stamp"
