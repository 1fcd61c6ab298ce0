#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs. Usage: install-deps.sh build|test
# Only runs apt-get when something is missing, so repeated runs (and CI) cost nothing.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libssl-dev libtomlplusplus-dev libcli11-dev libexpected-dev
  libspdlog-dev libfmt-dev libidn-dev zlib1g-dev
  nlohmann-json3-dev libsqlite3-dev libsodium-dev
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev
  coturn stun-client python3 python3-aioice python3-aiortc python3-jsonschema util-linux procps
  chromium nodejs firefox-esr
  iproute2 nftables squid mitmproxy apache2-utils
)

wanted=("${build_packages[@]}")
if [[ "${1:-build}" == "test" ]]; then wanted+=("${test_packages[@]}"); fi

# npm: Debian ships it as its own package; some images carry a nodejs that bundles it.
if [[ "${1:-build}" == "test" ]] && ! command -v npm >/dev/null 2>&1; then wanted+=(npm); fi

missing=()
for package in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# The network lab's proxies (squid, mitmproxy) are run by the tests themselves inside their own
# namespaces: keep the packages from starting system services on the host while installing.
policy=/usr/sbin/policy-rc.d
added_policy=false
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  added_policy=true
fi
status=0
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || status=$?
if $added_policy; then "${sudo_cmd[@]}" rm -f "$policy"; fi
exit $status
