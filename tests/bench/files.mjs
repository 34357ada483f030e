// Benchmark: upload and download throughput of files in real Chromium tabs, with each tab's
// peak memory, beside baselines measured in the same run: the same bytes over the same relayed
// connections with none of Jellyfish's work (the peer's transport probes: same block size, same
// copies, same blocks in flight), raw WebCrypto AES-GCM and raw IndexedDB writes.
// Prints a table and writes JSON.
//   node tests/bench/files.mjs [--sizes 1,16,128] [--holders 3] [--out file.json]
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Browser, Relay, waitFor, waitReachable, ROOT } from "../e2e/harness.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const SIZES = option("sizes", "1,16,128").split(",").map(Number);
const HOLDERS = Number(option("holders", 3));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "files.json"));
const MIB = 1024 * 1024;

/** Peak resident memory (VmHWM) of the renderer processes under a Chromium, in MiB. */
function rendererPeakMiB(browser) {
  const children = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(Number(pid), ppid);
    } catch { /* gone */ }
  }
  const descendants = new Set([browser.process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of children) {
      if (descendants.has(ppid) && !descendants.has(pid)) { descendants.add(pid); grew = true; }
    }
  }
  let peak = 0;
  for (const pid of descendants) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) continue;
      const hwm = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch { /* gone */ }
  }
  return peak;
}

const UPLOAD = async ([size, name]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) bytes[i] = i & 0xff;
  const blob = new Blob([bytes]);
  const t = performance.now();
  const report = await window.jellyfish.upload(blob, name);
  return { ms: performance.now() - t, id: report.file.id, copies: report.file.copies };
};

const DOWNLOAD = async (id) => {
  const t = performance.now();
  let first = null;
  const blob = await window.jellyfish.download(id, () => { if (first === null) first = performance.now() - t; });
  return { ms: performance.now() - t, first_ms: first, size: blob.size };
};

const PROBE_PUSH = async ([peers, size]) => {
  const t = performance.now();
  await window.jellyfish.probe_push(peers, size);
  return performance.now() - t;
};

const PROBE_PULL = async ([peer, size]) => {
  const t = performance.now();
  await window.jellyfish.probe_pull(peer, size);
  return performance.now() - t;
};

const BASELINES = async (size) => {
  const chunk = 1024 * 1024;
  const data = new Uint8Array(Math.min(size, chunk));
  const key = await crypto.subtle.importKey("raw", new Uint8Array(32), "AES-GCM", false, ["encrypt"]);
  let t = performance.now();
  for (let done = 0; done < size; done += chunk) {
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: crypto.getRandomValues(new Uint8Array(12)) }, key, data);
  }
  const aes = performance.now() - t;
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open("bench-baseline", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("chunks");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  t = performance.now();
  for (let done = 0, i = 0; done < size; done += chunk, i++) {
    await new Promise((resolve, reject) => {
      const tx = db.transaction("chunks", "readwrite");
      tx.objectStore("chunks").put(data.slice(), i);
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  }
  const idb = performance.now() - t;
  db.close();
  await new Promise((resolve) => { const del = indexedDB.deleteDatabase("bench-baseline"); del.onsuccess = del.onerror = resolve; });
  return { aes_ms: aes, idb_ms: idb };
};

async function main() {
  const relay = await Relay.start();
  const browsers = [];
  try {
    const peers = [];
    for (const name of ["up", "down", ...Array.from({ length: HOLDERS }, (_, i) => `holder${i}`)]) {
      const browser = await Browser.launch(`bench-${name}`);
      browsers.push(browser);
      const page = await browser.open(relay.url);
      await waitReachable(page);
      peers.push({ browser, page });
    }
    for (const { page } of peers) {
      await waitFor("peers in the DHT", () => page.evaluate(() => window.jellyfish.discover()).then((f) => f.length >= 2),
        { timeout: 45000, interval: 500 });
    }
    const [up, down] = peers;
    const holderIds = [];
    for (const { page } of peers.slice(2)) holderIds.push(await page.evaluate(() => window.jellyfish.peer_id));
    const password = "violet tractor sings under seven moons";
    const user = `bench-${Date.now().toString(36)}`;
    await up.page.evaluate(([u, p]) => window.jellyfish.sign_up(u, p), [user, password]);
    await down.page.evaluate(([u, p]) => window.jellyfish.log_in(u, p), [user, password]);

    const rows = [];
    for (const mib of SIZES) {
      const size = mib * MIB;
      const upload = await up.page.evaluate(UPLOAD, [size, `file-${mib}.bin`]);
      const download = await down.page.evaluate(DOWNLOAD, upload.id);
      if (download.size !== size) throw new Error(`downloaded ${download.size} of ${size} bytes`);
      const base = await up.page.evaluate(BASELINES, size);
      const pushMs = await up.page.evaluate(PROBE_PUSH, [holderIds.slice(0, upload.copies), size]);
      const pullMs = await down.page.evaluate(PROBE_PULL, [holderIds[0], size]);
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
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify({ holders: HOLDERS, rows }, null, 2));
    console.log(`JSON: ${OUT}`);
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
