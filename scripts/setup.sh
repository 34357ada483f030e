#!/usr/bin/env bash
# Installs what Jellyfish needs and is missing, from package registries only (no binary
# downloads): Chromium and ChromeDriver from apt, the wasm target, wasm-bindgen-cli at exactly
# the version in Cargo.lock, and the test tools from npm. Safe to run again; skips what is there.
# On a fresh machine apt and npm (mostly waiting on downloads) run in the background while
# wasm-bindgen-cli compiles (about 3 minutes on two cores); the script waits for both.
set -euo pipefail
cd "$(dirname "$0")/.."

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
background=()
# Runs "$@" in the background, its output kept in a log printed when it is waited for.
behind() {
  local name=$1
  shift
  "$@" > "$logs/$name" 2>&1 &
  background+=("$name:$!")
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
}
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "setup: installing chromium and chromium-driver from apt (in the background)"
  behind apt apt_install
fi

if [ ! -d tests/node_modules/playwright-core ] || [ tests/package-lock.json -nt tests/node_modules ]; then
  echo "setup: installing the test tools from npm (in the background)"
  behind npm bash -c "cd tests && npm ci --no-audit --no-fund"
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

failed=0
for job in "${background[@]}"; do
  name=${job%%:*}
  status=0
  wait "${job##*:}" || status=$?
  cat "$logs/$name"
  if [ "$status" != 0 ]; then
    echo "setup: $name failed (exit $status)" >&2
    failed=1
  fi
done
exit "$failed"
