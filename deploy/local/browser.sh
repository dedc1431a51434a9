#!/usr/bin/env bash
# Install the browser the console's end-to-end tests drive (tests/e2e): Debian's Chromium at
# /usr/bin/chromium, idempotently (a second run only checks that it is there).
#
# usage: deploy/local/browser.sh [-q]      -q: say nothing when Chromium is already installed
set -euo pipefail

CHROMIUM=/usr/bin/chromium
log() { printf '[browser] %s\n' "$*" >&2; }
die() { printf '[browser] error: %s\n' "$*" >&2; exit 1; }

if [[ -x $CHROMIUM ]]; then
  [[ ${1:-} == -q ]] || log "chromium: $("$CHROMIUM" --version 2>/dev/null)"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || die "chromium is missing and installing it needs root: run 'sudo apt-get install -y chromium'"
log "installing Debian package: chromium"
{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2
[[ -x $CHROMIUM ]] || die "the chromium package is installed but $CHROMIUM is missing"
log "chromium: $("$CHROMIUM" --version 2>/dev/null)"
