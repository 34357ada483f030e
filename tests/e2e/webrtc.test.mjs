// Direct WebRTC between tabs: peers that meet through the relay upgrade to a direct
// connection, and blocks then bypass the relay; where no direct path exists, they stay relayed.
import assert from "node:assert/strict";
import { test, WAITS } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { Browser, agreeToDonate, call, joined, pageErrors, startRelay, waitFor, waitReachable } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const MIB = 1024 * 1024;
/**
 * Most data-channel messages a stream may take on average in the 64 MiB transfer below: 6.3
 * measured; 64 KiB frames alone took 17 for each block's stream (2,176 for the 128 blocks).
 */
const MESSAGES_PER_STREAM = 9;

async function open(relay, name, browsers, options) {
  const browser = await Browser.launch(name, options);
  browsers.push(browser);
  const page = await browser.open(relay.url);
  await waitReachable(page);
  await agreeToDonate(page);
  return { browser, page, id: await page.evaluate(() => window.jellyfish.peer_id) };
}

const linkTo = async (page, peer) =>
  (await page.evaluate(() => window.jellyfish.peers())).find((p) => p.peer_id === peer)?.link;

async function relayBytes(relay) {
  const health = await relay.json("/health");
  return health.bytes_in + health.bytes_out;
}

const UPLOAD = async ([size, name]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 997) bytes[i] = i & 0xff;
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  const report = await window.jellyfish.upload(new Blob([bytes]), name, 1);
  return { report, digest };
};

const DOWNLOAD = async (id) => {
  const blob = await window.jellyfish.download(id);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  return { size: bytes.length, digest: Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))) };
};

test("two tabs upgrade to a direct connection and move 64 MiB of blocks past the relay", async (t) => {
  const { relay, browsers } = await startRelay(t);
  const a = await open(relay, "a", browsers);
  const b = await open(relay, "b", browsers);

  // A meets B through the relay, then the connection becomes direct on both sides.
  await joined(a.page, 1);
  const hello = await call(a.page, "hello", b.id);
  assert.ok(hello.value, `hello through the relay: ${hello.error}`);
  await waitFor("A's link to B to be direct", async () => (await linkTo(a.page, b.id)) === "direct",
    { timeout: 20000 });
  await waitFor("B's link to A to be direct", async () => (await linkTo(b.page, a.id)) === "direct");
  await a.page.waitForFunction(() => /1 direct/.test(document.getElementById("peers-known").textContent));

  // 64 MiB of sealed blocks to B and back, one copy each: the relay sees next to nothing.
  assert.equal((await call(a.page, "sign_up", "alice", PASSWORD)).value.username, "alice");
  const before = await relayBytes(relay);
  const channelsBefore = await channelCounts([a.page, b.page]);
  const up = await a.page.evaluate(UPLOAD, [64 * MIB, "big.bin"]);
  assert.equal(up.report.file.copies, 1);
  const down = await a.page.evaluate(DOWNLOAD, up.report.file.id);
  assert.equal(down.size, 64 * MIB);
  assert.deepEqual(down.digest, up.digest);
  const relayed = (await relayBytes(relay)) - before;
  console.log(`relay carried ${relayed} bytes while 128 MiB of blocks moved between the tabs`);
  assert.ok(relayed < 256 * 1024, `the relay carried ${relayed} bytes`);
  assert.ok((await call(b.page, "storage")).value.blocks >= 64, "B holds the blocks");

  // Between two Jellyfish tabs a data channel carries one stream after another
  // (peer-wasm/src/webrtc/reuse.rs): the 64 blocks up and 64 down, their audits and the DHT's
  // requests went over a few channels, not one each.
  const channelsAfter = await channelCounts([a.page, b.page]);
  const opened = channelsAfter.channels - channelsBefore.channels;
  const streams = channelsAfter.streams - channelsBefore.streams;
  console.log(`${streams} streams over ${opened} new data channels`);
  assert.ok(streams >= 128, `${streams} streams`);
  assert.ok(opened * 4 <= streams, `${opened} data channels opened for ${streams} streams`);

  // Between Jellyfish tabs a block goes out in 192 KiB frames, and a stream's small frames
  // share messages (its last bytes and FIN, READY with the FIN; webrtc/browser/channel.rs):
  // with 64 KiB frames, one frame per message and READY after the FIN_ACK, these transfers
  // took 9.3 messages a stream in the cluster benchmark.
  const messages = channelsAfter.messages - channelsBefore.messages;
  console.log(`${messages} data-channel messages for ${streams} streams (${(messages / streams).toFixed(2)} each)`);
  assert.ok(messages <= MESSAGES_PER_STREAM * streams, `${messages} messages for ${streams} streams`);

  assert.deepEqual(pageErrors(browsers), []);
});

/** Data channels opened and streams carried, summed over `pages`. */
async function channelCounts(pages) {
  const statuses = await Promise.all(pages.map((p) => call(p, "status")));
  return {
    channels: statuses.reduce((n, s) => n + s.value.direct_channels_opened, 0),
    streams: statuses.reduce((n, s) => n + s.value.direct_streams, 0),
    messages: statuses.reduce((n, s) => n + s.value.direct_messages_sent, 0),
  };
}

async function noDirectPath(t, relayArgs) {
  const { relay, browsers } = await startRelay(t, { extraArgs: relayArgs });
  // B finds no ICE candidate at all, as behind a firewall that blocks UDP.
  const a = await open(relay, "a", browsers);
  const b = await open(relay, "b", browsers, { webrtc: false });
  await joined(a.page, 1);
  const hello = await call(a.page, "hello", b.id);
  assert.ok(hello.value, `hello through the relay: ${hello.error}`);
  // Whichever side started the upgrade, both learn that it failed, and both pages say so.
  for (const [page, other] of [[a.page, b.id], [b.page, a.id]]) {
    let last;
    await waitFor("the link to fall back to the relay",
      async () => (last = await linkTo(page, other)) === "relayed_fallback", { timeout: 30000 })
      .catch((e) => { throw new Error(`${e.message} (last seen: ${last})`); });
    await page.waitForFunction(() => /1 relayed/.test(document.getElementById("peers-known").textContent));
  }
  assert.equal((await call(a.page, "sign_up", "alice", PASSWORD)).value.username, "alice");
  return { a, b, browsers };
}

test("relayed circuits are for signalling: with no direct path, blocks do not fit through", WAITS, async (t) => {
  // The relay's defaults: 128 KiB and 2 minutes per circuit.
  const { a, browsers } = await noDirectPath(t, []);
  const up = await a.page.evaluate(UPLOAD, [3 * MIB, "small.bin"]).catch((e) => ({ error: e.message }));
  assert.match(up.error || "", /could not be stored/, JSON.stringify(up));
  assert.deepEqual(pageErrors(browsers), []);
});

test("with no direct path and circuits allowed to carry blocks, transfers complete relayed", WAITS, async (t) => {
  const { a, browsers } = await noDirectPath(t, ["--max-circuit-bytes", String(1 << 30)]);
  const up = await a.page.evaluate(UPLOAD, [3 * MIB, "small.bin"]);
  assert.equal(up.report.file.copies, 1);
  const down = await a.page.evaluate(DOWNLOAD, up.report.file.id);
  assert.deepEqual(down.digest, up.digest);
  assert.deepEqual(pageErrors(browsers), []);
});
