#!/bin/sh
# Install Debian's headless Chromium (used by tests/test_browser.py through Playwright), and a CJK
# font so screenshots of the report show the Chinese document quotes instead of empty boxes.
# Idempotent and quiet: does nothing when both are present; needs root and apt-get.
# Never downloads a browser through Playwright.
set -eu

PACKAGES="chromium chromium-driver fonts-dejavu-core fonts-wqy-microhei"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium.sh: missing$missing and this is not root;" \
         "run: sudo apt-get install$missing" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: apt-get not found; install Chromium with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086  # word splitting of the package list is intended
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
fi
test -x /usr/bin/chromium
