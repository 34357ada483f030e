// Sharing by link, as people do it: the owner drops a file, opens its Share dialog and makes
// a link; a fresh profile with no account opens the link and downloads the file bit-exact
// through the page's button; the relay's request log shows the link's fragment never reached
// it; the owner stops sharing and the same link then says it no longer works, while the owner
// still reads the file. A cut-short link and an expired one each get their own message.
// axe-core checks the Share dialog and the shared-file page; screenshots at 1280 and 360 px.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import {
  Browser, DIGEST_IN_PAGE, call, dropFiles, joinedTabs, openPeer, pageErrors, startRelay, waitPeer, waitReachable,
} from "./harness.mjs";
import { axe, shots } from "./look.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const MIB = 1024 * 1024;
const FILE = ["minutes.txt", 2 * MIB + 11, 21];

const pattern = ([, size, seed]) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** A fresh profile, no account, opened at `url`, once it knows `tabs` other tabs. */
async function guest(name, url, browsers, tabs) {
  const browser = await Browser.launch(name);
  browsers.push(browser);
  const page = await browser.newPage();
  await page.goto(url);
  await waitPeer(page);
  await waitReachable(page);
  await joinedTabs(page, tabs);
  return { browser, page };
}

/** The text of the shared-file page's error, once there is one. */
async function sharedError(page) {
  await page.waitForFunction(() => document.getElementById("shared-error").textContent !== "", null, { timeout: 60000 });
  return page.$eval("#shared-error", (e) => e.textContent);
}

test("a share link opens the file bit-exact with no account; the relay never sees it; stopping sharing ends it", async (t) => {
  const { relay, browsers } = await startRelay(t, { logLevel: "info,jellyfish_relay::http=debug" });
  for (const name of ["d1", "d2", "d3", "d4"]) await openPeer(relay, name, browsers);
  const owner = await openPeer(relay, "owner", browsers);
  const { page } = owner;
  await joinedTabs(page, 4);
  await page.getByRole("radio", { name: "Sign up" }).check();
  await page.getByLabel("Username").fill("olga");
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "My files" }).waitFor({ timeout: 60000 });
  await dropFiles(page, [FILE]);
  await page.waitForFunction(() => document.querySelector(".transfer[data-state=done]"), null, { timeout: 120000 });

  // The Share dialog: a link that works until sharing stops.
  await page.getByRole("button", { name: `Share ${FILE[0]}` }).click();
  await page.getByLabel("The link works").selectOption("0");
  await axe(page, "the Share dialog");
  await page.getByRole("button", { name: "Create link" }).click();
  await page.waitForFunction(() => document.getElementById("share-url").value !== "", null, { timeout: 60000 });
  const link = await page.$eval("#share-url", (e) => e.value);
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#share=[A-Za-z0-9_-]{100,400}$/);
  const token = link.split("#share=")[1];
  await shots(owner, "share-dialog", "sharing");
  await axe(page, "the Share dialog with a link");
  await page.getByRole("button", { name: "Close" }).click();
  await page.waitForSelector("#file-rows .shared-badge");

  // A fresh profile with no account opens the link and downloads through the page's button.
  const reader = await guest("reader", link, browsers, 4);
  const rp = reader.page;
  await rp.getByRole("heading", { name: "A file shared with you" }).waitFor();
  await rp.waitForFunction((name) => document.getElementById("shared-name").textContent === name, FILE[0]);
  assert.equal(await rp.isHidden("#auth-view"), true, "no log-in form");
  await axe(rp, "the shared-file page");
  await shots(reader, "shared-file", "sharing");
  const [download] = await Promise.all([
    rp.waitForEvent("download", { timeout: 120000 }),
    rp.getByRole("button", { name: "Download" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), FILE[0]);
  const saved = readFileSync(await download.path());
  assert.equal(saved.length, FILE[1]);
  assert.equal(sha256(saved), sha256(pattern(FILE)), "bit-exact");
  console.log(`# the reader downloaded ${FILE[0]} (${saved.length} bytes) from the link, bit-exact`);
  // Text is previewed in the page (its first 64 KB), as are pictures.
  await rp.waitForSelector("#shared-text", { state: "visible" });
  assert.equal(await rp.$eval("#shared-caption", (e) => e.textContent), `The first 64 KB of ${FILE[0]}`);
  assert.equal((await rp.$eval("#shared-text", (e) => e.textContent)).length > 1000, true);
  await axe(rp, "the shared-file page with a preview");
  await shots(reader, "shared-file-preview", "sharing");

  // The relay served every page and module (its log names each request) but never the token.
  const log = relay.log.replace(/\x1b\[[0-9;]*m/g, ""); // its colours off
  assert.match(log, /HTTP request method=GET uri=\/ status=200/, "the relay logs each request");
  assert.ok(!log.includes(token.slice(0, 24)), "the link's fragment never reached the relay");
  const health = await relay.json("/health");
  assert.ok(!JSON.stringify(health).includes(token.slice(0, 24)));

  // The owner stops sharing: the file is sealed again under a new key, the old blocks freed.
  await page.getByRole("button", { name: `Share ${FILE[0]}` }).click();
  await page.getByRole("button", { name: "Stop sharing" }).click();
  await page.waitForFunction(() => /Sharing stopped/.test(document.getElementById("share-status").textContent), null, { timeout: 120000 });
  await page.getByRole("button", { name: "Close" }).click();
  await page.waitForSelector("#file-rows .shared-badge", { state: "detached" });
  await rp.getByRole("button", { name: "Download" }).click();
  assert.match(await sharedError(rp), /no longer works/);
  console.log("# after Stop sharing, the same link says it no longer works");
  const listed = (await call(page, "list_files")).value;
  assert.equal(listed.length, 1);
  assert.equal(listed[0].links, 0);
  assert.deepEqual(await page.evaluate(DIGEST_IN_PAGE, listed[0].id), [...createHash("sha256").update(pattern(FILE)).digest()]);

  // A link cut short when copied, and one whose expiry has passed: each says what is wrong.
  const cut = await guest("cut", `${relay.url}/#share=${token.slice(0, 40)}`, browsers, 1);
  assert.match(await sharedError(cut.page), /not complete/);
  assert.equal(await cut.page.isDisabled("#shared-download"), true);
  const soon = await call(page, "share_link", listed[0].id, Date.now() + 1500);
  assert.ok(soon.value, JSON.stringify(soon));
  await new Promise((r) => setTimeout(r, 2000));
  await cut.page.goto("about:blank");
  await cut.page.goto(`${relay.url}/#share=${soon.value}`);
  await waitPeer(cut.page);
  assert.match(await sharedError(cut.page), /expired/);
  assert.deepEqual(pageErrors(browsers), []);
});

/** Signs up (or logs in) `username` in `page` through the form, as a person does. */
async function enter(page, username, mode) {
  if (mode === "signup") await page.getByRole("radio", { name: "Sign up" }).check();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: mode === "signup" ? "Create account" : "Log in" }).click();
  await page.getByRole("heading", { name: "My files" }).waitFor({ timeout: 60000 });
}

test("a file shared with a user who is away reaches them in a fresh profile, bit-exact; stopping ends it", async (t) => {
  const { relay, browsers } = await startRelay(t);
  for (const name of ["d1", "d2", "d3", "d4"]) await openPeer(relay, name, browsers);
  // Bob signs up, then closes his browser: he is away while the file is shared with him.
  const bobFirst = await openPeer(relay, "bob-first", browsers);
  await joinedTabs(bobFirst.page, 4);
  await enter(bobFirst.page, "bob", "signup");
  bobFirst.browser.close();
  browsers.splice(browsers.indexOf(bobFirst.browser), 1);

  const alice = await openPeer(relay, "alice", browsers);
  const { page } = alice;
  await joinedTabs(page, 4);
  await enter(page, "alice", "signup");
  await dropFiles(page, [FILE]);
  await page.waitForFunction(() => document.querySelector(".transfer[data-state=done]"), null, { timeout: 120000 });

  // Share dialog: a name no username can be, an unknown name and her own are refused with a
  // clear message; Bob is taken.
  await page.getByRole("button", { name: `Share ${FILE[0]}` }).click();
  const person = page.getByLabel("Share with a person");
  const refusals = [["no/such name", /Usernames are 3 to 32/], ["nobody-at-all", /No account has this username/], ["alice", /your own username/]];
  for (const [name, message] of refusals) {
    await person.fill(name);
    await page.getByRole("button", { name: "Share", exact: true }).click();
    await page.waitForFunction(() => document.getElementById("share-error").textContent !== "", null, { timeout: 90000 });
    assert.match(await page.$eval("#share-error", (e) => e.textContent), message);
  }
  await person.fill("Bob");
  await page.getByRole("button", { name: "Share", exact: true }).click();
  await page.getByRole("button", { name: "Stop sharing with bob" }).waitFor({ timeout: 90000 });
  assert.equal(await page.$eval("#share-error", (e) => e.textContent), "");
  await axe(page, "the Share dialog with a person");
  await shots(alice, "share-with-person", "sharing");
  await page.getByRole("button", { name: "Close" }).click();
  await page.waitForSelector("#file-rows .shared-badge");
  console.log("# alice shared the file with bob while bob was away");

  // Bob logs in in a fresh profile: the file is under "Shared with me", from alice.
  const bob = await openPeer(relay, "bob-second", browsers);
  const bp = bob.page;
  await joinedTabs(bp, 4);
  await enter(bp, "bob", "login");
  const item = bp.locator("#received-list li");
  await item.first().waitFor({ timeout: 90000 });
  assert.equal(await item.count(), 1);
  assert.match(await item.first().textContent(), new RegExp(`${FILE[0]}.*from alice`));
  assert.equal(await bp.locator("#file-rows tr").count(), 0, "not among Bob's own files");
  await axe(bp, "Shared with me");
  await shots(bob, "shared-with-me", "sharing");
  const [download] = await Promise.all([
    bp.waitForEvent("download", { timeout: 120000 }),
    bp.getByRole("button", { name: `Download ${FILE[0]} from alice` }).click(),
  ]);
  const saved = readFileSync(await download.path());
  assert.equal(sha256(saved), sha256(pattern(FILE)), "bit-exact");
  console.log(`# bob downloaded ${FILE[0]} (${saved.length} bytes) shared by alice, bit-exact`);
  const given = (await call(bp, "shared_with_me")).value.files[0].token;

  // Alice stops sharing with Bob: the file is re-keyed; what Bob was given opens nothing.
  await page.getByRole("button", { name: `Share ${FILE[0]}` }).click();
  await page.getByRole("button", { name: "Stop sharing with bob" }).click();
  await page.waitForFunction(() => /No longer shared with bob/.test(document.getElementById("share-status").textContent), null, { timeout: 120000 });
  await page.getByRole("button", { name: "Close" }).click();
  await bp.getByRole("button", { name: "Check for new" }).click();
  await bp.waitForFunction(() => document.querySelectorAll("#received-list li").length === 0, null, { timeout: 60000 });
  const gone = await call(bp, "download_link", given);
  assert.equal(gone.code, "link_gone", JSON.stringify(gone));
  console.log("# after alice stopped sharing, bob's list is empty and what he was given says link_gone");
  assert.deepEqual(pageErrors(browsers), []);
});
