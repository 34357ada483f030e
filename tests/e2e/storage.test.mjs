// Bad input from the browser itself: site storage refused (blocked site data, some private
// modes) or full. The person is told why, nothing panics, and nobody's files suffer.
import assert from "node:assert/strict";
import { test } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { Browser, call, joinedTabs, openPeer, pageErrors, startRelay, status, waitPeer, waitReachable, DIGEST_IN_PAGE, UPLOAD_IN_PAGE } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const MIB = 1024 * 1024;

test("a browser that refuses site storage is told why Jellyfish cannot start; nothing panics", async (t) => {
  const { relay, browsers } = await startRelay(t);
  const browser = await Browser.launch("no-storage");
  browsers.push(browser);
  const page = await browser.newPage();
  // As Chromium answers when the person blocked site data for the page.
  await page.addInitScript(() => {
    IDBFactory.prototype.open = function () {
      throw new DOMException("The user denied permission to access the database.", "UnknownError");
    };
  });
  await page.goto(relay.url);
  await page.waitForFunction(() => /could not start/.test(document.getElementById("banner").textContent), null, { timeout: 30000 });
  const banner = await page.textContent("#banner");
  assert.match(banner, /does not let the page keep data/, banner);
  assert.match(banner, /allow site data for this page/, banner);

  // Someone who types at once is told the same in the form, not "unknown user".
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  const said = await (await page.waitForFunction(() => document.getElementById("auth-error").textContent.trim(), null, { timeout: 30000 })).jsonValue();
  assert.match(said, /could not start.*does not let the page keep data/, said);

  // The only page error is the app's own report of why it stopped: no panic, no unhandled one.
  const others = pageErrors(browsers).filter((e) => !/does not let the page keep data/.test(e));
  assert.deepEqual(others, []);
});


test("a donor whose browser storage is full refuses blocks; the upload goes to others and nothing is lost", async (t) => {
  const { relay, browsers } = await startRelay(t);
  // The full donor: its browser refuses every block write with QuotaExceededError, as
  // Chromium does when the origin's quota is used up, while the tab still donates 512 MiB.
  // (Injected in the page: Chromium's CDP quota override, Storage.overrideQuotaForOrigin, held
  // for a database opened at once but not for the tab's long-lived one.)
  const full = { browser: await Browser.launch("full") };
  browsers.push(full.browser);
  full.page = await full.browser.newPage();
  await full.page.addInitScript(() => {
    for (const method of ["put", "add"]) {
      const write = IDBObjectStore.prototype[method];
      IDBObjectStore.prototype[method] = function (value, key) {
        // A block's bytes: a Blob since session 30, a Uint8Array before.
        if (this.name === "blocks" && (value?.bytes?.size ?? value?.bytes?.byteLength) > 0) {
          window.refusedWrites = (window.refusedWrites || 0) + 1;
          throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
        }
        return write.call(this, value, key);
      };
    }
  });
  await full.page.goto(relay.url);
  await waitPeer(full.page);
  await waitReachable(full.page);
  await full.page.evaluate(() => window.jellyfish.set_donation(512 * 1024 * 1024));

  const donors = [];
  for (const name of ["d1", "d2", "d3"]) donors.push(await openPeer(relay, name, browsers));
  const alice = await openPeer(relay, "alice", browsers);
  await joinedTabs(alice.page, 4);
  assert.deepEqual(await call(alice.page, "sign_up", "alice", PASSWORD), { value: { username: "alice" } });

  const file = await alice.page.evaluate(UPLOAD_IN_PAGE, ["photos.bin", 3 * MIB + 7, 9]);
  assert.equal(file.complete, true, JSON.stringify(file));
  assert.equal(file.copies, 3);
  const held = (await call(full.page, "storage")).value;
  assert.equal(held.blocks, 0, `the full donor holds nothing: ${JSON.stringify(held)}`);
  assert.ok(await full.page.evaluate(() => window.refusedWrites > 0), "the full donor was asked");
  // Its person is told, in the footer every view shows, what the browser said.
  assert.match(held.write_refused, /QuotaExceededError/, JSON.stringify(held));
  await full.page.waitForFunction(() => /refused to store more/.test(document.getElementById("donation-line").textContent), null, { timeout: 15000 });
  assert.match(await full.page.textContent("#donation-line"), /refused to store more .*QuotaExceededError.*lower the donation/);
  assert.deepEqual(await alice.page.evaluate(DIGEST_IN_PAGE, file.id), file.digest);

  // The full tab still works: it logs in and downloads (reading needs no room).
  assert.equal((await status(full.page)).relay.state, "connected");
  assert.deepEqual(await call(full.page, "log_in", "alice", PASSWORD), { value: { username: "alice" } });
  assert.deepEqual(await full.page.evaluate(DIGEST_IN_PAGE, file.id), file.digest);
  assert.deepEqual(pageErrors(browsers), []);
});
