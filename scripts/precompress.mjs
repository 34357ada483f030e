// Writes a brotli (.br) and a gzip (.gz) copy beside every text or wasm file under a folder,
// for the relay to serve to browsers that accept them (tower-http's precompressed ServeDir):
// compressed once at build time at the highest settings, never per request.
// Usage: node scripts/precompress.mjs www
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const COMPRESSIBLE = /\.(html|js|mjs|css|wasm|json|svg|txt|map)$/;
// Below this, a compressed copy saves less than the headers it costs.
const MIN_BYTES = 256;

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (COMPRESSIBLE.test(name)) yield path;
  }
}

const root = process.argv[2];
if (!root) throw new Error("usage: node scripts/precompress.mjs <folder>");
let plain = 0;
let brotli = 0;
let gzip = 0;
for (const path of files(root)) {
  const bytes = readFileSync(path);
  if (bytes.length < MIN_BYTES) continue;
  const br = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  const gz = gzipSync(bytes, { level: 9 });
  writeFileSync(`${path}.br`, br);
  writeFileSync(`${path}.gz`, gz);
  plain += bytes.length;
  brotli += br.length;
  gzip += gz.length;
}
console.log(`precompressed ${root}: ${plain} bytes, ${brotli} brotli, ${gzip} gzip`);
