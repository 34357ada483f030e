// What the benchmarks share: command-line options, statistics, the tabs' peak memory, the
// results file, and the baselines that run in a page (functions handed to page.evaluate, so
// each is self-contained: it cannot see this module's other names).
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export const MIB = 1024 * 1024;
export const PASSWORD = "violet tractor sings under seven moons";

/** The value after `--name` on the command line, or `fallback`. */
export function option(name, fallback) {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
}

export const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
export const median = (values) => quantile(values, 0.5);
export const summary = (values) => ({ p50: quantile(values, 0.5), p95: quantile(values, 0.95), runs: values.length });

/** Every process under `pid` (itself included), from /proc's parent links. */
function descendantsOf(pid) {
  const children = new Map();
  for (const p of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(Number(p), ppid);
    } catch { /* gone */ }
  }
  const descendants = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, ppid] of children) {
      if (descendants.has(ppid) && !descendants.has(p)) { descendants.add(p); grew = true; }
    }
  }
  return descendants;
}

/** Peak resident memory (VmHWM) of the renderer processes under a Chromium, in MiB. */
export function rendererPeakMiB(browser) {
  let peak = 0;
  for (const pid of descendantsOf(browser.process.pid)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) continue;
      const hwm = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch { /* gone */ }
  }
  return peak;
}

/**
 * UDP datagrams the kernel dropped so far because a socket's receive buffer was full
 * (`RcvbufErrors` in /proc/net/snmp), for the whole network namespace: run in
 * `scripts/isolated.sh`, that is the benchmark's own tabs and relay. Chromium asks for a
 * 64 KiB receive buffer on its WebRTC sockets (128 KiB as the kernel counts, `ss -uam`); a
 * browser whose network thread waits for one of the two cores drops what arrives meanwhile,
 * and SCTP then resends (after at least 400 ms when the lost packet was a transfer's last).
 */
export function udpReceiveDrops() {
  const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp:"));
  const [names = [], values = []] = lines.map((l) => l.trim().split(/\s+/).slice(1));
  const at = names.indexOf("RcvbufErrors");
  return at < 0 ? null : Number(values[at]);
}

// /proc counts CPU time in clock ticks of 1/100 s (USER_HZ on Linux).
const TICKS = 100;

/** What a Chromium process is, from its command line: its renderer, its GPU, a utility's sub-type. */
function processKind(pid) {
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  const type = cmdline.match(/--type=([a-z-]+)/)?.[1];
  if (!type) return "browser";
  if (type === "utility") return cmdline.match(/--utility-sub-type=([a-z]+)/)?.[1] ?? "utility";
  return type;
}

/**
 * CPU seconds used so far: by the whole machine (every core, every process: /proc/stat) and by
 * each of `browsers`, per kind of process (its renderer, where the tab's JS, wasm and WebRTC
 * run; its browser process, where IndexedDB is kept; GPU; network). Two readings subtract
 * with `cpuSpent`: where an operation's CPU went, and whether the cores were the bound.
 */
export function cpuReading(browsers) {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + fields[4];
  const all = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const perBrowser = browsers.map((browser) => {
    const kinds = {};
    for (const pid of descendantsOf(browser.process.pid)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const kind = processKind(pid);
        kinds[kind] = (kinds[kind] ?? 0) + (Number(after[11]) + Number(after[12])) / TICKS;
      } catch { /* gone */ }
    }
    return kinds;
  });
  return { at: Date.now(), busy: (all - idle) / TICKS, browsers: perBrowser };
}

/** What was spent between two `cpuReading`s: wall and busy seconds, each browser's by kind. */
export function cpuSpent(before, after) {
  return {
    wall_s: (after.at - before.at) / 1000,
    busy_s: after.busy - before.busy,
    browsers_s: after.browsers.map((kinds, i) => Object.fromEntries(
      Object.entries(kinds).map(([kind, s]) => [kind, s - (before.browsers[i][kind] ?? 0)]))),
  };
}

/**
 * Runs `work` while Chromium's sampling profiler watches each of `pages` (their main threads:
 * JS and wasm); returns each page's profile as self time per function. Build the site with
 * `scripts/build-web.sh --names` to see the peer's own function names.
 */
let profilesWritten = 0;
export async function profiled(pages, work) {
  const sessions = [];
  for (const page of pages) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
    await cdp.send("Profiler.start");
    sessions.push(cdp);
  }
  const result = await work();
  const selfTimes = [];
  for (const cdp of sessions) {
    const { profile } = await cdp.send("Profiler.stop");
    await cdp.detach();
    // JF_CPU_PROFILE_DIR: each profile whole, to open in Chromium's DevTools (Performance).
    if (process.env.JF_CPU_PROFILE_DIR) {
      profilesWritten += 1;
      writeFileSync(`${process.env.JF_CPU_PROFILE_DIR}/${profilesWritten}-tab${selfTimes.length}.cpuprofile`, JSON.stringify(profile));
    }
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map();
    profile.samples.forEach((id, i) => {
      const { functionName, url } = nodes.get(id).callFrame;
      const name = `${functionName || "(anonymous)"} ${url.split("/").pop()}`.trim();
      self.set(name, (self.get(name) || 0) + profile.timeDeltas[i] / 1000);
    });
    selfTimes.push(self);
  }
  return { result, selfTimes };
}

/** The `count` functions with the most self time over `selfTimes` (ms), and the total. */
export function topFunctions(selfTimes, count = 15) {
  const merged = new Map();
  let total = 0;
  for (const self of selfTimes) {
    for (const [name, ms] of self) {
      merged.set(name, (merged.get(name) || 0) + ms);
      total += ms;
    }
  }
  return { total, top: [...merged].sort((x, y) => y[1] - x[1]).slice(0, count) };
}

/** Writes a benchmark's results as JSON and says where. */
export function writeResults(path, result) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(result, null, 2));
  console.log(`JSON: ${path}`);
}

// In the page: Jellyfish's own operations, timed.

/** Downloads a file; milliseconds in all and to the first block, and the size received. */
export const DOWNLOAD = async (id) => {
  const t = performance.now();
  let first = null;
  const blob = await window.jellyfish.download(id, () => { if (first === null) first = performance.now() - t; });
  return { ms: performance.now() - t, first_ms: first, size: blob.size };
};

// In the page: baselines.

/** Milliseconds for the transport probe to send `size` bytes to every one of `peers`. */
export const PROBE_PUSH = async ([peers, size]) => {
  const t = performance.now();
  await window.jellyfish.probe_push(peers, size);
  return performance.now() - t;
};

/**
 * Milliseconds for the transport probe to fetch `size` bytes from `peers` in turn, 4 blocks
 * at once (a download's pattern), or `inFlight` at once.
 */
export const PROBE_PULL = async ([peers, size, inFlight = 4]) => {
  const t = performance.now();
  await window.jellyfish.probe_pull(peers, size, inFlight);
  return performance.now() - t;
};

/** Milliseconds for WebCrypto PBKDF2-HMAC-SHA256 at 600,000 iterations, the peer's setting. */
export const PBKDF2_MS = async () => {
  const t = performance.now();
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("password"), "PBKDF2", false, ["deriveBits"]);
  await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations: 600000 }, key, 256);
  return performance.now() - t;
};

/** Milliseconds for WebCrypto to generate an RSA-3072 key, the engine sign-up uses. */
export const RSA_KEYGEN_MS = async () => {
  const t = performance.now();
  await crypto.subtle.generateKey(
    { name: "RSA-PSS", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"]);
  return performance.now() - t;
};

/** Milliseconds per WebCrypto RSA-PSS-SHA256 signature (3072 bits, 128 bytes, 10 signatures). */
export const RSA_SIGN_MS = async () => {
  const { privateKey } = await crypto.subtle.generateKey(
    { name: "RSA-PSS", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, false, ["sign", "verify"]);
  const t = performance.now();
  for (let i = 0; i < 10; i++) await crypto.subtle.sign({ name: "RSA-PSS", saltLength: 32 }, privateKey, new Uint8Array(128).fill(i));
  return (performance.now() - t) / 10;
};

/**
 * Milliseconds to AES-GCM-encrypt `size` bytes with WebCrypto and to write them to IndexedDB,
 * both in 1 MiB pieces (the block size), one transaction per piece as a holder stores blocks.
 */
export const AES_GCM_AND_INDEXEDDB_MS = async (size) => {
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
