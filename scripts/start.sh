#!/usr/bin/env bash
# Installs what is missing, builds the relay and the page, and starts Jellyfish on
# http://127.0.0.1:8080 (the relay's flags and JELLYFISH_* variables change that; see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p jellyfish-relay
bash scripts/build-web.sh
target_dir=${CARGO_TARGET_DIR:-target}
exec "$target_dir/release/jellyfish-relay" "$@"
