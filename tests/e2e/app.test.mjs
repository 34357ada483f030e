// The app as a person uses it: real relay, five Chromium profiles, and every step through the
// page's own controls (labels, buttons, drag and drop, the file picker, the keyboard). axe-core
// checks each screen; screenshots of each at desktop and phone width land in ARTIFACTS.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { dropFiles as dropInPage, joined, openPeer, pageErrors, settled, startRelay, waitFor } from "./harness.mjs";
import { DESKTOP, PHONE, axe, shots } from "./look.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const NEW_PASSWORD = "quiet harbour lanterns drift past midnight";
// The same bytes on both sides of CDP, so only their hash needs comparing.
const pattern = (size, seed) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff);
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** Drops files made in the page onto the drop zone, with screenshots under `label`. */
async function dropFiles(peer, files, label) {
  await dropInPage(peer.page, files, label && (() => shots(peer, label)));
}

const fileNames = (page) => page.$$eval("#file-rows tr th .file-name", (cells) => cells.map((c) => c.textContent));

test("the app: sign up, upload by drop and picker, download, delete, change password, log out", async (t) => {
  const { relay, browsers } = await startRelay(t);

  const holders = [];
  for (const name of ["h1", "h2", "h3"]) holders.push(await openPeer(relay, name, browsers));
  // A's person answers the page's donation question themselves.
  const a = await openPeer(relay, "a", browsers, { donate: false });
  const { page } = a;
  await page.setViewportSize(DESKTOP);
  await joined(page, 4);

  // The login screen, with the network footer.
  await page.getByRole("heading", { name: "Log in to Jellyfish" }).waitFor();
  // Nothing is donated before the person agrees.
  await page.waitForFunction(() => /donates no space/.test(document.getElementById("donation-line").textContent));
  assert.equal((await page.evaluate(() => window.jellyfish.storage())).capacity, 0);
  await shots(a, "login");
  await axe(page, "login");

  // Sign up: the meter reacts to a weak password and says how to do better.
  await page.getByRole("radio", { name: "Sign up" }).check();
  await page.getByLabel("Username").fill("alice");
  const password = page.getByLabel("Password", { exact: true });
  await password.fill("alice1234");
  await page.waitForSelector("#signup-strength:not([hidden])");
  assert.match(await page.textContent("#signup-strength-summary"), /weak.*too weak to use/i);
  assert.ok(Number(await page.getAttribute("#signup-strength", "data-score")) < 3);
  assert.ok(await page.locator("#signup-strength li").count() > 0, "the meter gives advice");
  await shots(a, "signup-weak");
  await axe(page, "sign-up with a weak password");
  await password.fill(PASSWORD);
  assert.match(await page.textContent("#signup-strength-summary"), /good enough/);
  await shots(a, "signup-strong");

  // Submitting shows the busy state, then the (empty) file view with the focus on its heading.
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForSelector("#auth-submit[aria-busy=true]:disabled", { timeout: 5000 }).catch(() => {});
  await page.getByRole("heading", { name: "My files" }).waitFor({ timeout: 60000 });
  assert.equal(await page.evaluate(() => document.activeElement.id), "files-title");
  await page.waitForSelector("#empty:not([hidden])");
  assert.match(await page.textContent("#empty"), /Drop files here or press Upload/);
  assert.equal(await page.textContent(".whoami-name"), "alice");
  // First use: the page asks how much to donate, and donates only once the person agrees.
  await page.waitForSelector("#donate-card:not([hidden])");
  assert.match(await page.textContent("#donate-card"), /Nothing is donated until you agree/);
  const offer = await page.evaluate(() => window.jellyfish.storage());
  assert.equal(offer.agreed, false);
  await shots(a, "files-empty");
  await axe(page, "the empty file view with the donation question");
  await page.getByRole("button", { name: /^Donate / }).click();
  await page.waitForSelector("#donate-card[hidden]", { state: "attached" });
  const agreed = await page.evaluate(() => window.jellyfish.storage());
  assert.deepEqual([agreed.agreed, agreed.capacity], [true, offer.suggested]);
  await page.waitForFunction(() => /This tab donates .+ keep it open/.test(document.getElementById("donation-line").textContent));

  // Two files dropped, a third (2 MiB) picked with the Upload button: one queue, one at a time.
  const dropped = [["notes.txt", 5 * 1024, 1], ["photo.jpg", 12 * 1024, 2]];
  await dropFiles(a, dropped, "files-dragging");
  const bigBytes = Buffer.from(pattern(2 * 1024 * 1024 + 123, 3));
  await page.setInputFiles("#file-input", [
    { name: "archive.bin", mimeType: "application/octet-stream", buffer: bigBytes },
    { name: "later.txt", mimeType: "text/plain", buffer: Buffer.from("not wanted after all") },
  ]);
  await page.waitForSelector(".transfer[data-state=running]");
  // later.txt waits behind three uploads: cancelling it takes it out of the queue.
  await page.getByRole("button", { name: "Cancel upload of later.txt" }).click();
  assert.match(await page.textContent(".transfer[data-state=cancelled]"), /later\.txt.*Cancelled/);
  await shots(a, "files-uploading");
  await page.waitForFunction(() => document.querySelectorAll(".transfer[data-state=done]").length === 3, null, { timeout: 120000 });
  for (const row of await page.$$(".transfer[data-state=done]")) {
    assert.equal(await row.$eval("progress", (p) => p.value === p.max), true, "progress reaches 100 %");
    assert.match(await row.$eval(".transfer-detail", (s) => s.textContent), /^\d.* in /, "size and time taken");
  }
  await page.waitForFunction(() => /uploaded, 3 of 3 copies/.test(document.getElementById("announcer").textContent));
  await page.waitForFunction(() => document.querySelectorAll("#file-rows tr").length === 3);
  assert.deepEqual(await fileNames(page), ["archive.bin", "photo.jpg", "notes.txt"], "newest first");
  for (const health of await page.$$eval("#file-rows .col-health", (c) => c.map((x) => x.textContent))) {
    assert.equal(health, "3 of 3 copies");
  }
  assert.match(await page.textContent("#file-rows"), /2\.0 MB/);
  await shots(a, "files-uploaded");
  await axe(page, "the file view with files");
  await page.emulateMedia({ colorScheme: "dark" });
  await shots(a, "files-uploaded-dark");
  await axe(page, "the file view with files, dark");
  await page.emulateMedia({ colorScheme: "light" });
  // Cancelling a running upload: the row says so at once, the peer frees the blocks it had
  // placed (the holders get back to what they held), and the file never joins the list.
  const held = async () => {
    let blocks = 0;
    for (const holder of holders) blocks += (await holder.page.evaluate(() => window.jellyfish.storage())).blocks;
    return blocks;
  };
  const heldBefore = await settled("the holders' blocks to settle", held);
  // 32 MiB, made in the page, so the click surely lands while most blocks are still to go.
  await dropFiles(a, [["cancel-me.bin", 32 * 1024 * 1024, 5]]);
  const cancelRow = page.locator(".transfer", { hasText: "cancel-me.bin" });
  await waitFor("the upload to place its first block", () => cancelRow.locator("progress").evaluate((p) => p.value > 0));
  await page.getByRole("button", { name: "Cancel upload of cancel-me.bin" }).click();
  assert.equal(await cancelRow.getAttribute("data-state"), "cancelled");
  let heldNow;
  await waitFor(`the holders to free the cancelled upload's blocks (held ${heldBefore} before)`,
    async () => (heldNow = await held()) === heldBefore, { timeout: 60000 })
    .catch(async (e) => {
      const names = await page.evaluate(() => window.jellyfish.list_files().then((l) => l.map((f) => f.name)));
      throw new Error(`${e.message}; now ${heldNow}; the index lists ${names}`);
    });
  await page.getByRole("button", { name: "Refresh the list" }).click();
  assert.deepEqual((await fileNames(page)).sort(), ["archive.bin", "notes.txt", "photo.jpg"]);

  await page.getByRole("button", { name: "Clear finished" }).click();
  assert.equal(await page.locator(".transfer").count(), 0);
  assert.equal(await page.isHidden("#transfers"), true);

  // Sort by the column headers; filter by name.
  await page.getByRole("button", { name: "Name" }).click();
  assert.equal(await page.getAttribute("th.col-name", "aria-sort"), "ascending");
  assert.equal(await page.getAttribute("th.col-date", "aria-sort"), "none");
  assert.deepEqual(await fileNames(page), ["archive.bin", "notes.txt", "photo.jpg"]);
  await page.getByRole("button", { name: "Size" }).click();
  assert.equal(await page.getAttribute("th.col-size", "aria-sort"), "descending");
  assert.deepEqual(await fileNames(page), ["archive.bin", "photo.jpg", "notes.txt"]);
  await page.getByRole("button", { name: "Size" }).click();
  assert.deepEqual(await fileNames(page), ["notes.txt", "photo.jpg", "archive.bin"]);
  await page.getByLabel("Filter by name").fill("PHO");
  assert.deepEqual(await fileNames(page), ["photo.jpg"]);
  await page.getByLabel("Filter by name").fill("nothing like it");
  assert.match(await page.textContent("#list-note"), /No file name contains/);
  await page.getByLabel("Filter by name").fill("");

  // Storage: the user's quota, the browser's, and a new donation that the footer repeats.
  // Donating 3 MB earns 1 MB of space: the next upload fails, and the row says why.
  const donation = page.getByLabel("Space this browser gives to the network");
  await page.getByRole("button", { name: "Storage" }).click();
  await page.waitForFunction(() => /of .* used/.test(document.getElementById("quota-text").textContent));
  assert.match(await page.textContent("#persisted"), /granted/i);
  assert.match(await page.textContent("#donation-hint"), /up to/);
  await donation.fill("3");
  await page.getByLabel("Unit").selectOption({ label: "MB" });
  await donation.press("Enter");
  await page.waitForFunction(() => /Saved: this browser now donates 3\.0 MB/.test(document.getElementById("donation-message").textContent));
  await page.getByRole("button", { name: "My files" }).click();
  await page.setInputFiles("#file-input", { name: "too-big.bin", mimeType: "application/octet-stream", buffer: bigBytes });
  await page.waitForSelector(".transfer[data-state=failed]", { timeout: 60000 });
  assert.match(await page.textContent(".transfer[data-state=failed] .transfer-detail"), /^Over quota: .*donate more space/);
  await shots(a, "files-upload-failed");
  await page.getByRole("button", { name: "Storage" }).click();
  await donation.fill("2");
  await page.getByLabel("Unit").selectOption({ label: "GB" });
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForFunction(() => /Saved: this browser now donates 2\.0 GB/.test(document.getElementById("donation-message").textContent));
  await page.waitForFunction(() => /This tab donates 2\.0 GB/.test(document.getElementById("donation-line").textContent));
  assert.equal((await page.evaluate(() => window.jellyfish.storage())).capacity, 2 * 1024 ** 3);
  await shots(a, "storage");
  await axe(page, "the storage view");

  // A name that is taken, tried from another tab, says so.
  const h = holders[0].page;
  await h.getByRole("radio", { name: "Sign up" }).check();
  await h.getByLabel("Username").fill("alice");
  await h.getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
  await h.getByRole("button", { name: "Create account" }).click();
  await h.waitForFunction(() => /taken/.test(document.getElementById("auth-error").textContent), null, { timeout: 60000 });
  assert.equal(await h.evaluate(() => document.activeElement.id), "username", "the cursor goes where the fix is");
  await holders[0].browser.screenshot(h, "app-signup-taken-desktop");

  // A fresh profile logs in with the keyboard alone: Tab to the fields, type, Enter.
  const f = await openPeer(relay, "f", browsers);
  const fp = f.page;
  await fp.setViewportSize(DESKTOP);
  await joined(fp, 4);
  const tabTo = async (id) => {
    for (let i = 0; i < 10 && (await fp.evaluate(() => document.activeElement?.id)) !== id; i++) await fp.keyboard.press("Tab");
    assert.equal(await fp.evaluate(() => document.activeElement?.id), id, `Tab reaches #${id}`);
  };
  await tabTo("username");
  await fp.keyboard.type("nobody-here");
  await tabTo("password");
  await fp.keyboard.type(PASSWORD);
  await fp.keyboard.press("Enter");
  await fp.waitForFunction(() => /No account has this username/.test(document.getElementById("auth-error").textContent), null, { timeout: 60000 });
  await fp.getByLabel("Username").fill("alice");
  await fp.getByLabel("Password", { exact: true }).fill("not the password at all");
  await fp.keyboard.press("Enter");
  await fp.waitForFunction(() => /Wrong password/.test(document.getElementById("auth-error").textContent), null, { timeout: 60000 });
  assert.equal(await fp.evaluate(() => document.activeElement.id), "password");
  await shots(f, "login-error");
  await axe(fp, "login with an error");
  await fp.emulateMedia({ colorScheme: "dark" });
  await shots(f, "login-error-dark");
  await axe(fp, "login with an error, dark");
  await fp.emulateMedia({ colorScheme: "light" });
  await fp.keyboard.press("Control+A");
  await fp.keyboard.type(PASSWORD);
  await fp.keyboard.press("Enter");
  await fp.getByRole("heading", { name: /My files/ }).waitFor({ timeout: 60000 });
  await fp.waitForFunction(() => document.querySelectorAll("#file-rows tr").length === 3);
  assert.equal(await fp.evaluate(() => document.activeElement.id), "files-title");

  // Download through the row's button: the browser saves it under its name, bit-exact.
  const [download] = await Promise.all([
    fp.waitForEvent("download", { timeout: 60000 }),
    fp.getByRole("button", { name: "Download archive.bin" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "archive.bin");
  const saved = readFileSync(await download.path());
  assert.equal(saved.length, bigBytes.length);
  assert.equal(sha256(saved), sha256(bigBytes));
  const [small] = await Promise.all([
    fp.waitForEvent("download", { timeout: 60000 }),
    fp.getByRole("button", { name: "Download notes.txt" }).click(),
  ]);
  assert.equal(sha256(readFileSync(await small.path())), sha256(pattern(5 * 1024, 1)));
  await fp.waitForFunction(() => document.querySelectorAll(".transfer[data-state=done]").length === 2);
  await fp.waitForFunction(() => /downloaded/.test(document.getElementById("announcer").textContent));

  // Delete asks first, in a dialog; Cancel keeps the file, Delete removes it.
  await fp.getByRole("button", { name: "Delete photo.jpg" }).click();
  const dialog = fp.getByRole("dialog", { name: "Delete “photo.jpg”?" });
  await dialog.waitFor();
  await shots(f, "delete-dialog");
  await axe(fp, "the delete dialog");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await fp.locator("#file-rows tr").count(), 3);
  await fp.getByRole("button", { name: "Delete photo.jpg" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await waitFor("the deleted file to leave the list", async () =>
    !(await fileNames(fp)).includes("photo.jpg"), { timeout: 60000 });
  assert.deepEqual((await fp.evaluate(() => window.jellyfish.list_files())).map((x) => x.name).sort(), ["archive.bin", "notes.txt"]);

  // Change password (with the meter), then log out: the form is back, with the focus on it.
  await fp.getByRole("button", { name: "Account" }).click();
  await fp.getByLabel("Current password").fill(PASSWORD);
  await fp.getByLabel("New password").fill("short");
  assert.match(await fp.textContent("#change-strength-summary"), /too weak/);
  await fp.getByLabel("New password").fill(NEW_PASSWORD);
  assert.match(await fp.textContent("#change-strength-summary"), /good enough/);
  await shots(f, "account");
  await axe(fp, "the account view");
  await fp.getByRole("button", { name: "Change password" }).click();
  await fp.waitForFunction(() => /Password changed/.test(document.getElementById("password-message").textContent), null, { timeout: 60000 });
  await fp.getByRole("button", { name: "Log out" }).click();
  await fp.getByRole("heading", { name: "Log in to Jellyfish" }).waitFor();
  assert.equal(await fp.evaluate(() => document.activeElement.id), "auth-title");
  assert.equal(await fp.locator("#file-rows tr").count(), 0, "nothing of the user's stays on the page");
  assert.equal(await fp.evaluate(() => window.jellyfish.account()), null);

  // The new password opens the account.
  await fp.getByLabel("Username").fill("alice");
  await fp.getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
  await fp.getByRole("button", { name: "Log in" }).click();
  await fp.getByRole("heading", { name: /My files/ }).waitFor({ timeout: 60000 });

  // The diagnostics are still there, folded away.
  await fp.getByText("Network details").click();
  assert.equal(await fp.textContent("#peer-id"), await fp.evaluate(() => window.jellyfish.peer_id));
  assert.ok(await fp.locator("#peers li:not(.empty)").count() >= 1);
  await shots(f, "network-details");

  assert.deepEqual(pageErrors(browsers), []);
});
