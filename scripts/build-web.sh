#!/usr/bin/env bash
# Assembles www/ (the site the relay serves): the page from web/ plus the wasm peer, built and
# bound as wasm-pack.toml says. Usage: scripts/build-web.sh [--wasm-opt]
set -euo pipefail
cd "$(dirname "$0")/.."

setting() { sed -n "s/^$1[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"#]*\)\"\{0,1\}.*/\1/p" wasm-pack.toml | head -n 1 | xargs; }
crate=$(setting crate); profile=$(setting profile); target=$(setting target)
out_dir=$(setting out_dir); wasm_opt=$(setting wasm_opt)
[ "${1:-}" = "--wasm-opt" ] && wasm_opt=true
target_dir=${CARGO_TARGET_DIR:-target}

cargo build --locked --target wasm32-unknown-unknown --profile "$profile" -p "$crate"
wasm="$target_dir/wasm32-unknown-unknown/$profile/${crate//-/_}.wasm"

find www -mindepth 1 ! -name .gitignore -exec rm -rf {} +
wasm-bindgen --target "$target" --out-dir "$out_dir" "$wasm"
if [ "$wasm_opt" = true ]; then
  bound="$out_dir/${crate//-/_}_bg.wasm"
  npx --prefix tests --no-install wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    "$bound" -o "$bound.opt" && mv "$bound.opt" "$bound"
fi
cp -r web/. www/
bound="$out_dir/${crate//-/_}_bg.wasm"
echo "www/ assembled: wasm $(stat -c %s "$bound") bytes, $(gzip -9 -c "$bound" | wc -c) gzipped"
