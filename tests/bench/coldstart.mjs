// Benchmark: how a fresh or idle WebRTC connection moves its first block. Tab 0 pushes 1 MiB to
// 3 other tabs (the transport probe, an upload's pattern with none of Jellyfish's work) again
// and again: on connections that carried only the DHT's traffic (cold), right after (warm),
// and after an idle pause. Prints the milliseconds of each push, and before each series how
// the pusher is connected to each target (direct WebRTC, relayed, or not at all: the idle
// timeout closed it, and the first push redials).
//   scripts/isolated.sh node tests/bench/coldstart.mjs [--peers 4] [--pushes 4] [--idle-secs 5,30]
import { Relay, joined, openPeer } from "../e2e/harness.mjs";
import { MIB, PROBE_PUSH, option } from "./common.mjs";

const PEERS = Number(option("peers", 4));
const PUSHES = Number(option("pushes", 4));
const IDLE = option("idle-secs", "5,30").split(",").map(Number);

const relay = await Relay.start({ extraArgs: ["--allow-probes"] });
const browsers = [];
try {
  const tabs = [];
  for (let i = 0; i < PEERS; i++) tabs.push(await openPeer(relay, `bench-coldstart${i}`, browsers));
  const pages = tabs.map((tab) => tab.page);
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.jellyfish.peer_id)));
  for (const page of pages) await joined(page, PEERS - 1);
  const peers = ids.slice(1, 4);
  const links = async () => {
    const infos = await Promise.all(peers.map((p) => pages[0].evaluate((p) => window.jellyfish.peer_info(p), p)));
    return infos.map((i) => (i.connections.length === 0 ? "none" : i.connections.some((a) => a.includes("/webrtc")) ? "direct" : "relayed")).join(", ");
  };
  const series = async (label) => {
    console.log(`${label}: connections to the 3 tabs: ${await links()}`);
    const ms = [];
    for (let i = 0; i < PUSHES; i++) ms.push(Math.round(await pages[0].evaluate(PROBE_PUSH, [peers, MIB])));
    console.log(`${label}: 1 MiB to 3 tabs, ms: ${ms.join(" / ")}`);
  };
  await series("cold (joined, only DHT traffic so far)");
  for (const secs of IDLE) {
    await new Promise((r) => setTimeout(r, secs * 1000));
    await series(`after ${secs} s idle`);
  }
} finally {
  browsers.forEach((b) => b.close());
  relay.stop();
}
