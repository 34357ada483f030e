// A js-libp2p node for the interoperability test (tests/e2e/interop.test.mjs): the reference
// implementation of libp2p's browser-to-browser `/webrtc` transport, bundled by the test with
// esbuild and loaded into its own page, where it exposes `window.jsPeer` for the test to drive.
//
// It is configured the way a js-libp2p browser app that wants to reach other browsers would be:
// WebSockets to the relay, a circuit-relay-v2 reservation there, and WebRTC listening through it.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { webRTC } from "@libp2p/webrtc";
import { webSockets } from "@libp2p/websockets";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

const PING = "/ipfs/ping/1.0.0";
const decoder = new TextDecoder();

let node;
/** Agent versions that js-libp2p's own identify (run on every new connection) learned, by connection id. */
const identified = new Map();

/**
 * The peer store's record of `peerId` (a string; the store wants a PeerId object, which we
 * take from the connected peers), or null.
 */
async function stored(peerId) {
  const id = typeof peerId === "string" ? node.getPeers().find((p) => p.toString() === peerId) : peerId;
  try {
    return id ? await node.peerStore.get(id) : null;
  } catch {
    return null; // not in the peer store yet
  }
}

/** A peer's agent version, as identify stored it in the peer store (or null). */
async function agentOf(peerId) {
  const agent = (await stored(peerId))?.metadata.get("AgentVersion");
  return agent ? decoder.decode(agent) : null;
}

const describe = (connection) => ({
  id: connection.id,
  peer: connection.remotePeer.toString(),
  remoteAddr: connection.remoteAddr.toString(),
  direction: connection.direction,
  limited: connection.limits != null,
  status: connection.status,
  identified: identified.get(connection.id) ?? null,
});

/**
 * One ping over this very connection (not whichever one the connection manager picks): 32
 * random bytes out, the same 32 back, as @libp2p/ping does it.
 */
async function pingOver(connection) {
  const data = crypto.getRandomValues(new Uint8Array(32));
  let stream;
  try {
    stream = await connection.newStream(PING, { signal: AbortSignal.timeout(10000) });
  } catch (e) {
    throw new Error(`opening a ping stream on connection ${connection.id} (${connection.remoteAddr}): ${e.message}`);
  }
  const start = performance.now();
  const echoed = new Promise((resolve, reject) => {
    let length = 0;
    const timer = setTimeout(() => reject(new Error("no pong within 10 s")), 10000);
    stream.addEventListener("message", (event) => {
      length += event.data.byteLength; // a Uint8Array or a Uint8ArrayList
      if (length >= data.length) {
        clearTimeout(timer);
        resolve(performance.now() - start);
      }
    });
    stream.addEventListener("close", () => {
      if (length < data.length) reject(new Error(`stream closed after ${length} pong bytes`));
    });
  });
  stream.send(data);
  const rtt = await echoed;
  // Close both halves; the remote's FIN_ACK handling is part of what is being tested, but a
  // slow close must not fail a ping that already came back.
  await stream.close({ signal: AbortSignal.timeout(10000) }).catch(() => stream.abort(new Error("close timed out")));
  return rtt;
}

/** Our connection to `peerId` that goes over WebRTC: the one with `id`, or the first. */
function webrtcConnection(peerId, id) {
  const connection = node
    .getConnections()
    .find((c) => c.remotePeer.toString() === peerId && c.remoteAddr.toString().includes("/webrtc")
      && (id === undefined || c.id === id));
  if (!connection) {
    const seen = node.getConnections().map((c) => `${c.id} ${c.remotePeer} ${c.remoteAddr}`);
    throw new Error(`no /webrtc connection ${id ?? ""} to ${peerId}; connections: ${JSON.stringify(seen)}`);
  }
  return connection;
}

window.jsPeer = {
  /**
   * Starts the node, connects to the relay at `relayAddr` and waits for a reservation there,
   * which makes `<relay>/p2p-circuit/webrtc/p2p/<us>` appear among our addresses.
   */
  async start(relayAddr) {
    node = await createLibp2p({
      addresses: {
        // A reservation on that very relay, and WebRTC listening through it.
        listen: [`${relayAddr}/p2p-circuit`, "/webrtc"],
      },
      transports: [
        webSockets(), // @libp2p/websockets 10 dials plain ws:// addresses by default
        circuitRelayTransport(),
        // No STUN: everything is on loopback, and the default public servers are unreachable.
        webRTC({ rtcConfiguration: { iceServers: [] } }),
      ],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // In browsers js-libp2p refuses to dial private and loopback addresses by default.
      connectionGater: { denyDialMultiaddr: () => false },
      services: { identify: identify(), ping: ping() },
    });
    node.addEventListener("peer:identify", (e) => identified.set(e.detail.connection.id, e.detail.agentVersion ?? ""));
    node.addEventListener("connection:open", (e) => console.info(`interop: connection open ${JSON.stringify(describe(e.detail))}`));
    node.addEventListener("connection:close", (e) => console.info(`interop: connection closed ${JSON.stringify(describe(e.detail))}`));
    const started = performance.now();
    for (;;) {
      const addrs = node.getMultiaddrs().map(String);
      const webrtc = addrs.find((a) => a.includes("/p2p-circuit/webrtc"));
      if (webrtc) return { peerId: node.peerId.toString(), addrs, webrtc };
      if (performance.now() - started > 20000) {
        throw new Error(`no relay reservation after 20 s; addresses: ${JSON.stringify(addrs)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  },

  /** Dials `addr` and returns the connection it made (or reused), with how long it took. */
  async dial(addr) {
    const started = performance.now();
    const connection = await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(20000) });
    return { ...describe(connection), ms: performance.now() - started };
  },

  /**
   * Pings `peerId` over our WebRTC connection to it (the one with `connectionId` if given);
   * resolves to the round trip in ms.
   */
  ping(peerId, connectionId) {
    return pingOver(webrtcConnection(peerId, connectionId));
  },

  /**
   * Runs identify on our WebRTC connection to `peerId` (the one with `connectionId` if given)
   * and resolves to what it learned. js-libp2p also runs identify by itself on every new
   * connection, but swallows any error there; run explicitly, a failure says why.
   */
  async identify(peerId, connectionId) {
    const result = await node.services.identify.identify(webrtcConnection(peerId, connectionId), {
      signal: AbortSignal.timeout(10000),
    });
    return { agent: result.agentVersion, protocols: result.protocols };
  },

  /** `peerId`'s agent version, once identify has run (null before). */
  agent: agentOf,

  /** Our own agent version, as we send it in identify. */
  ownAgent() {
    return agentOf(node.peerId);
  },

  /** Every open connection, or only those to `peerId`. */
  connections(peerId) {
    return node
      .getConnections()
      .filter((c) => !peerId || c.remotePeer.toString() === peerId)
      .map(describe);
  },

  /** The libp2p node itself, for poking at from a debugger. */
  get node() {
    return node;
  },

  async stop() {
    await node?.stop();
  },
};
