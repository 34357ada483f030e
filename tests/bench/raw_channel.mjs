// The benchmarks' transport baseline: a raw RTCDataChannel between two tabs in plain JS, with
// no libp2p and no Jellyfish. Both tabs are fresh profiles launched beside whatever else runs,
// so the baseline sees the same machine but shares no browser with a peer.
import { Browser } from "../e2e/harness.mjs";
import { MIB, median } from "./common.mjs";

/**
 * Plain JS for a page: one RTCDataChannel to another tab, with no libp2p and no Jellyfish,
 * signalled through the test runner (the whole SDP, candidates included, in one exchange).
 */
const RAW_CHANNEL = () => {
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") resolve();
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
  });
  // Chromium offers loopback candidates only to a page that holds a media permission.
  const takeMicrophone = async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    stream.getTracks().forEach((track) => track.stop());
  };
  window.rawChannel = {
    async offer() {
      await takeMicrophone();
      this.pc = new RTCPeerConnection({ iceServers: [] });
      this.channel = this.pc.createDataChannel("raw");
      this.channel.binaryType = "arraybuffer";
      this.open = new Promise((resolve) => { this.channel.onopen = resolve; });
      await this.pc.setLocalDescription(await this.pc.createOffer());
      await gathered(this.pc);
      return this.pc.localDescription.toJSON();
    },
    async answer(offer) {
      await takeMicrophone();
      this.pc = new RTCPeerConnection({ iceServers: [] });
      // The receiving side: a text message announces how many bytes follow, and once they
      // have all arrived it answers "done", so the sender times delivery, not queueing.
      this.pc.ondatachannel = ({ channel }) => {
        channel.binaryType = "arraybuffer";
        let expected = 0;
        let received = 0;
        channel.onmessage = ({ data }) => {
          if (typeof data === "string") { expected = Number(data); received = 0; return; }
          received += data.byteLength;
          if (received === expected) channel.send("done");
        };
      };
      await this.pc.setRemoteDescription(offer);
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      await gathered(this.pc);
      return this.pc.localDescription.toJSON();
    },
    async accept(answer) {
      await this.pc.setRemoteDescription(answer);
      await this.open;
    },
    // `bytes` in messages of `size` bytes, at most 4 MiB queued; resolves to the milliseconds
    // until the other tab has received them all.
    async send(bytes, size) {
      const { channel } = this;
      const message = new Uint8Array(size);
      channel.bufferedAmountLowThreshold = 1 << 20;
      const done = new Promise((resolve) => channel.addEventListener("message", resolve, { once: true }));
      const t = performance.now();
      channel.send(String(bytes));
      for (let sent = 0; sent < bytes; sent += message.length) {
        if (channel.bufferedAmount > 4 << 20) {
          await new Promise((resolve) => channel.addEventListener("bufferedamountlow", resolve, { once: true }));
        }
        channel.send(message);
      }
      await done;
      return performance.now() - t;
    },
  };
};

/**
 * Opens a raw data channel from `sender` to `receiver` (any two pages of the relay's origin,
 * Jellyfish's own included: the channel is a connection of its own). Afterwards
 * `sender.evaluate(([n, m]) => window.rawChannel.send(n, m), [bytes, messageBytes])` times
 * `bytes` delivered.
 */
export async function rawChannelBetween(sender, receiver) {
  await sender.evaluate(RAW_CHANNEL);
  await receiver.evaluate(RAW_CHANNEL);
  const offer = await sender.evaluate(() => window.rawChannel.offer());
  const answer = await receiver.evaluate((o) => window.rawChannel.answer(o), offer);
  await sender.evaluate((x) => window.rawChannel.accept(x), answer);
}

/**
 * Warm throughput of a raw data channel between two fresh profiles, launched beside the idle
 * cluster so that the baseline sees the same machine but shares no browser with a peer.
 */
export async function rawChannelBaseline(relay, { mib, runs, warmUp, messageBytes = 16384 }) {
  const browsers = [];
  try {
    const pages = [];
    for (const name of ["raw-a", "raw-b"]) {
      const browser = await Browser.launch(`bench-${name}`);
      browsers.push(browser);
      const page = await browser.newPage();
      // Any page of the relay's origin will do: loopback HTTP is a secure context (so the
      // microphone can be asked for), and no Jellyfish peer starts in it.
      await page.goto(`${relay.url}/health`);
      pages.push(page);
    }
    const [a, b] = pages;
    await rawChannelBetween(a, b);
    await a.evaluate(([n, m]) => window.rawChannel.send(n, m), [warmUp, messageBytes]);
    const ms = [];
    for (let i = 0; i < runs; i++) {
      ms.push(await a.evaluate(([n, m]) => window.rawChannel.send(n, m), [mib * MIB, messageBytes]));
    }
    return { mib, message_bytes: messageBytes, ms, mib_s: mib / (median(ms) / 1000) };
  } finally {
    browsers.forEach((b) => b.close());
  }
}

