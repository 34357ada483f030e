// The end-to-end harness: starts the real relay and real headless Chromium processes, each
// with its own profile, hands pages to the scenarios, and stops every process it started by PID,
// whatever happens to the test.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test as nodeTest } from "node:test";
import { chromium } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
const TARGET_DIR = process.env.CARGO_TARGET_DIR || join(ROOT, "target");
const RELAY_BIN = join(TARGET_DIR, "release", "jellyfish-relay");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const ARTIFACTS = join(ROOT, "tests", "e2e", "artifacts");

const started = new Set(); // every child process still running
const launched = []; // every browser launched by this process, in order
/** Console lines kept per tab, printed when a scenario fails: what the peers said last. */
const TAIL = 150;

/**
 * CI runs the scenarios in two lanes at once (scripts/test.sh), each in its own loopback
 * namespace: `waits` holds those that spend most of their time waiting on the network's own
 * timers (a 30 s lookup timeout, a reconnect backoff, relayed circuits) with two or three tabs,
 * keeping the two cores 15 to 55 % busy; `busy` holds every other. JELLYFISH_E2E_LANE names the
 * lane this process runs; unset, it runs every scenario (by hand).
 */
const LANE = process.env.JELLYFISH_E2E_LANE;
/** The options of a scenario in the `waits` lane: `test(name, WAITS, async (t) => ...)`. */
export const WAITS = Object.freeze({ lane: "waits" });
if (LANE && LANE !== "waits" && LANE !== "busy") {
  throw new Error(`JELLYFISH_E2E_LANE is "waits", "busy" or unset, not "${LANE}"`);
}

/** Whether a scenario with `options` (its lane) runs in this process. */
export function runsHere({ lane = "busy" } = {}) {
  return !LANE || lane === LANE;
}

/**
 * node:test's `test`, which also prints the last console lines of every tab the scenario
 * launched when it fails: the peers' own account of a failure a clean-clone CI run met once.
 * Options may name the scenario's lane (`{ lane: "waits" }`; the default is `busy`): a
 * scenario of another lane than JELLYFISH_E2E_LANE's is not registered at all.
 */
export function test(name, ...rest) {
  const scenario = rest.pop();
  const { lane, ...options } = rest[0] ?? {};
  if (!runsHere({ lane })) return undefined;
  return nodeTest(name, options, async (t) => {
    const from = launched.length;
    try {
      return await scenario(t);
    } catch (error) {
      for (const browser of launched.slice(from)) {
        console.log(`--- the last ${browser.tail.length} console lines of tab ${browser.name}:`);
        for (const line of browser.tail) console.log(line);
      }
      throw error;
    }
  });
}

// Tabs talk WebRTC to each other, and Chromium offers every interface it sees as an ICE
// candidate: tests must run where loopback is the only network (scripts/isolated.sh).
const outside = Object.entries(networkInterfaces())
  .filter(([, addrs]) => addrs.some((a) => !a.internal))
  .map(([name]) => name);
if (outside.length && !process.env.JELLYFISH_ALLOW_NETWORK) {
  throw new Error(
    `the e2e tests and benchmarks send traffic to loopback only, but this process sees ${outside.join(", ")}: ` +
      "run them through scripts/isolated.sh (a loopback-only network namespace), " +
      "or set JELLYFISH_ALLOW_NETWORK=1 to accept the risk",
  );
}

/** Chromium flags that let WebRTC between tabs use loopback candidates. */
const WEBRTC_ON_LOOPBACK = [
  "--allow-loopback-in-peer-connection",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
];

function killGroup(child, signal = "SIGKILL") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // detached: the child leads its own process group
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

function killAll() {
  for (const child of started) killGroup(child);
  started.clear();
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => { killAll(); process.exit(130); });
}

function track(child, name) {
  started.add(child);
  child.on("exit", () => started.delete(child));
  child.name = name;
  return child;
}

function exited(child) {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode);
    else child.once("exit", (code) => done(code));
  });
}

/** A TCP port that was free a moment ago, on loopback. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/**
 * `count()` once it gives the same number twice `interval` ms apart (within `timeout`): what the
 * holders keep, once the frees a save leaves running in the background (the previous index)
 * are done.
 */
export async function settled(what, count, { timeout = 30000, interval = 500 } = {}) {
  const deadline = Date.now() + timeout;
  let last = await count();
  for (;;) {
    await new Promise((r) => setTimeout(r, interval));
    const now = await count();
    if (now === last) return now;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${last} then ${now}`);
    last = now;
  }
}

export async function waitFor(what, check, { timeout = 30000, interval = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The relay as a real process, on free ports, with its own data directory. */
export class Relay {
  constructor({ dataDir, httpPort, p2pPort, extraArgs = [], logLevel = "info" } = {}) {
    this.dataDir = dataDir;
    this.httpPort = httpPort;
    this.p2pPort = p2pPort;
    this.extraArgs = extraArgs;
    this.logLevel = logLevel;
    this.log = "";
  }

  static async start(options = {}) {
    const relay = new Relay({
      dataDir: options.dataDir || mkdtempSync(join(tmpdir(), "jf-relay-")),
      httpPort: options.httpPort || (await freePort()),
      p2pPort: options.p2pPort || (await freePort()),
      extraArgs: options.extraArgs,
      logLevel: options.logLevel,
    });
    await relay.launch();
    return relay;
  }

  get url() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  async launch() {
    this.process = track(
      spawn(
        RELAY_BIN,
        [
          "--http-addr", `127.0.0.1:${this.httpPort}`,
          "--listen", `/ip4/127.0.0.1/tcp/${this.p2pPort}/ws`,
          "--data-dir", this.dataDir,
          "--www-dir", join(ROOT, "www"),
          ...this.extraArgs,
        ],
        { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: this.logLevel } },
      ),
      "relay",
    );
    const append = (chunk) => { this.log += chunk; };
    this.process.stdout.on("data", append);
    this.process.stderr.on("data", append);
    await waitFor("the relay's /api/relay to list an address", async () => {
      if (this.process.exitCode !== null) throw new Error(`relay exited:\n${this.log}`);
      const info = await this.json("/api/relay");
      return info.addrs.length > 0 && info;
    });
  }

  async json(path) {
    const response = await fetch(this.url + path);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  /** Stops the relay with SIGTERM and returns its exit code (it must shut down cleanly). */
  async stop({ timeout = 10000 } = {}) {
    if (!this.process) return null;
    killGroup(this.process, "SIGTERM");
    const code = await Promise.race([
      exited(this.process),
      new Promise((r) => setTimeout(() => r("timeout"), timeout)),
    ]);
    killGroup(this.process);
    return code;
  }

  cleanup() {
    if (this.process) killGroup(this.process);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A real headless Chromium with its own profile (so its own IndexedDB), driven over CDP. */
export class Browser {
  /**
   * `webrtc: false` launches a browser that can make no direct connection (it gathers no ICE
   * candidate on a loopback-only network), as behind a firewall that blocks UDP.
   */
  static async launch(name, { webrtc = true } = {}) {
    const self = new Browser();
    self.name = name;
    self.webrtc = webrtc;
    self.profile = mkdtempSync(join(tmpdir(), `jf-profile-${name}-`));
    self.process = track(
      spawn(
        CHROMIUM,
        [
          "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
          ...(webrtc ? WEBRTC_ON_LOOPBACK : []), `--user-data-dir=${self.profile}`, "about:blank",
        ],
        { detached: true, stdio: ["ignore", "ignore", "pipe"] },
      ),
      `chromium-${name}`,
    );
    const endpoint = await new Promise((done, fail) => {
      let seen = "";
      const timer = setTimeout(() => fail(new Error(`chromium ${name} did not start:\n${seen}`)), 30000);
      self.process.stderr.on("data", (chunk) => {
        seen += chunk;
        const match = seen.match(/DevTools listening on (ws:\/\/\S+)/);
        if (match) { clearTimeout(timer); done(match[1]); }
      });
      self.process.on("exit", () => fail(new Error(`chromium ${name} exited:\n${seen}`)));
    });
    self.browser = await chromium.connectOverCDP(endpoint);
    self.context = self.browser.contexts()[0];
    self.errors = [];
    self.tail = [];
    self.born = Date.now();
    launched.push(self);
    return self;
  }

  /** Opens the Jellyfish page and waits until its peer has started. */
  async open(url) {
    const page = await this.newPage();
    await page.goto(url);
    await waitPeer(page);
    return page;
  }

  /**
   * A new tab with the harness's hooks (the fake microphone for WebRTC, page errors collected
   * in `errors`) and nothing loaded yet: for pages other than Jellyfish's own.
   */
  async newPage() {
    const page = await this.context.newPage();
    // Chromium gathers loopback ICE candidates only while the page holds a media permission:
    // the harness (never the product) takes a fake microphone and drops it at once.
    if (this.webrtc) {
      await page.addInitScript(() => {
        navigator.mediaDevices?.getUserMedia({ audio: true })
          .then((stream) => stream.getTracks().forEach((track) => track.stop()))
          .catch(() => {});
      });
    }
    page.on("pageerror", (e) => {
      this.errors.push(`${this.name}: ${e.message}`);
      this.remember(`page error: ${e.message}`);
    });
    page.on("console", (m) => {
      if (m.type() === "error") this.errors.push(`${this.name}: ${m.text()}`);
      this.remember(m.text());
    });
    // JELLYFISH_PAGE_LOG=1 echoes every tab's console, for debugging a failing scenario: each
    // line stamped with the wall clock (one axis for every tab) and without tracing's styling.
    if (process.env.JELLYFISH_PAGE_LOG) {
      page.on("console", (m) => {
        const plain = m.text().replace(/%c/g, "").replace(/\s+color: .*$/s, "");
        console.error(`${new Date().toISOString().slice(11, 23)} [${this.name}] ${plain}`);
      });
    }
    return page;
  }

  /** Keeps one console line, stamped with seconds since launch, without tracing's styling. */
  remember(text) {
    const plain = text.replace(/%c/g, "").replace(/\s+color: .*$/s, "");
    this.tail.push(`${((Date.now() - this.born) / 1000).toFixed(1)} s ${plain}`);
    if (this.tail.length > TAIL) this.tail.shift();
  }

  async screenshot(page, label) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `${label}.png`), fullPage: true });
  }

  close() {
    try { this.browser?.close().catch(() => {}); } catch { /* the process is killed anyway */ }
    killGroup(this.process);
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/** Waits for `window.jellyfish` and returns the peer id. */
export async function waitPeer(page) {
  await page.waitForFunction(() => window.jellyfish !== undefined, null, { timeout: 30000 });
  return page.evaluate(() => window.jellyfish.peer_id);
}

export const status = (page) => page.evaluate(() => window.jellyfish.status());

/** Waits until the page's peer is connected to the relay and holds a reservation. */
export async function waitReachable(page, timeout = 30000) {
  return waitFor("the peer to connect and reserve a circuit", async () => {
    const s = await status(page);
    return s.relay.state === "connected" && s.reservation && s;
  }, { timeout });
}

/**
 * Runs a peer method in the page; resolves to `{ value }`, or `{ error: message }` plus the
 * error's stable `code` where it has one.
 */
export function call(page, method, ...args) {
  return page.evaluate(
    ([method, args]) => window.jellyfish[method](...args).then(
      (value) => ({ value }),
      (e) => (e.code ? { error: e.message, code: e.code } : { error: e.message }),
    ),
    [method, args],
  );
}

/**
 * Starts a relay for test `t` and the list its browsers go in; both are stopped and removed
 * when the test ends, whatever happens to it.
 */
export async function startRelay(t, options) {
  const relay = await Relay.start(options);
  const browsers = [];
  t.after(() => { browsers.forEach((b) => b.close()); relay.cleanup(); });
  return { relay, browsers };
}

/** Launches a profile, opens the page and waits until its peer is reachable. */
export async function openPeer(relay, name, browsers, { donate = true, query = "" } = {}) {
  const browser = await Browser.launch(name);
  browsers.push(browser);
  const page = await browser.open(relay.url + query);
  await waitReachable(page);
  // A tab donates only once its person agrees; most tests agree to the suggested amount
  // straight away (the app test answers the page's question as a person would).
  if (donate) await agreeToDonate(page);
  return { browser, page };
}

/** Agrees, as the tab's person, to donate the amount the page suggests. */
export async function agreeToDonate(page) {
  await page.evaluate(async () => {
    const storage = await window.jellyfish.storage();
    if (!storage.agreed) await window.jellyfish.set_donation(storage.suggested);
  });
}

/** Waits until a page's DHT lookups see at least `count` other peers (relays included). */
export async function joined(page, count) {
  await waitFor(`the DHT to show ${count} peers`, async () => {
    const found = await page.evaluate(() => window.jellyfish.discover());
    return found.length >= count;
  }, { timeout: 45000, interval: 500 });
}

/**
 * Waits until a page's DHT lookups see at least `count` other tabs: the page's relay and its
 * fellows (from `/api/relay`) do not count, so a test that needs every donor known before it
 * places blocks is not satisfied by the relay and all but one donor.
 */
export async function joinedTabs(page, count) {
  await waitFor(`the DHT to show ${count} other tabs`, async () => page.evaluate(async (count) => {
    const relay = await (await fetch("/api/relay", { cache: "no-store" })).json();
    const relays = [relay.peer_id, ...(relay.fellows || []).map((a) => a.split("/p2p/").pop())];
    const found = await window.jellyfish.discover();
    return found.filter((p) => !relays.includes(p)).length >= count;
  }, count), { timeout: 45000, interval: 500 });
}

/** Page errors other than the known harmless one from libp2p's websys handlers. */
export function pageErrors(browsers) {
  return browsers.flatMap((b) => b.errors)
    .filter((e) => !/closure invoked recursively or after being dropped/.test(e));
}

/**
 * Drops files made in the page (`[name, size, seed]` each, deterministic bytes) onto the drop
 * zone through real drag events; `beforeDrop` runs while the overlay shows.
 */
export async function dropFiles(page, files, beforeDrop) {
  const transfer = await page.evaluateHandle((files) => {
    const data = new DataTransfer();
    for (const [name, size, seed] of files) {
      const bytes = new Uint8Array(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
      data.items.add(new File([bytes], name, { type: "application/octet-stream" }));
    }
    return data;
  }, files);
  for (const type of ["dragenter", "dragover"]) {
    await page.dispatchEvent("#drop-zone", type, { dataTransfer: transfer });
  }
  await page.waitForSelector("#drop-zone.dragging .drop-overlay", { state: "visible" });
  if (beforeDrop) await beforeDrop();
  await page.dispatchEvent("#drop-zone", "drop", { dataTransfer: transfer });
}

/**
 * Run in a page: makes `size` deterministic bytes, uploads them as `name` and resolves to the
 * file's id, copies, completeness and the bytes' SHA-256 (so nothing large crosses CDP).
 */
export const UPLOAD_IN_PAGE = async ([name, size, seed]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  const report = await window.jellyfish.upload(new Blob([bytes]), name);
  return { id: report.file.id, copies: report.file.copies, complete: report.complete, digest };
};

/** Run in a page: downloads file `id` and resolves to the SHA-256 of its bytes. */
export const DIGEST_IN_PAGE = async (id) => {
  const bytes = new Uint8Array(await (await window.jellyfish.download(id)).arrayBuffer());
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
};
