#!/usr/bin/env bash
# Installs the npm packages of a browser test folder. Default: tests/interop/browser (only
# playwright-core, which drives Debian's /usr/bin/chromium); also tests/e2e (playwright-core and
# puppeteer-core, which drive Debian's chromium and firefox-esr). No browser is downloaded.
# Runs `npm ci` only when node_modules is missing or package-lock.json changed since the last
# install, so repeated runs (and CI) cost nothing. Needs node and npm (apt nodejs npm).
#
#   bash scripts/install-npm-test-deps.sh [DIR]    DIR relative to the repository or absolute
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target="${1:-tests/interop/browser}"
if [[ "$target" = /* ]]; then dir="$target"; else dir="$here/$target"; fi
if [[ ! -f "$dir/package-lock.json" ]]; then
  echo "install-npm-test-deps: $dir/package-lock.json not found" >&2
  exit 1
fi
stamp="$dir/node_modules/.parley-package-lock.sha256"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-npm-test-deps: $tool not found (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "install-npm-test-deps: npm ci in ${dir#"$here"/}" >&2
cd "$dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund >&2
echo "$want" > "$stamp"
