#!/usr/bin/env bash
# Installs what Jellyfish needs and is missing, from package registries only (no binary
# downloads): Chromium and ChromeDriver from apt, the wasm target, wasm-bindgen-cli at exactly
# the version in Cargo.lock, and the test tools from npm. Safe to run again; skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "setup: installing chromium and chromium-driver from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must equal the wasm-bindgen crate in Cargo.lock, or the bound module will not load.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "setup: installing wasm-bindgen-cli $want (found '${have:-none}'); takes about 3 minutes"
  cargo install wasm-bindgen-cli --version "$want" --locked
fi

if [ ! -d tests/node_modules/playwright-core ] || [ tests/package-lock.json -nt tests/node_modules ]; then
  echo "setup: installing the test tools from npm"
  (cd tests && npm ci --no-audit --no-fund)
fi
