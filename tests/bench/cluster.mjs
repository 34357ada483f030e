// Benchmark: a Jellyfish cluster in real browsers. The relay and N headless Chromium profiles
// on loopback; sign-up, log-in and DHT lookup latency; a newcomer after churn (page load to
// knowing every live tab, and to a log-in typed at once); for each file size, upload and download
// goodput, time to the first block, network bytes per stored byte, the bytes the relay carried
// and each tab's peak memory; repair after holders left (time until every block of every file
// is back at its copies, and the bytes the holders copied, beside the bytes the tabs that left
// held and the schedule's own floor). Every figure stands beside a baseline measured in the same run on
// the same machine (a raw RTCDataChannel between two tabs in plain JS, the peer's transport
// probes, WebCrypto AES-GCM, PBKDF2 and RSA, IndexedDB writes, one request round trip), with
// the ratio between them. Prints a markdown table and writes every raw number as JSON.
//   scripts/isolated.sh node tests/bench/cluster.mjs [--peers 8] [--sizes 1,16,128] [--lookups 20]
//     [--runs 3] [--raw-mib 64] [--repair-every-secs 0] [--settle-secs 0] [--quiet-secs 0] [--probe-runs 1] [--warm]
//     [--out tests/bench/results/cluster.json]
// --runs: sign-ups, log-ins and runs of each baseline. --repair-every-secs: the relay's test
// repair schedule (0, the default: the shipped one, each block hourly, fellow holders swept
// every 30 s, one copy short waits 45 s). A CI-sized run:
//   --peers 4 --sizes 1 --lookups 3 --runs 1 --raw-mib 8 --repair-every-secs 6
// [--profile] [--cpu-profile] [--console]: see below. [--baseline-max-mib N]: files above N MiB
// get no baselines of their own. The 10 GiB file (docs/PERFORMANCE.md, stopped once
// `<out>.files.json` is written: the repair phase would copy what two tabs held, gigabytes):
//   --peers 8 --sizes 10240 --lookups 1 --runs 1 --raw-mib 8 --baseline-max-mib 128
import os from "node:os";
import { join } from "node:path";
import { Browser, ROOT, Relay, joined, openPeer, pageErrors } from "../e2e/harness.mjs";
import {
  AES_GCM_AND_INDEXEDDB_MS, DOWNLOAD, MIB, PASSWORD, PBKDF2_MS, PROBE_PULL, PROBE_PUSH, RSA_KEYGEN_MS,
  median, option, rendererPeakMiB, summary, writeResults, cpuReading, cpuSpent, profiled as sampledProfile, topFunctions, udpReceiveDrops,
} from "./common.mjs";
import { rawChannelBaseline } from "./raw_channel.mjs";

const PEERS = Number(option("peers", 8));
const SIZES = option("sizes", "1,16,128").split(",").map(Number);
const LOOKUPS = Number(option("lookups", 20));
const RUNS = Number(option("runs", 3));
const RAW_MIB = Number(option("raw-mib", 64));
const REPAIR_EVERY_SECS = Number(option("repair-every-secs", 0));
// Files larger than this get no baselines of their own (no probes, AES-GCM or IndexedDB
// runs of the same bytes): a 10 GiB file's probes alone would double a run of most of an hour.
const BASELINE_MAX_MIB = Number(option("baseline-max-mib", Infinity));
const SETTLE_SECS = Number(option("settle-secs", 0));
// --quiet-secs N: before each upload, download and transport probe the cluster rests N s, then
// until the machine has been quiet (under a third of its cores busy) for 6 s, at most 3 × N s
// in all. What an operation leaves behind (each holder's sweep, every 30 s, checks the blocks
// that just arrived) then lands on no later measurement, the probes included. 0, the default:
// one after the other, as a person works.
const QUIET_SECS = Number(option("quiet-secs", 0));
// --probe-runs N: each file's transport probes run N times (each after its own rest with
// --quiet-secs) and the median is the baseline. The probe is the noisier side of the ratio:
// in session 44's four runs of 128 MiB the upload moved 4.19 to 4.36 MiB/s while the probe
// push of the same bytes moved 4.61 to 6.59 (docs/PERFORMANCE.md). 1, the default: once.
const PROBE_RUNS = Math.max(1, Number(option("probe-runs", 1)));
// --warm: before the files, the uploader pushes and the downloader pulls 4 MiB to and from every
// other tab, so that the files run over connections past their cold start, as the transport
// probes after them do (each probe sends 4 MiB first). Without it, the default, the files meet
// the cold start and the probes do not: the first MiB over a connection that never carried bulk
// data overshoots SCTP's slow start into Chromium's 128 KiB socket receive buffer on a loaded
// 2-core machine (hundreds of dropped datagrams, PERFORMANCE session 49), which a goodput ratio
// then charges to Jellyfish. Either way the cold start is measured on its own (`cold`, below).
const WARM = process.argv.includes("--warm");
const OUT = option("out", join(ROOT, "tests", "bench", "results", "cluster.json"));
// --profile: the tabs log their timings (`?log=timing`), and each file's upload and download
// are broken down into the peer's own timings: per block read, seal, journal note, warrant
// signature, DHT walk and store at 3 holders; per holder hashing, checks and the IndexedDB
// write; per upload the index load, the blocks, the manifest and the commit; per block
// fetched the request and the open, per holder the IndexedDB read; per download the index,
// the manifest, the first block and all blocks. Medians (and totals) are printed.
const PROFILE = process.argv.includes("--profile");
// Always: each upload's, download's and probe's CPU (the machine's busy time against its
// cores; each tab's by kind of process). --cpu-profile: Chromium's sampling profiler also
// watches every tab's main thread during each upload and download, and the functions with
// the most self time are printed (build with `scripts/build-web.sh --names` for the peer's
// own names).
const CPU_PROFILE = process.argv.includes("--cpu-profile");
// --console: the uploading tab's console, and every other tab's warnings and errors, go to
// stderr as they come.

/** --quiet-secs: waits for the cluster to be at rest before `what`; returns the seconds waited. */
async function quiet(what) {
  if (QUIET_SECS <= 0) return null;
  const started = Date.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(QUIET_SECS * 1000);
  let calm = 0;
  let busy = null;
  while (calm < 3 && Date.now() - started < 3 * QUIET_SECS * 1000) {
    const before = cpuReading([]);
    await sleep(2000);
    const after = cpuReading([]);
    busy = (after.busy - before.busy) / (((after.at - before.at) / 1000) * os.cpus().length);
    calm = busy < 1 / 3 ? calm + 1 : 0;
  }
  const waited = (Date.now() - started) / 1000;
  const level = busy === null ? "" : `, the last 2 s at ${Math.round(100 * busy)} % of ${os.cpus().length} cores`;
  console.log(`quiet before ${what}: ${waited.toFixed(0)} s${calm < 3 ? " (never quiet)" : ""}${level}`);
  return waited;
}

/** The peer's debug timings in a console line (`name = 12;`), or null. */
function timings(text) {
  const events = ["block placed", "block sealed", "block stored", "upload done", "block fetched", "block served", "download done",
    "request received", "request read", "block store answered", "query done", "table grew", "response sent", "response queued", "record lookup"];
  const event = events.find((e) => text.includes(e));
  if (!event) return null;
  // Numbers as numbers; a word (`kind = "store";` or `kind = store;`) as a string.
  const fields = Object.fromEntries([...text.matchAll(/(\w+) = ("[^"]*"|[^;]+);/g)]
    .map(([, k, v]) => [k, /^\d+$/.test(v) ? Number(v) : v.replace(/^"|"$/g, "")]));
  // When it reached this process: a timeline of a small file's steps across the tabs.
  return { event, fields, at: performance.now() };
}
const COPIES = 3; // the peer's default copies per block
// A fresh WebRTC connection stalls on its first MiBs (SCTP retransmission timeout after the
// opening burst): baselines that stand for a warm connection send this much first.
const WARM_UP = 4 * MIB;

// Tab 0 uploads and tab 1 downloads; the peer never stores a block on itself, so three
// copies need at least three other tabs.
if (!(PEERS >= COPIES + 1)) throw new Error(`--peers must be at least ${COPIES + 1} for ${COPIES} copies per block`);

/** Milliseconds a peer method takes in the page, and its error message if it failed. */
const TIMED = async ([method, args]) => {
  const t = performance.now();
  try {
    await window.jellyfish[method](...args);
    return { ms: performance.now() - t };
  } catch (e) {
    return { ms: performance.now() - t, error: e.message };
  }
};

/** Milliseconds for `page` to run `method`, which must succeed. */
async function timed(page, method, ...args) {
  const { ms, error } = await page.evaluate(TIMED, [method, args]);
  if (error) throw new Error(`${method}: ${error}`);
  return ms;
}

/**
 * Uploads `size` bytes; milliseconds in all and to the first progress report (the first block
 * placed on every holder). The file is one random 1 MiB piece repeated, so the page allocates
 * 1 MiB of source whatever the size (the Blob's bytes go to the browser process's blob store)
 * and the tab's peak memory is the peer's; each block is still sealed under its own nonce, so
 * no two blocks are alike on the wire or in storage.
 */
const UPLOAD = async ([size, name]) => {
  const piece = new Uint8Array(Math.min(size, 1024 * 1024));
  for (let i = 0; i < piece.length; i += 65536) crypto.getRandomValues(piece.subarray(i, i + 65536));
  // The piece as a Blob, referenced again and again: the browser keeps one copy of its bytes,
  // so even a 10 GiB file costs neither memory nor disk to make.
  const pieceBlob = new Blob([piece]);
  const parts = [];
  for (let done = 0; done < size; done += piece.length) parts.push(pieceBlob.slice(0, Math.min(piece.length, size - done)));
  const blob = new Blob(parts);
  const t = performance.now();
  let first = null;
  const report = await window.jellyfish.upload(blob, name, undefined, () => { if (first === null) first = performance.now() - t; });
  return { ms: performance.now() - t, first_ms: first, id: report.file.id, copies: report.file.copies, complete: report.complete };
};

/** What every tab has put on direct connections and holds, and the relay's socket counters. */
async function traffic(pages, relay) {
  const [statuses, storages, health] = await Promise.all([
    Promise.all(pages.map((p) => p.evaluate(() => window.jellyfish.status()))),
    Promise.all(pages.map((p) => p.evaluate(() => window.jellyfish.storage()))),
    relay.json("/health"),
  ]);
  return {
    direct_sent: statuses.map((s) => s.direct_bytes_sent),
    channels: statuses.map((s) => s.direct_channels_opened ?? 0),
    streams: statuses.map((s) => s.direct_streams ?? 0),
    messages: statuses.map((s) => s.direct_messages_sent ?? 0),
    held: storages.map((s) => s.used),
    blocks: storages.map((s) => s.blocks),
    relay: health,
  };
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/**
 * Bytes moved between two snapshots. `wire` is what the tabs put on the network: their direct
 * data channels (libp2p framing included; SCTP, DTLS and UDP headers not) plus what they sent
 * the relay (its `bytes_in`: DHT, signalling, anything relayed). `relay` is everything the
 * relay's sockets carried both ways.
 */
function moved(before, after) {
  const direct = sum(after.direct_sent) - sum(before.direct_sent);
  const relayIn = after.relay.bytes_in - before.relay.bytes_in;
  const relayOut = after.relay.bytes_out - before.relay.bytes_out;
  return {
    direct_sent_per_tab: after.direct_sent.map((x, i) => x - before.direct_sent[i]),
    direct_sent: direct,
    relay_in: relayIn,
    relay_out: relayOut,
    wire: direct + relayIn,
    relay: relayIn + relayOut,
    held: sum(after.held) - sum(before.held),
    // Data channels opened and streams carried by every tab (a channel counts at both ends):
    // more streams than channels means channels carried one stream after another.
    channels_opened: sum(after.channels) - sum(before.channels),
    streams: sum(after.streams) - sum(before.streams),
    messages: sum(after.messages) - sum(before.messages),
  };
}

const directLinks = (page) => page.evaluate(async () => (await window.jellyfish.peers()).filter((p) => p.link === "direct").length);

/** Prints where an upload's or a download's time went (--profile): medians and totals of each timing. */
/**
 * Where an operation's CPU went (`cpuSpent`): the machine's busy seconds against its cores
 * (near 100 % the cores, not the network, are the bound), then the tab that ran it and the
 * others, each by kind of process (renderer: JS, wasm and WebRTC; browser: IndexedDB).
 */
function printCpu(what, size, spent, own) { // size: bytes moved, or null for none (a rest)
  const cores = os.cpus().length;
  const total = (kinds) => Object.values(kinds).reduce((a, b) => a + b, 0);
  const others = {};
  spent.browsers_s.forEach((kinds, i) => {
    if (i === own) return;
    for (const [kind, s] of Object.entries(kinds)) others[kind] = (others[kind] ?? 0) + s;
  });
  const byKind = (kinds) => Object.entries(kinds).filter(([, s]) => s >= 0.05).sort((a, b) => b[1] - a[1])
    .map(([kind, s]) => `${kind} ${s.toFixed(1)}`).join(", ");
  const mine = spent.browsers_s[own];
  console.error(`cpu ${what}: ${spent.wall_s.toFixed(1)} s wall; machine busy ${spent.busy_s.toFixed(1)} s ` +
    `(${Math.round(100 * spent.busy_s / (spent.wall_s * cores))} % of ${cores} cores), ` +
    (size === null ? "" : `${Math.round(1000 * spent.busy_s / (size / MIB))} ms per MiB; `) +
    `its own tab ${total(mine).toFixed(1)} s ` +
    `(${byKind(mine)}); the others ${total(others).toFixed(1)} s (${byKind(others)})`);
}

/** --cpu-profile: the functions with the most self time in the tab that ran it and in the others. */
function printFunctions(what, selfTimes, own) {
  const groups = [["its own tab", [selfTimes[own]]], ["the others", selfTimes.filter((_, i) => i !== own)]];
  for (const [who, times] of groups) {
    const { total, top } = topFunctions(times);
    console.error(`${what}, ${who}: ${total.toFixed(0)} ms sampled on the main threads; most self time:`);
    for (const [name, ms] of top) console.error(`  ${ms.toFixed(1).padStart(8)} ms  ${name}`);
  }
}

function printProfile(mib, profiled, { download = false, started = null } = {}) {
  // Tab 0 uploads and tab 1 downloads; every other tab's events are the holders'.
  const actor = download ? 1 : 0;
  const [who, steps, served] = download
    ? ["downloader", ["block fetched", "download done"], "block served"]
    : ["uploader", ["block sealed", "block store answered", "block placed", "upload done"], "block stored"];
  const asked = (events) => events.filter((e) => e.event === "request received");
  const counted = (events) => {
    const counts = {};
    for (const e of asked(events)) counts[e.fields.kind] = (counts[e.fields.kind] ?? 0) + 1;
    return Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${n}`).join(", ") || "none";
  };
  // The DHT queries each tab started and the requests they sent, by kind.
  const queries = (events) => {
    const byKind = {};
    for (const e of events.filter((e) => e.event === "query done")) {
      const k = (byKind[e.fields.kind] ??= { n: 0, requests: 0 });
      k.n += 1;
      k.requests += e.fields.requests;
    }
    const grew = events.filter((e) => e.event === "table grew").length;
    return [...Object.entries(byKind).sort((a, b) => b[1].requests - a[1].requests)
      .map(([kind, { n, requests }]) => `${kind} ${n} (${requests} requests)`), `routing table entries added ${grew}`].join(", ");
  };
  const mine = profiled[actor].filter((e) => !["request received", "query done", "table grew", "response sent", "response queued"].includes(e.event));
  const holders = profiled.map((events, tab) => ({ tab, events })).filter(({ tab }) => tab !== actor);
  const lines = [`\nProfile of the ${mib} MiB ${download ? "download" : "upload"} (ms: p50 / total over the events)`];
  // What each tab was asked for meanwhile (its own requests and the background's).
  lines.push(`- requests the ${who} received: ${counted(profiled[actor])}`);
  lines.push(`- requests the others received: ${counted(holders.flatMap((h) => h.events))}`);
  lines.push(`- DHT queries the ${who} started: ${queries(profiled[actor])}`);
  lines.push(`- DHT queries the others started: ${queries(holders.flatMap((h) => h.events))}`);
  const show = (role, events, event) => {
    const chosen = events.filter((e) => e.event === event);
    if (chosen.length === 0) return;
    const keys = Object.keys(chosen[0].fields).filter((k) => k.endsWith("_ms"));
    const parts = keys.map((k) => {
      const values = chosen.map((e) => e.fields[k]);
      return `${k} ${median(values)} / ${values.reduce((a, b) => a + b, 0)}`;
    });
    lines.push(`- ${role}, ${event} (${chosen.length}): ${parts.join(", ")}`);
  };
  for (const event of steps) show(who, mine, event);
  show("holders", holders.flatMap((h) => h.events), served);
  if (!download) show("holders", holders.flatMap((h) => h.events), "request read");
  // A small file's steps one by one, in the order each tab logged them.
  const few = (events) => events.filter((e) => !e.event.endsWith(" done") && e.event !== "block store answered").length <= 16;
  if (few(mine)) {
    const fields = (e) => Object.entries(e.fields).map(([k, v]) => `${k} ${v}`).join(", ");
    for (const e of mine) lines.push(`  - ${who} ${e.event}: ${fields(e)}`);
    for (const { tab, events } of holders) {
      for (const e of events.filter((e) => e.event === served || e.event === "request read")) lines.push(`  - tab ${tab} ${e.event}: ${fields(e)}`);
    }
    // Every tab's events in the order they arrived here, in ms from the operation's start.
    if (started !== null) {
      lines.push(`- timeline (ms from the ${download ? "download" : "upload"}'s start, as each line reached the bench)`);
      const all = profiled.flatMap((events, tab) => events.map((e) => ({ tab, ...e }))).sort((a, b) => a.at - b.at);
      for (const e of all) lines.push(`  ${(e.at - started).toFixed(0).padStart(6)} tab ${e.tab} ${e.event}: ${fields(e)}`);
    }
  }
  console.log(lines.join("\n"));
}

async function main() {
  const started = Date.now();
  const wall = {}; // seconds per phase
  // A run takes minutes: say on stderr what is done, so a failure shows where it happened.
  const phase = (name, since) => {
    wall[name] = (Date.now() - since) / 1000;
    console.error(`${name}: ${wall[name].toFixed(1)} s`);
  };
  const machine = {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    memory_gib: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    load_average_at_start: os.loadavg(),
  };
  const repairArgs = REPAIR_EVERY_SECS > 0 ? ["--repair-every-secs", String(REPAIR_EVERY_SECS)] : [];
  const relay = await Relay.start({ extraArgs: ["--allow-probes", ...repairArgs] });
  const browsers = [];
  try {
    let t = Date.now();
    const tabs = [];
    for (let i = 0; i < PEERS; i++) {
      tabs.push(await openPeer(relay, `bench-cluster${i}`, browsers, { query: PROFILE ? "?log=timing" : "" }));
    }
    // Each tab's debug timings, as they come (--profile).
    const profiled = tabs.map(() => []);
    if (PROFILE) {
      tabs.forEach((tab, i) => tab.page.on("console", (m) => {
        const t = timings(m.text());
        if (t) profiled[i].push(t);
      }));
    }
    // --console: the uploading tab's console and the others' warnings and errors, as they
    // come, to see why a run stalls.
    if (process.argv.includes("--console")) {
      tabs.forEach((tab, i) => tab.page.on("console", (m) => {
        if (i === 0 || ["warn", "warning", "error"].includes(m.type())) console.error(`tab ${i} ${m.type()}: ${m.text()}`);
      }));
    }
    const pages = tabs.map((tab) => tab.page);
    const browsersOf = () => tabs.map((tab) => tab.browser);
    const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.jellyfish.peer_id)));
    console.error(`relay ${(await relay.json("/api/relay")).peer_id}; tabs ${ids.map((id, i) => `${i} ${id}`).join(", ")}`);
    for (const page of pages) await joined(page, PEERS - 1);
    phase("start_and_join", t);
    machine.chromium = await browsers[0].browser.version();
    const idlePeakMiB = tabs.map((tab) => rendererPeakMiB(tab.browser));
    const linksAtJoin = await Promise.all(pages.map(directLinks));

    // DHT lookups, round robin over the tabs: discover() is a Kademlia walk towards the tab's
    // own id; log-in under a name nobody has is one record lookup that finds nothing (a get
    // gathers every copy until the walk ends, so a miss walks as far as a hit) with no crypto.
    // The baseline is one request round trip to another tab, over the same kind of link.
    t = Date.now();
    const stamp = Date.now().toString(36);
    const lookups = { discover: [], get_record_miss: [], hello: [] };
    for (let i = 0; i < LOOKUPS; i++) {
      const page = pages[i % PEERS];
      lookups.discover.push(await timed(page, "discover"));
      const miss = await page.evaluate(TIMED, ["log_in", [`nobody-${stamp}-${i}`, PASSWORD]]);
      if (!/no account has this username/.test(miss.error)) throw new Error(`log-in of an unknown name: ${miss.error ?? "succeeded"}`);
      lookups.get_record_miss.push(miss.ms);
      lookups.hello.push(await timed(page, "hello", ids[(i + 1) % PEERS]));
    }
    phase("lookups", t);

    // Accounts: sign up in tab 0, log in to the same account in tab 1; the last account is
    // the one the files go to. Baselines: the crypto sign-up and log-in cannot do without.
    t = Date.now();
    const [uploader, downloader] = pages;
    const accounts = { sign_up: [], log_in: [], pbkdf2: [], rsa_keygen: [] };
    for (let i = 0; i < RUNS; i++) {
      accounts.pbkdf2.push(await uploader.evaluate(PBKDF2_MS));
      accounts.rsa_keygen.push(await uploader.evaluate(RSA_KEYGEN_MS));
      const user = `bench-${stamp}-${i}`;
      accounts.sign_up.push(await timed(uploader, "sign_up", user, PASSWORD));
      accounts.log_in.push(await timed(downloader, "log_in", user, PASSWORD));
    }
    phase("accounts", t);

    // The quota is the user's donations over 3: the uploading tab donates enough for the
    // largest file (a 1 GiB file needs 3 GiB; the other tabs hold a share of the copies each).
    const need = Math.ceil(Math.max(...SIZES) * MIB * COPIES * 1.1) + 64 * MIB;
    const donateAtLeast = async (bytes) => {
      const storage = await window.jellyfish.storage();
      if (storage.capacity < bytes) await window.jellyfish.set_donation(bytes);
    };
    await uploader.evaluate(donateAtLeast, need);
    // Every other tab can hold a copy of every block, within the browser's quota (10 GiB a
    // profile here): the page proposes a tenth of that quota, and a 10 GiB file's copies
    // would fill every tab at 1 GB.
    const holds = Math.min(Math.ceil(Math.max(...SIZES) * MIB * 1.1) + 64 * MIB, 9 * 1024 * MIB);
    for (const page of pages.slice(1)) await page.evaluate(donateAtLeast, holds);

    // The cold start, on its own: one 1 MiB block over connections that never carried bulk
    // data, before any file, in directions the files' traffic never takes (the files go from
    // tab 0 to the holders and from the holders to tab 1; each direction of a connection has
    // its own congestion window). Tab 1 pushes one block to each group of 3 of the other tabs
    // (tab 1 sends no file's bytes), and the last tab pulls one block from each of tabs 2..
    // in turn (a pull from tab 0 would run as the upload does). The baseline for a file's
    // time to its first block over connections as cold: the first file of a run without
    // --warm. A probe that fails is reported, not thrown, as the other probes are.
    const last = pages.length - 1;
    const coldFrom = ids.slice(2, last);
    const coldTo = ids.filter((_, i) => i !== 1);
    const cold = { push: [], pull: [], push_udp_drops: [], pull_udp_drops: [], push_to: [], pull_from: coldFrom, failures: [] };
    const coldProbe = (what, run) => run().catch((e) => { cold.failures.push(`${what}: ${e.message.split("\n")[0]}`); return null; });
    await quiet("the cold one-block probes");
    for (let i = 0; i < coldTo.length; i += COPIES) {
      const to = coldTo.slice(i, i + COPIES);
      if (i > 0 && to.length < COPIES) break; // a short group only when it is the only one
      const drops = udpReceiveDrops();
      cold.push.push(await coldProbe("cold push", () => downloader.evaluate(PROBE_PUSH, [to, MIB])));
      cold.push_udp_drops.push(udpReceiveDrops() - drops);
      cold.push_to.push(to);
    }
    for (const peer of coldFrom) {
      const drops = udpReceiveDrops();
      cold.pull.push(await coldProbe("cold pull", () => pages[last].evaluate(PROBE_PULL, [[peer], MIB])));
      cold.pull_udp_drops.push(udpReceiveDrops() - drops);
    }
    const shown = (runs) => runs.map((ms) => (ms === null ? "failed" : ms.toFixed(0))).join(", ");
    console.error(`cold one-block probes: push ${shown(cold.push)} ms (${cold.push_udp_drops.join(", ")} dropped), ` +
      `pull ${shown(cold.pull)} ms (${cold.pull_udp_drops.join(", ")} dropped)${cold.failures.length ? `; ${cold.failures.join("; ")}` : ""}`);
    if (WARM) {
      t = Date.now();
      const others = (i) => ids.filter((_, j) => j !== i);
      for (const peer of others(0)) await uploader.evaluate(PROBE_PUSH, [[peer], WARM_UP]);
      for (const peer of others(1)) await downloader.evaluate(PROBE_PULL, [[peer], WARM_UP]);
      phase("warm_up", t);
    }

    // --settle-secs N: the logged-in cluster rests N seconds before the files, and what it
    // spends at rest is printed (the DHT's refreshes, the holders' first audits of a new
    // donor). 0, the default: the files start at once, as a person drops a file the instant
    // the page is ready.
    let settle = null;
    if (SETTLE_SECS > 0) {
      t = Date.now();
      const before = cpuReading(browsersOf());
      const rest = () => new Promise((r) => setTimeout(r, SETTLE_SECS * 1000));
      const rested = CPU_PROFILE ? await sampledProfile(pages, rest) : (await rest(), {});
      settle = cpuSpent(before, cpuReading(browsersOf()));
      if (rested.selfTimes) printFunctions(`${SETTLE_SECS} s at rest`, rested.selfTimes, 0);
      printCpu(`${SETTLE_SECS} s at rest after the accounts`, null, settle, 0);
      phase("settle", t);
    }

    // Files: upload in tab 0, download in tab 1, with the traffic of every tab and the relay.
    const files = [];
    // --cpu-profile: each tab's functions during the work (the files, then their probes).
    const sampled = CPU_PROFILE ? (work) => sampledProfile(pages, work) : async (work) => ({ result: await work() });
    for (const mib of SIZES) {
      t = Date.now();
      const size = Math.round(mib * MIB);
      const before = await traffic(pages, relay);
      await quiet(`the ${mib} MiB upload`);
      profiled.forEach((events) => events.splice(0));
      let cpu = cpuReading(browsersOf());
      const upStarted = performance.now();
      let drops = udpReceiveDrops();
      const up = await sampled(() => uploader.evaluate(UPLOAD, [size, `cluster-${mib}.bin`]));
      const upload = up.result;
      upload.udp_drops = udpReceiveDrops() - drops;
      upload.cpu = cpuSpent(cpu, cpuReading(browsersOf()));
      if (up.selfTimes) printFunctions(`${mib} MiB upload`, up.selfTimes, 0);
      printCpu(`${mib} MiB upload`, size, upload.cpu, 0);
      if (PROFILE) printProfile(mib, profiled, { started: upStarted });
      const afterUpload = await traffic(pages, relay);
      // The downloader sees the file in its list first, as a person clicks a file the page
      // lists (its index is then cached, and a download starts from the entry it saw).
      await downloader.evaluate(() => window.jellyfish.list_files());
      await quiet(`the ${mib} MiB download`);
      profiled.forEach((events) => events.splice(0));
      cpu = cpuReading(browsersOf());
      // --profile: how the downloader is connected to each tab as it starts.
      const links = PROFILE ? await downloader.evaluate(async () => (await window.jellyfish.peers()).map((p) => [p.peer_id, p.link])) : [];
      const downStarted = performance.now();
      drops = udpReceiveDrops();
      const down = await sampled(() => downloader.evaluate(DOWNLOAD, upload.id));
      const download = down.result;
      download.udp_drops = udpReceiveDrops() - drops;
      download.cpu = cpuSpent(cpu, cpuReading(browsersOf()));
      if (down.selfTimes) printFunctions(`${mib} MiB download`, down.selfTimes, 1);
      printCpu(`${mib} MiB download`, size, download.cpu, 1);
      if (PROFILE) {
        printProfile(mib, profiled, { download: true, started: downStarted });
        console.log(`- the downloader's links: ${links.map(([id, link]) => `${ids.includes(id) ? `tab ${ids.indexOf(id)}` : "relay"} ${link ?? "none"}`).join(", ")}`);
      }
      if (download.size !== size) throw new Error(`downloaded ${download.size} of ${size} bytes`);
      const afterDownload = await traffic(pages, relay);
      files.push({
        mib,
        size,
        upload,
        download,
        upload_moved: moved(before, afterUpload),
        download_moved: moved(afterUpload, afterDownload),
        peak_mib_per_tab: tabs.map((tab) => rendererPeakMiB(tab.browser)),
        blocks_per_tab: afterDownload.blocks,
      });
      // --profile: the same download again at once, over connections the first just warmed
      // (their congestion windows open): what of the first's time was the cold connection.
      if (PROFILE && mib <= 16) {
        const drops = udpReceiveDrops();
        const again = await downloader.evaluate(DOWNLOAD, upload.id);
        console.log(`- the same download again at once: ${again.ms.toFixed(0)} ms, first block ${again.first_ms.toFixed(0)} ms, ` +
          `${udpReceiveDrops() - drops} UDP datagrams dropped (first time ${download.ms.toFixed(0)} / ${download.first_ms.toFixed(0)}, ${download.udp_drops} dropped)`);
      }
      phase(`files_${mib}_mib`, t);
    }
    const linksAfterFiles = await Promise.all(pages.map(directLinks));

    // Baselines for the files, after them so they cannot warm anything the files use: a raw
    // data channel between two more browsers; the transport probes
    // (the same bytes to 3 other tabs with the upload's block size and blocks in flight, or
    // from 3 other tabs in turn, 4 blocks at once, as a download fetches), past the cold start first; one
    // block each way for the time to the first block; AES-GCM and IndexedDB.
    t = Date.now();
    const raw = await rawChannelBaseline(relay, { mib: RAW_MIB, runs: RUNS, warmUp: WARM_UP });
    const probePeers = ids.slice(1, 1 + COPIES);
    await uploader.evaluate(PROBE_PUSH, [probePeers, WARM_UP]);
    const pullPeers = ids.slice(2, 2 + COPIES);
    await downloader.evaluate(PROBE_PULL, [pullPeers, WARM_UP]);
    const oneBlock = { push: [], pull: [], push_udp_drops: [], pull_udp_drops: [] };
    for (let i = 0; i < RUNS; i++) {
      let drops = udpReceiveDrops();
      oneBlock.push.push(await uploader.evaluate(PROBE_PUSH, [probePeers, MIB]));
      oneBlock.push_udp_drops.push(udpReceiveDrops() - drops);
      drops = udpReceiveDrops();
      oneBlock.pull.push(await downloader.evaluate(PROBE_PULL, [pullPeers, MIB]));
      oneBlock.pull_udp_drops.push(udpReceiveDrops() - drops);
    }
    // A failed probe is reported (n/a in the table, the error below it) rather than thrown,
    // so that minutes of measurements of Jellyfish itself are not lost with it.
    const failures = [];
    const orNull = (what, promise) => promise.catch((e) => { failures.push(`${what}: ${e.message.split("\n")[0]}`); return null; });
    for (const file of files) {
      if (file.mib > BASELINE_MAX_MIB) continue;
      // --probe-runs N: each probe N times, each after its own rest; the median run (by
      // time; the faster middle one for an even N) is the baseline, every run kept beside it.
      const pushes = [], pulls = [];
      for (let run = 0; run < PROBE_RUNS; run++) {
        await quiet(`the ${file.mib} MiB probe push`);
        const cpu = cpuReading(browsersOf());
        const drops = udpReceiveDrops();
        // --cpu-profile: the probe's functions too, to set beside the upload's.
        const push = await sampled(() => orNull(`${file.mib} MiB probe push`, uploader.evaluate(PROBE_PUSH, [probePeers, file.size])));
        pushes.push({ ms: push.result, cpu: cpuSpent(cpu, cpuReading(browsersOf())), udp_drops: udpReceiveDrops() - drops });
        if (push.selfTimes) printFunctions(`${file.mib} MiB probe push`, push.selfTimes, 0);
        printCpu(`${file.mib} MiB probe push`, file.size, pushes.at(-1).cpu, 0);
      }
      for (let run = 0; run < PROBE_RUNS; run++) {
        await quiet(`the ${file.mib} MiB probe pull`);
        const cpu = cpuReading(browsersOf());
        const drops = udpReceiveDrops();
        const ms = await orNull(`${file.mib} MiB probe pull`, downloader.evaluate(PROBE_PULL, [pullPeers, file.size]));
        pulls.push({ ms, cpu: cpuSpent(cpu, cpuReading(browsersOf())), udp_drops: udpReceiveDrops() - drops });
        printCpu(`${file.mib} MiB probe pull`, file.size, pulls.at(-1).cpu, 1);
      }
      const middle = (runs) => {
        const done = runs.filter((r) => r.ms !== null).sort((a, b) => a.ms - b.ms);
        return done.length ? done[Math.floor((done.length - 1) / 2)] : { ms: null, cpu: runs[0].cpu, udp_drops: null };
      };
      ({ ms: file.probe_push_ms, cpu: file.probe_push_cpu, udp_drops: file.probe_push_udp_drops } = middle(pushes));
      ({ ms: file.probe_pull_ms, cpu: file.probe_pull_cpu, udp_drops: file.probe_pull_udp_drops } = middle(pulls));
      file.probe_push_runs_ms = pushes.map((r) => r.ms);
      file.probe_pull_runs_ms = pulls.map((r) => r.ms);
      Object.assign(file, await uploader.evaluate(AES_GCM_AND_INDEXEDDB_MS, file.size));
    }
    phase("baselines", t);
    // The files' figures so far, in case a later phase fails after minutes of uploading.
    writeResults(OUT.replace(/\.json$/, "") + ".files.json", {
      files, idle_peak_mib: idlePeakMiB, one_block_probe_ms: oneBlock, cold_one_block_probe_ms: cold, lookups, raw_channel: raw, settle,
    });

    // Newcomers after churn: the last tabs close for good, then fresh profiles load the page.
    // One kind measures the time until its DHT walks know every live tab; the other logs in
    // the instant the peer has started (a person typing at once) and measures page load to
    // logged in. Both stand beside one request round trip from this run.
    t = Date.now();
    const churn = { know_live_ms: [], log_in_from_load_ms: [] };
    const leaving = PEERS > 4 ? [PEERS - 1, PEERS - 2] : [PEERS - 1];
    // For the repair phase below: what the leaving tabs held, and what repair had done so far.
    const beforeLeaving = await traffic(pages, relay);
    const repairsBefore = await Promise.all(pages.map((p) => p.evaluate(() => window.jellyfish.repairs())));
    const leftAt = Date.now();
    for (const i of leaving) await tabs[i].browser.close();
    const live = ids.filter((_, i) => !leaving.includes(i));
    const newcomer = async (name) => {
      const browser = await Browser.launch(name);
      browsers.push(browser);
      const opened = Date.now();
      return { browser, page: await browser.open(relay.url), opened };
    };
    for (let i = 0; i < RUNS; i++) {
      const { browser, page, opened } = await newcomer(`bench-newcomer-walk${i}`);
      let known = null;
      while (known === null && Date.now() - opened < 60000) {
        // Before the relay answers, discover() says "not connected yet": that is no peer known.
        const found = await page.evaluate(() => window.jellyfish.discover().catch(() => []));
        if (live.every((id) => found.includes(id))) known = Date.now() - opened;
        else await new Promise((r) => setTimeout(r, 100));
      }
      if (known === null) throw new Error("a newcomer did not know every live tab within 60 s");
      churn.know_live_ms.push(known);
      await browser.close();
    }
    for (let i = 0; i < RUNS; i++) {
      const { browser, page, opened } = await newcomer(`bench-newcomer-login${i}`);
      const login = await page.evaluate(TIMED, ["log_in", [`bench-${stamp}-0`, PASSWORD]]);
      if (login.error) throw new Error(`a newcomer's log-in typed at once: ${login.error}`);
      churn.log_in_from_load_ms.push(Date.now() - opened);
      await browser.close();
    }
    phase("newcomers_after_churn", t);

    // Repair: the tabs that left above held copies of the files' blocks; the holders left
    // notice (their sweeps challenge fellow holders), wait the grace and copy the blocks on.
    // Restored: the first audit of every block of every file (each listed holder and the
    // peers now nearest the block challenged to prove it) that finds each at its copies again;
    // the time is taken at that audit's end, so it is an upper bound. The audit runs in a
    // fresh profile that donates nothing (an audit cannot count its own tab's copies, and
    // the uploader's tab holds some). The bytes are what the live tabs' repairers copied
    // since the tabs left.
    t = Date.now();
    const liveTabs = pages.filter((_, i) => !leaving.includes(i));
    const auditor = await newcomer("bench-auditor");
    const auditorIn = await auditor.page.evaluate(TIMED, ["log_in", [`bench-${stamp}-${RUNS - 1}`, PASSWORD]]);
    if (auditorIn.error) throw new Error(`the auditor's log-in: ${auditorIn.error}`);
    const repair = { left_held_bytes: leaving.reduce((n, i) => n + beforeLeaving.held[i], 0), audits: [] };
    // The schedule's floor: a fellow holder's sweep notices a closed tab, then a block one
    // copy short waits the grace (the peer's repair::Settings::every, mirrored). Given up
    // after four times the floor, and at least 3 minutes.
    const every = (REPAIR_EVERY_SECS || 3600) * 1000;
    const floorMs = Math.max(every / 120, 1000) + Math.max(every / 80, every / 360, 250);
    // Copying takes time too: a second for each MiB the tabs that left held (a 1 GiB file).
    const limitMs = Math.max(4 * floorMs, 180000) + repair.left_held_bytes / MIB * 1000;
    let report = null;
    while (repair.restore_ms === undefined && Date.now() - leftAt < limitMs) {
      report = await auditor.page.evaluate(() => window.jellyfish.audit(1e6).catch((e) => ({ error: e.message })));
      repair.audits.push({ at_ms: Date.now() - leftAt, degraded: report.files_degraded, at_risk: report.files_at_risk, error: report.error });
      if (report.files_degraded === 0) repair.restore_ms = Date.now() - leftAt;
      else await new Promise((r) => setTimeout(r, 2000));
    }
    if (repair.restore_ms === undefined) {
      const logs = await Promise.all(liveTabs.map((p) => p.evaluate(() => window.jellyfish.repairs())));
      throw new Error(`copies not restored within ${limitMs / 1000} s: the last audit ${JSON.stringify(report)}; ` +
        `the live tabs' repairs ${JSON.stringify(logs)}`);
    }
    const repairsAfter = await Promise.all(liveTabs.map((p) => p.evaluate(() => window.jellyfish.repairs())));
    const liveBefore = repairsBefore.filter((_, i) => !leaving.includes(i));
    repair.bytes_copied = sum(repairsAfter.map((r, i) => r.bytes_copied - liveBefore[i].bytes_copied));
    repair.copies_made = sum(repairsAfter.map((r, i) => r.copied - liveBefore[i].copied));
    repair.refused = sum(repairsAfter.map((r, i) => r.refused - liveBefore[i].refused));
    repair.stored_bytes = sum(files.map((f) => f.size));
    await auditor.browser.close();
    phase("repair", t);
    machine.load_average_at_end = os.loadavg();
    wall.total = (Date.now() - started) / 1000;

    // The table: each figure, its baseline from this run, and the ratio figure / baseline.
    const rows = [];
    const row = (figure, value, baseline, base, shown = fmt(value)) =>
      rows.push({ figure, value, shown, baseline, base, ratio: base ? value / base : null });
    const signUp = summary(accounts.sign_up), logIn = summary(accounts.log_in);
    const pbkdf2 = median(accounts.pbkdf2), rsa = median(accounts.rsa_keygen);
    const hello = median(lookups.hello);
    const p50p95 = (s) => `${fmt(s.p50)} / ${fmt(s.p95)}`;
    row("sign-up, ms p50 / p95", signUp.p50, "WebCrypto RSA-3072 keygen + PBKDF2 600k, p50", rsa + pbkdf2, p50p95(signUp));
    row("log-in, ms p50 / p95", logIn.p50, "WebCrypto PBKDF2-SHA256 600k, p50", pbkdf2, p50p95(logIn));
    row("DHT lookup (discover), ms p50 / p95", summary(lookups.discover).p50, "one request round trip (hello), p50", hello, p50p95(summary(lookups.discover)));
    row("DHT get-record (miss), ms p50 / p95", summary(lookups.get_record_miss).p50, "one request round trip (hello), p50", hello, p50p95(summary(lookups.get_record_miss)));
    const knowLive = summary(churn.know_live_ms), loginFromLoad = summary(churn.log_in_from_load_ms);
    row(`newcomer after ${leaving.length} of ${PEERS} tabs left: page load to knowing every live tab, ms p50 / p95`, knowLive.p50,
      "one request round trip (hello), p50", hello, p50p95(knowLive));
    row("newcomer's log-in typed at once: page load to logged in, ms p50 / p95", loginFromLoad.p50,
      "one request round trip (hello), p50", hello, p50p95(loginFromLoad));
    const rate = (bytes, ms) => (ms ? bytes / MIB / (ms / 1000) : null);
    // The cold probes' median, the faster middle one of an even number (as --probe-runs
    // takes): of 2 cold pushes, the faster, so a cold baseline never flatters the file.
    const coldMedian = (runs) => {
      const done = runs.filter((ms) => ms !== null).sort((a, b) => a - b);
      return done.length ? done[Math.floor((done.length - 1) / 2)] : null;
    };
    // Only the first file of a run without --warm goes over connections as cold as the cold
    // probes'; the others (and every file with --warm) stand beside the warm probe alone.
    const coldFile = (f) => !WARM && f === files[0];
    const idlePeak = Math.max(...idlePeakMiB);
    for (const f of files) {
      const up = rate(f.size, f.upload.ms), down = rate(f.size, f.download.ms);
      row(`${f.mib} MiB upload goodput, MiB/s`, up, "raw RTCDataChannel, one channel", raw.mib_s);
      row(`${f.mib} MiB upload goodput, MiB/s`, up, `transport probe, same bytes to ${COPIES} tabs`, rate(f.size, f.probe_push_ms));
      row(`${f.mib} MiB upload goodput, MiB/s`, up, "WebCrypto AES-256-GCM, 1 MiB pieces", rate(f.size, f.aes_ms));
      row(`${f.mib} MiB upload goodput, MiB/s`, up, "IndexedDB writes, 1 MiB values", rate(f.size, f.idb_ms));
      row(`${f.mib} MiB upload, time to first block placed, ms`, f.upload.first_ms, `transport probe, 1 MiB to ${COPIES} tabs`, median(oneBlock.push));
      if (coldFile(f)) {
        row(`${f.mib} MiB upload, time to first block placed, ms`, f.upload.first_ms,
          `transport probe, 1 MiB to ${COPIES} tabs over cold connections (${cold.push.length} runs)`, coldMedian(cold.push));
      }
      row(`${f.mib} MiB upload, network bytes per stored byte`, f.upload_moved.wire / f.size, `${COPIES} copies, nothing else`, COPIES);
      row(`${f.mib} MiB up + down, streams carried over data channels`, f.upload_moved.streams + f.download_moved.streams,
        "data channels opened (as many as streams without reuse)", f.upload_moved.channels_opened + f.download_moved.channels_opened);
      row(`${f.mib} MiB up + down, data-channel messages sent`, f.upload_moved.messages + f.download_moved.messages,
        "1 MiB blocks x copies in 64 KiB frames (the data alone)", Math.ceil(f.size / MIB) * (COPIES + 1) * 17);
      row(`${f.mib} MiB download goodput, MiB/s`, down, "raw RTCDataChannel, one channel", raw.mib_s);
      row(`${f.mib} MiB download goodput, MiB/s`, down, "transport probe, same bytes from other tabs in turn, 4 at once", rate(f.size, f.probe_pull_ms));
      row(`${f.mib} MiB download, time to first block, ms`, f.download.first_ms, "transport probe, 1 MiB from 1 tab", median(oneBlock.pull));
      if (coldFile(f)) {
        row(`${f.mib} MiB download, time to first block, ms`, f.download.first_ms,
          `transport probe, 1 MiB from 1 tab over a cold connection (${cold.pull.length} runs)`, coldMedian(cold.pull));
      }
      // A lost datagram costs SCTP a resend, at least 400 ms when it was a transfer's last: the
      // slow small transfers here are the ones with drops (PERFORMANCE, session 49).
      row(`${f.mib} MiB upload, UDP datagrams dropped at a full receive buffer`, f.upload.udp_drops,
        `transport probe, same bytes (one 1 MiB block: ${oneBlock.push_udp_drops.join(", ")}; cold: ${cold.push_udp_drops.join(", ")})`, f.probe_push_udp_drops);
      row(`${f.mib} MiB download, UDP datagrams dropped at a full receive buffer`, f.download.udp_drops,
        `transport probe, same bytes (one 1 MiB block: ${oneBlock.pull_udp_drops.join(", ")}; cold: ${cold.pull_udp_drops.join(", ")})`, f.probe_pull_udp_drops);
      const relayMiB = (f.upload_moved.relay + f.download_moved.relay) / MIB;
      row(`${f.mib} MiB up + down, MiB the relay carried`, relayMiB, "the file's size, MiB", f.mib);
      const peak = f.peak_mib_per_tab;
      row(`${f.mib} MiB, peak tab memory, MiB (uploader / downloader)`, Math.max(...peak),
        "peak tab memory after joining, before any account", idlePeak, `${fmt(Math.max(...peak))} (${fmt(peak[0])} / ${fmt(peak[1])})`);
    }

    row(`repair after ${leaving.length} of ${PEERS} tabs left: time until every block is back at its copies, ms (upper bound)`,
      repair.restore_ms, "one sweep + the grace (the schedule's floor)", floorMs);
    row("repair: bytes the holders copied", repair.bytes_copied, "bytes the tabs that left held", repair.left_held_bytes,
      `${fmt(repair.bytes_copied / MIB)} MiB (${repair.copies_made} copies, ${repair.refused} refused)`);
    row("repair: bytes the holders copied per byte of file", repair.bytes_copied / repair.stored_bytes,
      "bytes the tabs that left held, per byte of file", repair.left_held_bytes / repair.stored_bytes);

    const result = {
      options: { peers: PEERS, sizes: SIZES, lookups: LOOKUPS, runs: RUNS, raw_mib: RAW_MIB, copies: COPIES, repair_every_secs: REPAIR_EVERY_SECS, warm: WARM },
      machine,
      wall_seconds: wall,
      baselines: { raw_channel: raw, one_block_probe_ms: oneBlock, cold_one_block_probe_ms: cold },
      tabs: { ids, direct_links_at_join: linksAtJoin, direct_links_after_files: linksAfterFiles, idle_peak_mib: idlePeakMiB },
      lookups,
      accounts,
      newcomers_after_churn: churn,
      repair,
      files,
      table: rows,
      baseline_failures: failures,
      page_errors: pageErrors(browsers),
    };

    console.log(`\nCluster benchmark: ${PEERS} tabs, ${COPIES} copies per block, files over ${WARM ? "warmed" : "cold"} connections, ${machine.cpus} cores (${machine.cpu_model}), ` +
      `Chromium ${machine.chromium}, load average ${machine.load_average_at_start[0].toFixed(1)} at start, ` +
      `${machine.load_average_at_end[0].toFixed(1)} at end`);
    console.log("| figure | Jellyfish | baseline, same run | baseline | Jellyfish / baseline |");
    console.log("|---|---:|---|---:|---:|");
    for (const r of rows) console.log(`| ${r.figure} | ${r.shown} | ${r.baseline} | ${fmt(r.base)} | ${fmt(r.ratio)} |`);
    console.log(`Raw RTCDataChannel: ${RAW_MIB} MiB in 16 KiB messages between two fresh profiles, warm, median of ${RUNS}. ` +
      `Network bytes: what all tabs put on direct data channels plus what they sent the relay, during the upload. ` +
      `Tab memory: renderer VmHWM. Upload goodput: the file's bytes, each of which goes to ${COPIES} tabs.`);
    console.log(`\n| tab | role | direct links (of ${PEERS - 1}) at join / after the files | blocks held | peak MiB after joining | peak MiB at the end |`);
    console.log("|---:|---|---:|---:|---:|---:|");
    tabs.forEach((_, i) => {
      const role = ["uploads, signs up", "downloads, logs in"][i] ?? "holds";
      console.log(`| ${i} | ${role} | ${linksAtJoin[i]} / ${linksAfterFiles[i]} | ${files.at(-1).blocks_per_tab[i]} | ` +
        `${fmt(idlePeakMiB[i])} | ${fmt(files.at(-1).peak_mib_per_tab[i])} |`);
    });
    console.log(`Wall time: ${Object.entries(wall).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(", ")}`);
    if (failures.length) console.log(`Baselines that failed: ${failures.join("; ")}`);
    if (result.page_errors.length) console.log(`Page errors (${result.page_errors.length}): ${result.page_errors.slice(0, 3).join("; ")}`);
    writeResults(OUT, result);
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

/** A number with about three significant digits. */
function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "n/a";
  const abs = Math.abs(x);
  return x.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
