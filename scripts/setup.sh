#!/usr/bin/env bash
# Idempotent set-up for `npm run demo` and `npm test` on a fresh machine: installs only
# what is missing and says what it installs, and what to do where it cannot.
#   - swtpm, swtpm-tools, tpm2-tools (Debian/Ubuntu apt, as root or with sudo)
#   - btcd, the regtest node (go install, pinned release)
#   - node_modules (npm ci, when package-lock.json changed) and the TypeScript build
set -euo pipefail
cd "$(dirname "$0")/.."

BTCD_MODULE="github.com/btcsuite/btcd@v0.24.2"
say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

# --- apt packages -------------------------------------------------------------------
missing=()
command -v swtpm >/dev/null 2>&1 || missing+=(swtpm)
command -v swtpm_setup >/dev/null 2>&1 || missing+=(swtpm-tools)
# swtpm_localca (swtpm-tools) signs the software TPM's EK certificate with gnutls's certtool.
command -v certtool >/dev/null 2>&1 || missing+=(gnutls-bin)
command -v tpm2_startup >/dev/null 2>&1 || missing+=(tpm2-tools)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "could not install ${missing[*]}: run as root or with sudo, or install them by hand"
  else
    die "${missing[*]} missing and this is not a Debian/Ubuntu machine: install them with your package manager"
  fi
fi

# --- btcd -----------------------------------------------------------------------------
find_btcd() {
  if [ -n "${SWARMPAY_BTCD:-}" ] && [ -x "$SWARMPAY_BTCD" ]; then echo "$SWARMPAY_BTCD"; return 0; fi
  command -v btcd 2>/dev/null && return 0
  if command -v go >/dev/null 2>&1; then
    local bin; bin="$(go env GOBIN)"; [ -n "$bin" ] || bin="$(go env GOPATH | cut -d: -f1)/bin"
    [ -x "$bin/btcd" ] && { echo "$bin/btcd"; return 0; }
  fi
  [ -x "$HOME/go/bin/btcd" ] && { echo "$HOME/go/bin/btcd"; return 0; }
  return 1
}
if ! find_btcd >/dev/null; then
  command -v go >/dev/null 2>&1 || die "btcd is missing and Go is not installed: install Go (apt-get install golang), then run this again"
  say "installing btcd: go install $BTCD_MODULE (a minute or two, once)"
  go install "$BTCD_MODULE" || die "go install $BTCD_MODULE failed: check that the Go module proxy is reachable"
  find_btcd >/dev/null || die "btcd was built but is not where Go puts binaries; set SWARMPAY_BTCD to its path"
fi

# --- node modules ---------------------------------------------------------------------
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f node_modules/.swarmpay-lock ] || [ "$(cat node_modules/.swarmpay-lock)" != "$lock_sum" ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.swarmpay-lock
fi

# --- build ----------------------------------------------------------------------------
if [ ! -f dist/.build-stamp ] || [ -n "$(find src scripts/bundle-cli.mjs scripts/snapshot-prelude.cjs scripts/snapshot-prelude.mjs tsconfig.json package-lock.json -newer dist/.build-stamp -print -quit)" ]; then
  say "building (tsc, then the CLI's bundle)"
  npm run build --silent
  touch dist/.build-stamp
fi
