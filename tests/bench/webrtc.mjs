// Benchmark: direct WebRTC between tabs against the relayed path, side by side in one run:
// connection set-up time, and warm throughput of the same bytes in the same pattern as block
// uploads (1 MiB requests, 4 in flight) and downloads (one at a time), with the peer's
// transport probes (no sealing, signing, DHT or IndexedDB). The relay is allowed to carry
// blocks here so that the relayed path can be measured at all.
//   scripts/isolated.sh node tests/bench/webrtc.mjs [--mib 64] [--runs 3] [--out file.json]
import { join } from "node:path";
import { Browser, Relay, ROOT, waitFor, waitReachable } from "../e2e/harness.mjs";
import { MIB, median, option, writeResults } from "./common.mjs";

const MIB_COUNT = Number(option("mib", 64));
const RUNS = Number(option("runs", 3));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "webrtc.json"));
const WARM_UP = Math.min(4, MIB_COUNT) * MIB;

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
  await window.jellyfish.probe_pull(peer, bytes);
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
      for (let i = 0; i < RUNS; i++) setups.push(await a.page.evaluate(CONNECT, addr));
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
    const health = await relay.json("/health");
    console.log(`\nDirect vs relayed, ${MIB_COUNT} MiB, median of ${RUNS}, loopback, this machine`);
    console.log("| path | set-up ms | up MiB/s (1 MiB x 4 in flight) | down MiB/s (1 MiB at a time) |");
    console.log("|---|---:|---:|---:|");
    for (const r of rows) {
      console.log(`| ${r.path} (${r.link}) | ${r.setup_ms_median.toFixed(0)} | ${r.up_mib_s.toFixed(1)} | ${r.down_mib_s.toFixed(1)} |`);
    }
    const [d, r] = rows;
    console.log(`direct / relayed: up ${(d.up_mib_s / r.up_mib_s).toFixed(1)}x, down ${(d.down_mib_s / r.down_mib_s).toFixed(1)}x; ` +
      `the relay carried ${((health.bytes_in + health.bytes_out) / MIB).toFixed(0)} MiB in all (the relayed rows only)`);
    writeResults(OUT, { mib: MIB_COUNT, runs: RUNS, rows, relay: health });
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
