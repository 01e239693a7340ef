#!/bin/sh
# Debian's chromium for the headless-browser UI test (tests/test_ui_browser.py). Playwright drives it through
# executable_path; no browser is downloaded (`playwright install` is never run). Needs root (CI runs it with
# sudo). Idempotent: does nothing when chromium is already installed.
set -eu
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
command -v chromium
