// A cold connection's first MiB: is it faster split over several holders, and what makes it
// slow? By hand (about 4 minutes; not in CI):
//   scripts/isolated.sh node tests/bench/cold_split.mjs [--peers 8] [--rest-secs 20] [--gap-secs 3]
// Starts a relay and `--peers` tabs, rests, then each tab in turn pulls 1 MiB with the
// transport probe over connections that have carried no bulk data yet (cold): whole from one
// tab (twice, from two tabs), in 3 parts from 3 tabs at once, in 2 parts from 2 tabs; then the
// whole and the 3 parts again over the connections just used (warm). The variants run in a
// random order per tab. Each line gives the UDP datagrams the namespace's sockets dropped at a
// full receive buffer meanwhile (`udpReceiveDrops`). Findings: docs/PERFORMANCE.md, session 49.
import { Relay, joined, openPeer } from "../e2e/harness.mjs";
import { MIB, median, option, udpReceiveDrops } from "./common.mjs";

const PEERS = Number(option("peers", 8));
const REST = Number(option("rest-secs", 20));
const GAP = Number(option("gap-secs", 3));
// Each tab pulls from 7 others, each connection used cold once.
if (PEERS < 8) throw new Error("--peers must be at least 8");
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
// `size` bytes in as many parts as `peers`, one from each, all at once.
const SPLIT = async ([peers, size]) => {
  const t = performance.now();
  await Promise.all(peers.map((p) => window.jellyfish.probe_pull([p], Math.ceil(size / peers.length), 1)));
  return performance.now() - t;
};

const relay = await Relay.start({ extraArgs: ["--allow-probes"] });
const browsers = [];
const results = {};
const note = (name, ms, drops) => {
  (results[name] ??= []).push({ ms, drops });
  console.log(`${name}: ${ms.toFixed(0)} ms, ${drops} UDP datagrams dropped`);
};
try {
  const tabs = [];
  for (let i = 0; i < PEERS; i++) tabs.push(await openPeer(relay, `cold${i}`, browsers));
  const pages = tabs.map((t) => t.page);
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.jellyfish.peer_id)));
  for (const page of pages) await joined(page, PEERS - 1);
  console.log(`joined; resting ${REST} s`);
  await sleep(REST);
  for (let d = 0; d < PEERS; d++) {
    const others = ids.filter((_, i) => i !== d);
    const runs = [["cold 1 x 1 MiB", [others[0]]], ["cold 3 x 341 KiB", others.slice(1, 4)], ["cold 1 x 1 MiB", [others[4]]], ["cold 2 x 512 KiB", others.slice(5, 7)]];
    // A different order for each downloader, so no variant always has the quieter machine.
    for (let i = runs.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [runs[i], runs[j]] = [runs[j], runs[i]]; }
    const links = await pages[d].evaluate(async () => (await window.jellyfish.peers()).map((p) => p.link));
    console.log(`downloader ${d}: links ${links.join(",")}`);
    const run = async (name, peers) => {
      await sleep(GAP);
      const before = udpReceiveDrops();
      const ms = await pages[d].evaluate(SPLIT, [peers, MIB]);
      note(name, ms, udpReceiveDrops() - before);
    };
    for (const [name, peers] of runs) await run(name, peers);
    await run("warm 1 x 1 MiB", [others[0]]);
    await run("warm 3 x 341 KiB", others.slice(1, 4));
  }
  for (const [name, runs] of Object.entries(results)) {
    const ms = runs.map((r) => r.ms), drops = runs.map((r) => r.drops);
    console.log(`${name.padEnd(18)} median ${median(ms).toFixed(0)} ms (all ${ms.map((x) => x.toFixed(0)).join(" ")}), median ${median(drops)} dropped`);
  }
  // Time against drops, every run: the slow ones are those with drops.
  const all = Object.values(results).flat();
  for (const [lo, hi] of [[0, 0], [1, 30], [31, 100], [101, Infinity]]) {
    const ms = all.filter((r) => r.drops >= lo && r.drops <= hi).map((r) => r.ms);
    if (ms.length) console.log(`${lo}${hi === lo ? "" : hi === Infinity ? " or more" : ` to ${hi}`} dropped: ${ms.length} runs, median ${median(ms).toFixed(0)} ms, ${ms.filter((x) => x > 300).length} over 300 ms`);
  }
} finally {
  browsers.forEach((b) => b.close());
  relay.cleanup();
}
