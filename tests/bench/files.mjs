// Benchmark: upload and download throughput of files in real Chromium tabs, with each tab's
// peak memory, beside baselines measured in the same run: the same bytes over the same
// connections with none of Jellyfish's work (the peer's transport probes: same block size, same
// copies, same blocks in flight), raw WebCrypto AES-GCM and raw IndexedDB writes.
// Prints a table and writes JSON.
//   scripts/isolated.sh node tests/bench/files.mjs [--sizes 1,16,128] [--holders 3] [--out file.json] [--log timing,kad]
import { join } from "node:path";
import { ROOT, Relay, joined, openPeer } from "../e2e/harness.mjs";
import {
  AES_GCM_AND_INDEXEDDB_MS, DOWNLOAD, MIB, PASSWORD, PROBE_PULL, PROBE_PUSH, option, rendererPeakMiB, writeResults,
} from "./common.mjs";

const SIZES = option("sizes", "1,16,128").split(",").map(Number);
const HOLDERS = Number(option("holders", 3));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "files.json"));
// --log timing,kad: what each tab logs (`?log=...`: the peer's timings, Kademlia's debug
// events, or all the peer's debug events); with JELLYFISH_PAGE_LOG=1 every tab's console goes
// to stderr, stamped with the wall clock.
const QUERY = (option("log", "") || "").split(",").filter(Boolean).map((l, i) => `${i ? "&" : "?"}log=${l}`).join("");

const UPLOAD = async ([size, name]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = i & 0xff;
  const blob = new Blob([bytes]);
  const t = performance.now();
  const report = await window.jellyfish.upload(blob, name);
  return { ms: performance.now() - t, id: report.file.id, copies: report.file.copies };
};

async function main() {
  const relay = await Relay.start({ extraArgs: ["--allow-probes"] });
  const browsers = [];
  try {
    const peers = [];
    for (const name of ["up", "down", ...Array.from({ length: HOLDERS }, (_, i) => `holder${i}`)]) {
      peers.push(await openPeer(relay, `bench-${name}`, browsers, { query: QUERY }));
    }
    for (const { page } of peers) await joined(page, 2);
    const [up, down] = peers;
    const holderIds = [];
    for (const { page } of peers.slice(2)) holderIds.push(await page.evaluate(() => window.jellyfish.peer_id));
    const user = `bench-${Date.now().toString(36)}`;
    await up.page.evaluate(([u, p]) => window.jellyfish.sign_up(u, p), [user, PASSWORD]);
    await down.page.evaluate(([u, p]) => window.jellyfish.log_in(u, p), [user, PASSWORD]);

    const rows = [];
    for (const mib of SIZES) {
      const size = mib * MIB;
      const upload = await up.page.evaluate(UPLOAD, [size, `file-${mib}.bin`]);
      const download = await down.page.evaluate(DOWNLOAD, upload.id);
      if (download.size !== size) throw new Error(`downloaded ${download.size} of ${size} bytes`);
      const base = await up.page.evaluate(AES_GCM_AND_INDEXEDDB_MS, size);
      const pushMs = await up.page.evaluate(PROBE_PUSH, [holderIds.slice(0, upload.copies), size]);
      const pullMs = await down.page.evaluate(PROBE_PULL, [holderIds.slice(0, upload.copies), size]);
      const rate = (ms) => mib / (ms / 1000);
      rows.push({
        size_mib: mib,
        copies: upload.copies,
        upload_mib_s: rate(upload.ms),
        download_mib_s: rate(download.ms),
        download_first_block_ms: download.first_ms,
        baseline_transport_up_mib_s: rate(pushMs),
        baseline_transport_down_mib_s: rate(pullMs),
        baseline_aes_gcm_mib_s: rate(base.aes_ms),
        baseline_indexeddb_mib_s: rate(base.idb_ms),
        peak_rss_mib_uploader: rendererPeakMiB(up.browser),
        peak_rss_mib_downloader: rendererPeakMiB(down.browser),
        relay: await relay.json("/health"),
      });
    }
    console.log(`\nFiles benchmark: ${HOLDERS} holders, 3 copies per block, relayed circuits`);
    console.log("| MiB | upload MiB/s (transport alone) | download MiB/s (transport alone) | first block ms | AES-GCM MiB/s | IndexedDB MiB/s | peak RSS up/down MiB |");
    console.log("|---:|---:|---:|---:|---:|---:|---:|");
    const pair = (ours, base) => `${ours.toFixed(2)} (${base.toFixed(2)}, ${(100 * ours / base).toFixed(0)} %)`;
    for (const r of rows) {
      console.log(`| ${r.size_mib} | ${pair(r.upload_mib_s, r.baseline_transport_up_mib_s)} | ${pair(r.download_mib_s, r.baseline_transport_down_mib_s)} | ${r.download_first_block_ms?.toFixed(0)} | ${r.baseline_aes_gcm_mib_s.toFixed(0)} | ${r.baseline_indexeddb_mib_s.toFixed(0)} | ${r.peak_rss_mib_uploader.toFixed(0)} / ${r.peak_rss_mib_downloader.toFixed(0)} |`);
    }
    const last = rows.at(-1);
    console.log(`"transport alone": the same bytes to the same holders over the same relayed connections, ` +
      `same block size, copies and blocks in flight, with no sealing, signing, DHT or IndexedDB.`);
    console.log(`upload / raw AES-GCM: ${(last.upload_mib_s / last.baseline_aes_gcm_mib_s).toFixed(3)}; ` +
      `relay carried ${(last.relay.bytes_out / MIB).toFixed(0)} MiB out in all`);
    writeResults(OUT, { holders: HOLDERS, rows });
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
