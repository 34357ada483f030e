// The network as people meet it: a fresh browser whose person types the instant the form
// shows, before the tab has heard from any other peer. The answer must come from peers that
// were heard ("Finding the network…" meanwhile), never from a lookup that reached nobody.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, WAITS } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { agreeToDonate, ARTIFACTS, Browser, call, joined, openPeer, pageErrors, startRelay, waitFor } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const OTHER_PASSWORD = "quiet harbour lanterns drift past midnight";
// Rounds of the typed-at-once scenario: 3; CI runs 2 (JELLYFISH_TYPED_ROUNDS) to keep its time.
const ROUNDS = Number(process.env.JELLYFISH_TYPED_ROUNDS ?? 3);

/**
 * Opens the page in a fresh profile and submits the form the moment it shows: no wait for the
 * peer to start, reach the relay or join the DHT. Resolves to "ok" (the file view opened) or
 * the error the form showed, and the busy labels the button went through.
 */
async function typeAtOnce(relay, browsers, name, mode, username, password) {
  const browser = await Browser.launch(name);
  browsers.push(browser);
  const page = await browser.newPage();
  // Records every label of the submit button, to see what the person was told meanwhile.
  await page.addInitScript(() => {
    window.__labels = [];
    setInterval(() => {
      const text = document.getElementById("auth-submit")?.textContent;
      if (text && window.__labels.at(-1) !== text) window.__labels.push(text);
    }, 25);
  });
  await page.goto(relay.url);
  if (mode === "signup") await page.getByRole("radio", { name: "Sign up" }).check();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: mode === "signup" ? "Create account" : "Log in" }).click();
  const outcome = await page.waitForFunction(() => {
    const error = document.getElementById("auth-error").textContent.trim();
    const files = document.getElementById("files-title");
    return error || (files && files.offsetParent !== null ? "ok" : "");
  }, null, { timeout: 90000, polling: 100 });
  const result = await outcome.jsonValue();
  const labels = await page.evaluate(() => window.__labels);
  if (result !== "ok" && !/taken/.test(result)) {
    const seen = await page.evaluate(async () => ({ status: await window.jellyfish.status(), peers: await window.jellyfish.peers() }));
    console.log(`${name}: ${result}\n${JSON.stringify(seen, null, 1)}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, `network-${name}-relay.log`), relay.log);
  }
  return { page, result, labels };
}

test("typed the instant the form shows: log-in and sign-up answer right, every time", async (t) => {
  const { relay, browsers } = await startRelay(t);
  const holders = [];
  for (const name of ["h1", "h2", "h3"]) holders.push(await openPeer(relay, name, browsers));
  await joined(holders[2].page, 3);
  assert.deepEqual(await call(holders[0].page, "sign_up", "alice", PASSWORD), { value: { username: "alice" } });

  for (let round = 1; round <= ROUNDS; round++) {
    const login = await typeAtOnce(relay, browsers, `login-${round}`, "login", "alice", PASSWORD);
    assert.equal(login.result, "ok", `round ${round}: log-in typed at once (labels: ${login.labels})`);
    assert.deepEqual((await call(login.page, "account")).value, { username: "alice" });
    assert.equal(await login.page.isHidden("#key-warning"), true, "the same key as before: no warning");
    if (round === 1) {
      // The browser remembers the account's key: a different one at the next log-in here
      // (an impostor's account, or a rotation done elsewhere) is flagged, once.
      await login.page.evaluate(() => localStorage.setItem("jellyfish.account-key.alice", "00".repeat(32)));
      await call(login.page, "log_out");
      assert.deepEqual(await call(login.page, "log_in", "alice", PASSWORD), { value: { username: "alice", key_changed: true } });
      assert.deepEqual(await call(login.page, "log_in", "alice", PASSWORD), { value: { username: "alice" } });
    }

    const taken = await typeAtOnce(relay, browsers, `taken-${round}`, "signup", "alice", OTHER_PASSWORD);
    assert.match(taken.result, /taken/, `round ${round}: a taken name typed at once is taken (labels: ${taken.labels})`);

    const fresh = await typeAtOnce(relay, browsers, `new-${round}`, "signup", `newcomer-${round}`, PASSWORD);
    assert.equal(fresh.result, "ok", `round ${round}: a free name typed at once (labels: ${fresh.labels})`);
    console.log(`round ${round}: labels seen: log-in ${JSON.stringify(login.labels)}; sign-up ${JSON.stringify(fresh.labels)}`);
  }

  // Every newcomer's account opens elsewhere: sign-up was done only once others held it.
  for (let round = 1; round <= ROUNDS; round++) {
    assert.deepEqual(await call(holders[1].page, "log_in", `newcomer-${round}`, PASSWORD), { value: { username: `newcomer-${round}` } });
  }
  assert.deepEqual(pageErrors(browsers), []);
});

test("a tab alone with the relay says it can't check, never that the account does not exist", WAITS, async (t) => {
  const { relay, browsers } = await startRelay(t);
  const lone = await openPeer(relay, "lone", browsers);
  // Both at once (each waits about 30 s for the network; one after the other took a minute).
  const started = Date.now();
  const loggingIn = call(lone.page, "log_in", "alice", PASSWORD).then((r) => [r, Date.now() - started]);
  const signingUp = call(lone.page, "sign_up", "bob", PASSWORD).then((r) => [r, Date.now() - started]);
  const [[result, waited], [signUp, signUpWaited]] = await Promise.all([loggingIn, signingUp]);
  assert.equal(result.code, "network_unreachable", JSON.stringify(result));
  assert.match(result.error, /can't reach enough peers/);
  assert.ok(waited >= 25000, `it waited for the network (${waited} ms)`);
  assert.equal(signUp.code, "network_unreachable", JSON.stringify(signUp));
  assert.ok(signUpWaited >= 25000, `sign-up waited for the network too (${signUpWaited} ms)`);
});

test("after heavy churn a newcomer knows the live tabs within seconds, and signs up and logs in at once", async (t) => {
  const { relay, browsers } = await startRelay(t);
  const alice = await openPeer(relay, "alice", browsers);
  const donors = [];
  for (const name of ["d1", "d2", "d3", "d4"]) donors.push(await openPeer(relay, name, browsers));
  await joined(alice.page, 4);
  assert.deepEqual(await call(alice.page, "sign_up", "alice", PASSWORD), { value: { username: "alice" } });

  // Churn: five tabs open and close in turn, while three of the first donors close for good.
  for (let i = 1; i <= 5; i++) {
    const passing = await openPeer(relay, `c${i}`, browsers);
    await joined(passing.page, 2);
    if (i <= 3) await donors[i - 1].browser.close();
    await passing.browser.close();
  }
  const live = [await alice.page.evaluate(() => window.jellyfish.peer_id), await donors[3].page.evaluate(() => window.jellyfish.peer_id)];

  // A newcomer: how long until its DHT walks know every live tab, from its page load.
  const browser = await Browser.launch("newcomer");
  browsers.push(browser);
  const opened = Date.now();
  const page = await browser.open(relay.url);
  let knownAfter;
  await waitFor("the newcomer to know every live tab", async () => {
    const found = await page.evaluate(() => window.jellyfish.discover());
    if (live.every((p) => found.includes(p))) knownAfter = Date.now() - opened;
    return knownAfter !== undefined;
  }, { timeout: 60000, interval: 250 });
  console.log(`after churn, a newcomer knew all ${live.length} live tabs ${knownAfter} ms after its page load`);
  assert.ok(knownAfter < 20000, `${knownAfter} ms`);

  // It logs in and signs up at once, from the tabs that are there.
  assert.deepEqual(await call(page, "log_in", "alice", PASSWORD), { value: { username: "alice" } });
  await call(page, "log_out");
  await agreeToDonate(page);
  assert.deepEqual(await call(page, "sign_up", "erin", PASSWORD), { value: { username: "erin" } });
  assert.deepEqual(await call(donors[3].page, "log_in", "erin", PASSWORD), { value: { username: "erin" } });
  assert.deepEqual(pageErrors(browsers), []);
});

test("the first person on a fresh network signs up in their tab; the account goes out when a second tab joins", WAITS, async (t) => {
  const { relay, browsers } = await startRelay(t);
  const first = await openPeer(relay, "first", browsers);
  const page = first.page;
  await page.getByRole("radio", { name: "Sign up" }).check();
  await page.getByLabel("Username").fill("founder");
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  // Alone with the relay: offered at once, in plain words, never "name is free" from silence.
  const offer = page.getByRole("button", { name: "Create it in this tab" });
  await offer.waitFor({ timeout: 15000 });
  assert.match(await page.locator("#first-here").textContent(), /lives only in this tab until someone else opens Jellyfish/);
  await offer.click();
  await page.locator("#files-title").waitFor({ state: "visible", timeout: 30000 });
  assert.equal(await page.isVisible("#alone-notice"), true, "the page says the account lives here alone");
  assert.deepEqual((await call(page, "account")).value, { username: "founder", alone: true });

  // A second tab joins: the account goes out to it, and the notice goes.
  const second = await openPeer(relay, "second", browsers);
  await page.locator("#alone-notice").waitFor({ state: "hidden", timeout: 60000 });
  assert.deepEqual((await call(page, "account")).value, { username: "founder" });

  // The first tab closes for good; a third profile logs in from the second, and the name is taken.
  await first.browser.close();
  const third = await openPeer(relay, "third", browsers);
  await joined(third.page, 1);
  assert.deepEqual(await call(third.page, "log_in", "founder", PASSWORD), { value: { username: "founder" } });
  assert.equal((await call(second.page, "sign_up", "founder", OTHER_PASSWORD)).code, "name_taken");
  assert.deepEqual(pageErrors(browsers), []);
});
