// Foundation scenarios: real relay process, real Chromium profiles, real IndexedDB.
// Run one alone: node --test --test-name-pattern="relay restart" tests/e2e/
import assert from "node:assert/strict";
import { test, WAITS } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { Browser, pageErrors, Relay, startRelay, waitFor, waitPeer, waitReachable } from "./harness.mjs";

async function discoverUntil(page, wanted) {
  return waitFor(`the DHT to reveal ${wanted}`, async () => {
    const found = await page.evaluate(() => window.jellyfish.discover());
    return found.includes(wanted) && found;
  }, { timeout: 45000, interval: 1000 });
}

test("separate profiles find each other through the DHT, say hello, and keep their ids", WAITS, async (t) => {
  const { relay, browsers } = await startRelay(t);

  const names = ["a", "b", "c"];
  for (const name of names) browsers.push(await Browser.launch(name));
  const pages = [];
  for (const browser of browsers) pages.push(await browser.open(relay.url));
  const ids = [];
  for (const page of pages) ids.push((await waitReachable(page)).peer_id);
  assert.equal(new Set(ids).size, names.length, "every profile is its own peer");

  // The page shows this peer's id and its relay connection.
  await pages[0].waitForSelector('#relay-state[data-state="connected"]');
  assert.equal(await pages[0].textContent("#peer-id"), ids[0]);

  // Each peer finds every other through the DHT (nobody is handed an id), then says hello
  // over a relayed connection.
  for (let i = 0; i < pages.length; i++) {
    for (let j = 0; j < pages.length; j++) {
      if (i === j) continue;
      await discoverUntil(pages[i], ids[j]);
      const reply = await pages[i].evaluate((id) => window.jellyfish.hello(id), ids[j]);
      assert.equal(reply.peer_id, ids[j]);
      assert.match(reply.agent, /^jellyfish\//);
    }
  }
  // The greeted page logged the hello it answered.
  await pages[1].waitForFunction(
    (from) => document.getElementById("log").textContent.includes(`hello received peer_id=${from}`),
    ids[0],
  );
  await pages[0].waitForFunction(() => document.querySelectorAll("#peers li:not(.empty)").length >= 2);
  await browsers[0].screenshot(pages[0], "foundation-peer-a");

  // The relay counted what happened: reservations for each peer and circuits between them.
  const health = await relay.json("/health");
  assert.equal(health.status, "ok");
  assert.ok(health.reservations >= names.length, JSON.stringify(health));
  assert.ok(health.circuits_total >= 1, JSON.stringify(health));
  assert.ok(health.bytes_in > 0 && health.bytes_out > 0, JSON.stringify(health));

  // A reloaded tab comes back as the same peer (its identity lives in IndexedDB).
  await pages[0].reload();
  assert.equal(await waitPeer(pages[0]), ids[0]);
  await waitReachable(pages[0]);
  // And another peer can still reach it after the reload.
  await waitFor("hello to the reloaded peer", () =>
    pages[1].evaluate((id) => window.jellyfish.hello(id).then((r) => r.peer_id), ids[0]).catch(() => false),
  { timeout: 30000, interval: 1000 });

  assert.deepEqual(pageErrors(browsers), []);
});

test("the page reports a relay restart and reconnects with backoff", WAITS, async (t) => {
  let relay = await Relay.start();
  const browser = await Browser.launch("restart");
  t.after(() => { browser.close(); relay.cleanup(); });

  const page = await browser.open(relay.url);
  const before = await waitReachable(page);

  // SIGTERM: the relay shuts down cleanly and promptly.
  assert.equal(await relay.stop(), 0, relay.log);
  await page.waitForSelector('#relay-state[data-state="reconnecting"]', { timeout: 20000 });
  assert.match(await page.textContent("#banner"), /Offline/);
  await browser.screenshot(page, "foundation-relay-down");

  // Same data directory and ports: the relay comes back with the same peer id.
  relay = await Relay.start({ dataDir: relay.dataDir, httpPort: relay.httpPort, p2pPort: relay.p2pPort });
  const after = await waitReachable(page, 60000);
  assert.equal(after.peer_id, before.peer_id);
  await page.waitForSelector('#relay-state[data-state="connected"]');
  assert.equal(await page.isHidden("#banner"), true);
});

test("the relay serves the page with security headers and its own addresses", WAITS, async (t) => {
  const relay = await Relay.start();
  t.after(() => relay.cleanup());
  const response = await fetch(relay.url + "/");
  assert.equal(response.status, 200);
  const csp = response.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
  // The page may open WebSockets to this relay only, not to any host.
  const connect = csp.split(";").find((d) => d.trim().startsWith("connect-src")).trim().split(/\s+/);
  assert.ok(connect.includes(`ws://127.0.0.1:${relay.p2pPort}`), csp);
  assert.ok(!connect.includes("ws:") && !connect.includes("wss:") && !connect.includes("*"), csp);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  assert.equal(response.headers.get("cache-control"), "no-cache");
  // The page names the module's content-hashed folder, which browsers keep for good, and
  // which comes in brotli to a browser that accepts it.
  const pkg = (await response.text()).match(/href="(pkg-[0-9a-f]{16})\/jellyfish_peer_bg\.wasm"/)?.[1];
  assert.ok(pkg, "index.html preloads the wasm module from its hashed folder");
  const wasm = await fetch(`${relay.url}/${pkg}/jellyfish_peer_bg.wasm`, { headers: { "accept-encoding": "br, gzip" } });
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
  assert.equal(wasm.headers.get("content-encoding"), "br");
  assert.equal(wasm.headers.get("cache-control"), "public, max-age=31536000, immutable");
  assert.equal(new Uint8Array(await wasm.arrayBuffer()).slice(0, 4).join(), "0,97,115,109", "a wasm module once decoded");
  const info = await relay.json("/api/relay");
  assert.ok(info.addrs.every((a) => a.endsWith(`/p2p/${info.peer_id}`)), JSON.stringify(info));
  assert.ok(info.addrs.some((a) => a.includes(`/tcp/${relay.p2pPort}/ws/`)), JSON.stringify(info));
});
