// Benchmark: direct WebRTC between tabs against the relayed path, side by side in one run:
// connection set-up time, and warm throughput of the same bytes in the same pattern as block
// uploads (1 MiB requests, 4 in flight) and downloads (one at a time), with the peer's
// transport probes (no sealing, signing, DHT or IndexedDB). The relay is allowed to carry
// blocks here so that the relayed path can be measured at all. Beside them, in the same run, a
// raw RTCDataChannel between two plain tabs (the ceiling for one stream: issue 16 asks one
// Jellyfish stream for 80 % of it).
//   scripts/isolated.sh node tests/bench/webrtc.mjs [--mib 64] [--runs 3] [--out file.json]
//     [--profile]
// --profile: Chromium's CPU profiler samples both tabs of the direct pair during one more
// download, and the functions with the most self time are printed per tab (build the site
// with `scripts/build-web.sh --names` to see the peer's own function names).
import { join } from "node:path";
import { Browser, Relay, ROOT, waitFor, waitReachable } from "../e2e/harness.mjs";
import { MIB, median, option, profiled, topFunctions, writeResults } from "./common.mjs";
import { rawChannelBetween } from "./raw_channel.mjs";

const MIB_COUNT = Number(option("mib", 64));
const RUNS = Number(option("runs", 3));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "webrtc.json"));
const WARM_UP = Math.min(4, MIB_COUNT) * MIB;
const PROFILE = process.argv.includes("--profile");

/** Runs `work` while Chromium's sampling profiler watches each of `pages`; self time per function. */
async function profiledTables(pages, work) {
  const { selfTimes } = await profiled(pages, work);
  return selfTimes.map((self) => topFunctions([self]));
}

async function open(relay, name, options) {
  const browser = await Browser.launch(`bench-${name}`, options);
  const page = await browser.open(relay.url);
  await waitReachable(page);
  return { browser, page, id: await page.evaluate(() => window.jellyfish.peer_id) };
}

const CONNECT = async (addr) => {
  const t = performance.now();
  await window.jellyfish.connect(addr);
  return performance.now() - t;
};

const PUSH = async ([peer, bytes]) => {
  const t = performance.now();
  await window.jellyfish.probe_push([peer], bytes);
  return performance.now() - t;
};

const PULL = async ([peer, bytes]) => {
  const t = performance.now();
  await window.jellyfish.probe_pull([peer], bytes, 1);
  return performance.now() - t;
};

async function main() {
  const relay = await Relay.start({ extraArgs: ["--allow-probes", "--max-circuit-bytes", String(2 ** 40), "--max-circuit-secs", "3600"] });
  const browsers = [];
  try {
    const a = await open(relay, "a");
    const direct = await open(relay, "direct");
    const relayed = await open(relay, "relayed", { webrtc: false });
    browsers.push(a.browser, direct.browser, relayed.browser);
    const relayAddr = (await relay.json("/api/relay")).addrs[0];
    const link = async (peer) => (await a.page.evaluate((p) => window.jellyfish.peer_info(p), peer)).link;

    const rows = [];
    for (const [path, target, addr] of [
      ["direct WebRTC", direct, `${relayAddr}/p2p-circuit/webrtc/p2p/${direct.id}`],
      ["relayed circuit", relayed, `${relayAddr}/p2p-circuit/p2p/${relayed.id}`],
    ]) {
      const setups = [];
      // Set up once: a second dial to a peer already connected this way is refused.
      setups.push(await a.page.evaluate(CONNECT, addr));
      const want = path.startsWith("direct") ? "direct" : "relayed_fallback";
      if (want === "relayed_fallback") {
        // The relayed path is the fallback: wait until the failed upgrade has been noticed.
        await waitFor("the relayed link", async () => (await link(target.id)) === want, { timeout: 30000 });
      } else {
        await waitFor("the direct link", async () => (await link(target.id)) === want, { timeout: 30000 });
      }
      await a.page.evaluate(PUSH, [target.id, WARM_UP]); // past the SCTP cold start
      const push = [];
      const pull = [];
      for (let i = 0; i < RUNS; i++) {
        push.push(await a.page.evaluate(PUSH, [target.id, MIB_COUNT * MIB]));
        pull.push(await a.page.evaluate(PULL, [target.id, MIB_COUNT * MIB]));
      }
      const rate = (ms) => MIB_COUNT / (median(ms) / 1000);
      rows.push({
        path,
        link: await link(target.id),
        setup_ms_median: median(setups),
        setup_ms: setups,
        up_mib_s: rate(push),
        down_mib_s: rate(pull),
      });
    }
    // One stream against its ceiling, in the same two tabs and interleaved run by run (the
    // machine's load drifts by tens of percent within a minute): a raw data channel from the
    // direct tab to the first (the way a download's bytes go), sent continuously in 16 KiB and
    // in 256 KiB messages, and 1 MiB at a time with an answer after each (a request's pattern),
    // beside Jellyfish's download pattern (1 MiB requests, one at a time).
    await rawChannelBetween(direct.page, a.page);
    const RAW_SEND = ([n, m]) => window.rawChannel.send(n, m);
    const RAW_EACH_MIB = async ([count, m]) => {
      let total = 0;
      for (let i = 0; i < count; i++) total += await window.rawChannel.send(1 << 20, m);
      return total;
    };
    await direct.page.evaluate(RAW_SEND, [WARM_UP, 16384]);
    const single = { raw_16k: [], raw_256k: [], raw_each_mib: [], stream_each_mib: [] };
    for (let i = 0; i < RUNS; i++) {
      single.raw_16k.push(await direct.page.evaluate(RAW_SEND, [MIB_COUNT * MIB, 16384]));
      single.raw_256k.push(await direct.page.evaluate(RAW_SEND, [MIB_COUNT * MIB, 262144]));
      single.raw_each_mib.push(await direct.page.evaluate(RAW_EACH_MIB, [MIB_COUNT, 16384]));
      single.stream_each_mib.push(await a.page.evaluate(PULL, [direct.id, MIB_COUNT * MIB]));
    }
    const raw = Object.fromEntries(Object.entries(single).map(([k, ms]) => [k, { ms, mib_s: MIB_COUNT / (median(ms) / 1000) }]));
    const health = await relay.json("/health");
    console.log(`\nDirect vs relayed, ${MIB_COUNT} MiB, median of ${RUNS}, loopback, this machine`);
    console.log("| path | set-up ms | up MiB/s (1 MiB x 4 in flight) | down MiB/s (1 MiB at a time) |");
    console.log("|---|---:|---:|---:|");
    for (const r of rows) {
      console.log(`| ${r.path} (${r.link}) | ${r.setup_ms_median.toFixed(0)} | ${r.up_mib_s.toFixed(1)} | ${r.down_mib_s.toFixed(1)} |`);
    }
    const [d, r] = rows;
    console.log(`\nOne stream against a raw RTCDataChannel between the same two tabs, ${MIB_COUNT} MiB, interleaved, median of ${RUNS}`);
    console.log("| what moves the bytes | MiB/s | stream / it |");
    console.log("|---|---:|---:|");
    const stream = raw.stream_each_mib.mib_s;
    for (const [key, label] of [
      ["raw_16k", "raw channel, continuous, 16 KiB messages (baseline)"],
      ["raw_256k", "raw channel, continuous, 256 KiB messages"],
      ["raw_each_mib", "raw channel, 1 MiB then an answer, one at a time"],
      ["stream_each_mib", "Jellyfish stream: 1 MiB requests one at a time (a download's pattern)"],
    ]) {
      console.log(`| ${label} | ${raw[key].mib_s.toFixed(1)} | ${(stream / raw[key].mib_s).toFixed(2)} |`);
    }
    console.log(`| Jellyfish, 1 MiB requests 4 in flight (an upload's pattern, the other way) | ${d.up_mib_s.toFixed(1)} | ${(d.up_mib_s / raw.raw_16k.mib_s).toFixed(2)} of the baseline |`);
    console.log(`direct / relayed: up ${(d.up_mib_s / r.up_mib_s).toFixed(1)}x, down ${(d.down_mib_s / r.down_mib_s).toFixed(1)}x; ` +
      `the relay carried ${((health.bytes_in + health.bytes_out) / MIB).toFixed(0)} MiB in all (the relayed rows only)`);
    let profiles;
    if (PROFILE) {
      profiles = await profiledTables([a.page, direct.page], () => a.page.evaluate(PULL, [direct.id, MIB_COUNT * MIB]));
      for (const [who, table] of [["downloader", profiles[0]], ["sender", profiles[1]]]) {
        console.log(`\n${who}: ${table.total.toFixed(0)} ms sampled; most self time:`);
        for (const [name, ms] of table.top) console.log(`  ${ms.toFixed(1).padStart(8)} ms  ${name}`);
      }
    }
    writeResults(OUT, { mib: MIB_COUNT, runs: RUNS, rows, raw, relay: health, profiles });
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
