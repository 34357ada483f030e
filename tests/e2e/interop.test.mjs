// Interoperability with the reference implementation: a js-libp2p node (libp2p, @libp2p/webrtc,
// @libp2p/circuit-relay-v2, noise, yamux, from npm) in one Chromium and a Jellyfish peer in
// another reach each other over `/webrtc` (libp2p's browser-to-browser transport, signalled
// through a circuit on our relay), each way, and run ping and identify over it.
//
// The js node is tests/interop/js-peer.mjs, bundled here with esbuild and served from a small
// HTTP server of the test's own (the relay's page has a strict CSP, and a page of its own keeps
// the two stacks apart). Every console line of both pages (the Rust peer's tracing and
// js-libp2p's debug log) goes to tests/e2e/artifacts/interop-*.log, for diagnosing a failure.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import * as esbuild from "esbuild";
import { ARTIFACTS, Browser, Relay, WAITS, call, pageErrors, runsHere, test, waitFor, waitPeer, waitReachable } from "./harness.mjs";

// js-libp2p's debug namespaces worth keeping (not the per-message trace ones).
const JS_DEBUG = process.env.JELLYFISH_INTEROP_DEBUG
  || "libp2p:webrtc*,libp2p:circuit-relay*,libp2p:identify*,libp2p:ping*,libp2p:connection-manager*,-*:trace";

let bundleDir;
let server;
let jsPageUrl;

// Bundle the js node once for both tests, and serve it with a page that loads it (not in the
// other lane, where neither test runs).
before(async () => {
  if (!runsHere(WAITS)) return;
  bundleDir = mkdtempSync(join(tmpdir(), "jf-interop-"));
  await esbuild.build({
    entryPoints: [join(import.meta.dirname, "..", "interop", "js-peer.mjs")],
    bundle: true,
    format: "esm",
    platform: "browser",
    outfile: join(bundleDir, "js-peer.js"),
    logLevel: "warning",
  });
  const files = {
    "/": ["text/html", "<!doctype html><meta charset=utf-8><link rel=icon href=data:,><title>js-libp2p peer</title>"
      + '<script type="module" src="/js-peer.js"></script>'],
    "/js-peer.js": ["text/javascript", readFileSync(join(bundleDir, "js-peer.js"))],
  };
  server = createServer((request, response) => {
    const file = files[new URL(request.url, "http://x").pathname];
    if (!file) return response.writeHead(404).end();
    response.writeHead(200, { "content-type": file[0], "cache-control": "no-store" }).end(file[1]);
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  jsPageUrl = `http://127.0.0.1:${server.address().port}/`;
});

after(() => {
  server?.close();
  server?.closeAllConnections();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

/** Keeps every console line and page error of `page`, stamped with ms since the test began. */
function recordConsole(page, lines, label, since) {
  const stamp = () => String(Date.now() - since).padStart(6);
  page.on("console", (m) => lines.push(`${stamp()} ${label} ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => lines.push(`${stamp()} ${label} PAGEERROR: ${e.stack || e.message}`));
}

/**
 * A relay, a reachable Jellyfish tab and a started js-libp2p tab, each in its own Chromium
 * profile; all stopped (and the pages' logs written out) when `t` ends.
 */
async function setUp(t, label) {
  const since = Date.now();
  const lines = [];
  const relay = await Relay.start();
  const browsers = [];
  t.after(() => {
    browsers.forEach((b) => b.close());
    relay.cleanup();
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, `interop-${label}.log`), `${lines.join("\n")}\n`);
  });
  const relayAddr = (await relay.json("/api/relay")).addrs[0];

  const jfBrowser = await Browser.launch("jellyfish");
  browsers.push(jfBrowser);
  const jfPage = await jfBrowser.newPage();
  recordConsole(jfPage, lines, "jellyfish", since);
  await jfPage.goto(relay.url);
  const jfId = await waitPeer(jfPage);
  await waitReachable(jfPage);

  const jsBrowser = await Browser.launch("js-libp2p");
  browsers.push(jsBrowser);
  const jsPage = await jsBrowser.newPage();
  recordConsole(jsPage, lines, "js-libp2p", since);
  // js-libp2p's logger reads `localStorage.debug` when the bundle loads.
  await jsPage.addInitScript((debug) => localStorage.setItem("debug", debug), JS_DEBUG);
  await jsPage.goto(jsPageUrl);
  await jsPage.waitForFunction(() => window.jsPeer !== undefined, null, { timeout: 30000 });
  const js = await jsPage.evaluate((addr) => window.jsPeer.start(addr), relayAddr);
  const jsAgent = await jsPage.evaluate(() => window.jsPeer.ownAgent());
  t.diagnostic(`set up in ${Date.now() - since} ms; js-libp2p listens at ${js.webrtc}; its agent: ${jsAgent}`);

  return { relay, relayAddr, browsers, jfBrowser, jfPage, jfId, jsBrowser, jsPage, jsId: js.peerId, jsAgent };
}

const jfInfo = async (page, peer) => {
  const info = await call(page, "peer_info", peer);
  if (info.error) throw new Error(`peer_info: ${info.error}`);
  return info.value;
};

/**
 * What Jellyfish knows of the js peer once identify and ping have run over a `/webrtc`
 * connection; the last value seen goes into the timeout message.
 */
async function jellyfishSeesJs(env, timeout = 20000) {
  let last;
  try {
    return await waitFor("Jellyfish to identify and ping js-libp2p over /webrtc", async () => {
      last = await jfInfo(env.jfPage, env.jsId);
      return last.connections.some((a) => a.includes("/webrtc"))
        && last.agent === env.jsAgent
        && typeof last.rtt_ms === "number"
        && last;
    }, { timeout });
  } catch (e) {
    throw new Error(`${e.message}; last peer_info: ${JSON.stringify(last)}`);
  }
}

/** js-libp2p's WebRTC connections to Jellyfish. */
const jsWebrtcConnections = async (env) =>
  (await env.jsPage.evaluate((peer) => window.jsPeer.connections(peer), env.jfId))
    .filter((c) => c.remoteAddr.includes("/webrtc"));

/**
 * js-libp2p identifies Jellyfish over its WebRTC connection `connectionId`, explicitly, so that
 * a failure says why; resolves to Jellyfish's agent.
 */
async function jsIdentifiesJellyfish(env, connectionId) {
  const result = await env.jsPage.evaluate(([peer, id]) => window.jsPeer.identify(peer, id), [env.jfId, connectionId]);
  assert.match(result.agent, /^jellyfish\//);
  assert.ok(result.protocols.includes("/ipfs/ping/1.0.0"), `Jellyfish's protocols: ${result.protocols}`);
  assert.match(await env.jsPage.evaluate((peer) => window.jsPeer.agent(peer), env.jfId), /^jellyfish\//);
  return result.agent;
}

/**
 * The identify js-libp2p runs by itself the moment a connection opens succeeded on
 * `connectionId`. js-libp2p swallows its errors, so only the missing result shows; this is
 * what a js-libp2p app relies on, and it races the connection's set-up on the other side.
 */
async function jsIdentifiedByItself(env, connectionId) {
  let last;
  // js-libp2p gives identify 5 s; after that it has failed for good.
  await waitFor(`js-libp2p's own identify on connection ${connectionId}`, async () => {
    last = (await env.jsPage.evaluate((peer) => window.jsPeer.connections(peer), env.jfId))
      .find((c) => c.id === connectionId);
    return last?.identified;
  }, { timeout: 6000 }).catch((e) => { throw new Error(`${e.message}; connection: ${JSON.stringify(last)}`); });
  assert.match(last.identified, /^jellyfish\//);
}

/** js-libp2p pings Jellyfish over its WebRTC connection `connectionId`; resolves to the rtt. */
async function jsPingsJellyfish(env, connectionId) {
  const rtt = await env.jsPage.evaluate(([peer, id]) => window.jsPeer.ping(peer, id), [env.jfId, connectionId]);
  assert.equal(typeof rtt, "number");
  return rtt;
}

// Each direction runs its checks as steps, so that one failing still lets the others run and
// report: a failure then says exactly which part of the interoperation broke.

test("js-libp2p dials Jellyfish over /webrtc through the relay; ping and identify work both ways", WAITS, async (t) => {
  const env = await setUp(t, "js-dials-jellyfish");
  const target = `${env.relayAddr}/p2p-circuit/webrtc/p2p/${env.jfId}`;
  let connection;

  await t.test("js-libp2p dials Jellyfish's /webrtc address and gets a WebRTC connection", async (s) => {
    // js-libp2p dials the circuit, signals over it and hands back the WebRTC connection.
    connection = await env.jsPage.evaluate((addr) => window.jsPeer.dial(addr), target);
    s.diagnostic(`dialled in ${Math.round(connection.ms)} ms: ${connection.remoteAddr}`);
    assert.equal(connection.peer, env.jfId);
    assert.match(connection.remoteAddr, /\/webrtc/);
    assert.equal(connection.limited, false, "a WebRTC connection has no relay limits");
  });

  await t.test("js-libp2p pings Jellyfish over it", async (s) => {
    s.diagnostic(`rtt ${(await jsPingsJellyfish(env, connection?.id)).toFixed(1)} ms`);
  });

  await t.test("js-libp2p's own identify succeeded on it", async () => {
    await jsIdentifiedByItself(env, connection?.id);
  });

  await t.test("js-libp2p identifies Jellyfish over it", async (s) => {
    s.diagnostic(`agent ${await jsIdentifiesJellyfish(env, connection?.id)}`);
  });

  await t.test("Jellyfish identifies and pings js-libp2p over it", async (s) => {
    const info = await jellyfishSeesJs(env);
    s.diagnostic(`connections ${info.connections}, link ${info.link}, rtt ${info.rtt_ms} ms`);
    assert.equal(info.link, "direct");
  });

  await t.test("the Jellyfish page reports no errors", () => {
    assert.deepEqual(pageErrors([env.jfBrowser]), []);
  });
});

test("Jellyfish dials js-libp2p over /webrtc through the relay; ping and identify work both ways", WAITS, async (t) => {
  const env = await setUp(t, "jellyfish-dials-js");
  const target = `${env.relayAddr}/p2p-circuit/webrtc/p2p/${env.jsId}`;

  await t.test("Jellyfish dials js-libp2p's /webrtc address", async (s) => {
    const started = Date.now();
    const connected = await call(env.jfPage, "connect", target);
    assert.equal(connected.error, undefined, `Jellyfish's dial of ${target} failed`);
    assert.equal(connected.value, env.jsId);
    s.diagnostic(`dialled in ${Date.now() - started} ms`);
  });

  await t.test("Jellyfish identifies and pings js-libp2p over it", async (s) => {
    const info = await jellyfishSeesJs(env);
    s.diagnostic(`connections ${info.connections}, link ${info.link}, rtt ${info.rtt_ms} ms`);
    assert.equal(info.link, "direct");
  });

  let inbound = [];
  await t.test("js-libp2p holds one inbound WebRTC connection from Jellyfish", async (s) => {
    // Settle first: a second, redundant WebRTC dial would show up within a second or so.
    await new Promise((r) => setTimeout(r, 1500));
    inbound = await jsWebrtcConnections(env);
    s.diagnostic(`js-libp2p's /webrtc connections to Jellyfish: ${JSON.stringify(inbound)}`);
    assert.ok(inbound.length > 0, "js-libp2p has a /webrtc connection from Jellyfish");
    assert.ok(inbound.every((c) => c.direction === "inbound"));
    assert.equal(inbound.length, 1, "one dial, one WebRTC connection");
  });

  // Over every WebRTC connection js-libp2p holds (there should be one), streams that js-libp2p
  // opens must work as well as those Jellyfish opens: first the identify js-libp2p ran by
  // itself the moment the connection opened, then a ping and an identify of the test's own.
  await t.test("js-libp2p's own identify succeeded on it", async (s) => {
    assert.ok(inbound.length > 0, "no connection");
    const failed = [];
    for (const c of inbound) await jsIdentifiedByItself(env, c.id).catch((e) => failed.push(e.message));
    s.diagnostic(`${inbound.length - failed.length} of ${inbound.length} connections identified`);
    assert.deepEqual(failed, []);
  });

  await t.test("js-libp2p pings Jellyfish back over it", async (s) => {
    assert.ok(inbound.length > 0, "no connection to ping over");
    for (const c of inbound) s.diagnostic(`connection ${c.id}: rtt ${(await jsPingsJellyfish(env, c.id)).toFixed(1)} ms`);
  });

  await t.test("js-libp2p identifies Jellyfish over it", async (s) => {
    assert.ok(inbound.length > 0, "no connection to identify over");
    for (const c of inbound) s.diagnostic(`connection ${c.id}: agent ${await jsIdentifiesJellyfish(env, c.id)}`);
  });

  await t.test("the Jellyfish page reports no errors", () => {
    assert.deepEqual(pageErrors([env.jfBrowser]), []);
  });
});
