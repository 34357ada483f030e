#!/usr/bin/env bash
# Assembles www/ (the site the relay serves): the page from web/ plus the wasm peer, built and
# bound as wasm-pack.toml says. Usage: scripts/build-web.sh [--wasm-opt] [--names]
# --names keeps the modules' function names, for profiling (`tests/bench/webrtc.mjs --profile`).
set -euo pipefail
cd "$(dirname "$0")/.."

setting() { sed -n "s/^$1[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"#]*\)\"\{0,1\}.*/\1/p" wasm-pack.toml | head -n 1 | xargs; }
crate=$(setting crate); estimator=$(setting estimator_crate); profile=$(setting profile); target=$(setting target)
out_dir=$(setting out_dir); wasm_opt=$(setting wasm_opt)
strip_names=(--remove-name-section)
for arg in "$@"; do
  case "$arg" in
    --wasm-opt) wasm_opt=true ;;
    --names) strip_names=() ;;
    *) echo "build-web: unknown option $arg" >&2; exit 2 ;;
  esac
done
target_dir=${CARGO_TARGET_DIR:-target}

# Two builds, not one: built together, the estimator's crate would have its estimator feature
# on in the peer's module too (cargo unifies features within one build).
cargo build --locked --target wasm32-unknown-unknown --profile "$profile" -p "$crate"
cargo build --locked --target wasm32-unknown-unknown --profile "$profile" -p "$estimator"
wasm="$target_dir/wasm32-unknown-unknown/$profile/${crate//-/_}.wasm"
estimator_wasm="$target_dir/wasm32-unknown-unknown/$profile/${estimator//-/_}.wasm"

find www -mindepth 1 ! -name .gitignore -exec rm -rf {} +
# No name section: function names are a fifth of the module and serve only debuggers.
for module in "$wasm" "$estimator_wasm"; do
  wasm-bindgen --target "$target" "${strip_names[@]}" --remove-producers-section --out-dir "$out_dir" "$module"
done
if [ "$wasm_opt" = true ]; then
  for bound in "$out_dir"/*_bg.wasm; do
    npx --prefix tests --no-install wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      "$bound" -o "$bound.opt" && mv "$bound.opt" "$bound"
  done
fi
cp -r web/. www/
# The module's folder is named by a hash of what is in it, so the relay can let browsers keep
# it for good (Cache-Control: immutable) and a new build is a new name; the page (never
# cached without asking) names it, and asks for the wasm early (link rel=preload).
hash=$(find "$out_dir" -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
pkg="pkg-$hash"
mv "$out_dir" "www/$pkg"
sed -i "s#\./pkg/#./$pkg/#g" www/app.js
sed -i "s#\"pkg/#\"$pkg/#g" www/index.html
grep -q "$pkg/" www/app.js && grep -q "$pkg/" www/index.html || {
  echo "build-web: www/app.js or www/index.html does not name the module's folder" >&2
  exit 1
}
node scripts/precompress.mjs www
bound="www/$pkg/${crate//-/_}_bg.wasm"
for bound in "$bound" "www/$pkg/${estimator//-/_}_bg.wasm"; do
  echo "www/ assembled ($pkg): $(basename "$bound") $(stat -c %s "$bound") bytes, $(stat -c %s "$bound.br") brotli, $(stat -c %s "$bound.gz") gzipped"
done
