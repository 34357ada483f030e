#!/usr/bin/env bash
# Installs what is missing and runs every check and test: formatting, clippy (native and wasm32),
# native unit and cluster tests, browser unit tests in headless Chromium, and the end-to-end
# scenarios with the real relay and real Chromium profiles.
# The e2e scenarios and benchmarks run in a loopback-only network namespace (scripts/isolated.sh):
# the tabs talk WebRTC to each other, and must not reach any other network.
# One e2e scenario alone:
#   (cd tests && ../scripts/isolated.sh node --test --test-name-pattern="relay restart" e2e/)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

step "setup"
bash scripts/setup.sh

step "format"
cargo fmt --all --check

step "clippy, native"
cargo clippy --release --locked --workspace --all-targets -- -D warnings
step "clippy, wasm32"
cargo clippy --release --locked -p jellyfish-peer --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy --release --locked -p jellyfish-password --target wasm32-unknown-unknown --all-targets -- -D warnings

step "docs: every module documented, no broken intra-doc links (private items included)"
# Private links are fine: these are the developers' docs (--document-private-items).
export RUSTDOCFLAGS="-D warnings -A rustdoc::private_intra_doc_links"
cargo doc --release --locked --workspace --no-deps --document-private-items
cargo doc --release --locked -p jellyfish-peer --target wasm32-unknown-unknown --no-deps --document-private-items
unset RUSTDOCFLAGS

step "native tests"
cargo test --release --locked --workspace

step "browser unit tests (wasm-bindgen-test in headless Chromium)"
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} \
  cargo test --release --locked -p jellyfish-peer --target wasm32-unknown-unknown --lib

step "build the relay and the page"
# The relay as the native tests built it: `-p jellyfish-relay` alone unifies features
# differently and rebuilt 40 crates (97 s in CI); with the workspace's targets it is a no-op.
cargo build --release --locked --workspace --all-targets
bash scripts/build-web.sh

step "end-to-end: real relay, real Chromium profiles, in a loopback-only network"
# CI runs the typed-at-once scenario for 2 rounds, not 3, and rolling churn with 4 first donors,
# not 6 (its time budget is 30 minutes); by hand, leave both unset.
(cd tests && JELLYFISH_TYPED_ROUNDS=${JELLYFISH_TYPED_ROUNDS:-2} JELLYFISH_CHURN_DONORS=${JELLYFISH_CHURN_DONORS:-4} \
  ../scripts/isolated.sh node --test --test-concurrency=1 e2e/)

step "benchmarks complete on a tiny setting (numbers are not checked; full runs are by hand)"
scripts/isolated.sh node tests/bench/accounts.mjs --runs 1
scripts/isolated.sh node tests/bench/files.mjs --sizes 1
scripts/isolated.sh node tests/bench/webrtc.mjs --mib 1 --runs 1
scripts/isolated.sh node tests/bench/pageload.mjs --runs 1
scripts/isolated.sh node tests/bench/coldstart.mjs --pushes 1 --idle-secs 1
scripts/isolated.sh node tests/bench/cluster.mjs --peers 4 --sizes 1 --lookups 3 --runs 1 --raw-mib 8 --repair-every-secs 6
# The examples were built with the native tests (same features: no second build of the peer).
cargo build --release --locked --workspace --examples
target/release/examples/simulate --steps 20 --lookups 3 --files 2 --leave 50
target/release/examples/churn --quick

step "all passed"
