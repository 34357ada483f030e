// Rolling churn with the owner away: six donor tabs; the owner drops three files on the page
// and closes the tab; then, round after round, two of the first donors close and two new ones
// join, until none of the first is left; a fresh profile then logs in and reads every file
// bit-exact. Only the holders act in between: they notice the closed tabs, copy the blocks
// on to the newcomers, and hand the newcomers the account's DHT records.
//
// JELLYFISH_CHURN_DONORS sets how many first donors there are (6; an even number, at least 4:
// every block has 3 copies, and two donors leave at once). CI runs 4 (two rounds, not three).
//
// In CI on the fast schedule (the relay's --repair-every-secs 6: each block checked every
// 6 s, fellow holders swept every second, one copy short waits one 250 ms tick, records handed
// on every 6 s): the next round starts once the network has healed, every block back at three
// copies on open tabs and every open tab holding the account's records, or after 30 s at most.
// By hand, with the shipped schedule (each block hourly, fellows every 30 s, one copy short
// waits 45 s) and rounds 2 minutes apart (fixed), as the issue asks:
//   JELLYFISH_CHURN_REPAIR_SECS=0 JELLYFISH_CHURN_ROUND_MS=120000 \
//     (cd tests && ../scripts/isolated.sh node --test e2e/churn.test.mjs)
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { DIGEST_IN_PAGE, call, dropFiles, joinedTabs, openPeer, pageErrors, startRelay, status } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const MIB = 1024 * 1024;
const REPAIR_SECS = Number(process.env.JELLYFISH_CHURN_REPAIR_SECS ?? 6);
const ROUND_MS = Number(process.env.JELLYFISH_CHURN_ROUND_MS ?? 30000);
const DONORS = Number(process.env.JELLYFISH_CHURN_DONORS ?? 6);
if (DONORS < 4 || DONORS % 2) throw new Error(`JELLYFISH_CHURN_DONORS is an even number, at least 4 (not ${DONORS})`);
const FILES = [["holiday.jpg", 3 * MIB + 5, 11], ["thesis.pdf", 2 * MIB + 77, 12], ["notes.txt", 300 * 1024, 13]];

/** The SHA-256 of the deterministic bytes `dropFiles` makes. */
function digest([, size, seed]) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return [...createHash("sha256").update(bytes).digest()];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The ids (hex) of the blocks a tab holds in its IndexedDB. */
const BLOCK_IDS_IN_PAGE = async () => {
  const done = (request) => new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const db = await done(indexedDB.open("jellyfish"));
  try {
    return await done(db.transaction("blocks", "readonly").objectStore("blocks").getAllKeys());
  } finally {
    db.close();
  }
};

/**
 * What is still short of healing from a round, or "" once healed: every block in `blocks` back
 * at three copies on the open tabs `peers` (or at none: freed, say an index an upload replaced;
 * a lost block fails the final read), and every open tab holding at least `records` DHT records
 * (a newcomer given the account's).
 */
async function short(peers, blocks, records) {
  const holders = new Map();
  for (const { page } of peers) {
    for (const id of await page.evaluate(BLOCK_IDS_IN_PAGE)) holders.set(id, (holders.get(id) ?? 0) + 1);
  }
  const few = [...blocks].filter((id) => (holders.get(id) ?? 0) > 0 && holders.get(id) < 3);
  const held = await Promise.all(peers.map(async ({ page }) => (await status(page)).records_held));
  const unfed = held.filter((n) => n < records).length;
  if (few.length === 0 && unfed === 0) return "";
  return `${few.length} blocks under three copies, ${unfed} tabs under ${records} records (${held})`;
}

test("rolling churn, owner away: every first donor leaves two by two, and a fresh profile reads every file", async (t) => {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(0);
  const { relay, browsers } = await startRelay(t, {
    extraArgs: REPAIR_SECS > 0 ? ["--repair-every-secs", String(REPAIR_SECS)] : [],
  });
  const first = [];
  for (let i = 1; i <= DONORS; i++) first.push(await openPeer(relay, `first-${i}`, browsers));
  const owner = await openPeer(relay, "owner", browsers);
  const { page } = owner;
  await joinedTabs(page, DONORS);

  // Sign up and drop three files, as a person would.
  await page.getByRole("radio", { name: "Sign up" }).check();
  await page.getByLabel("Username").fill("olga");
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "My files" }).waitFor({ timeout: 60000 });
  await dropFiles(page, FILES);
  await page.waitForFunction((n) => document.querySelectorAll(".transfer[data-state=done]").length === n,
    FILES.length, { timeout: 120000 });
  const uploaded = (await call(page, "list_files")).value;
  assert.equal(uploaded.length, FILES.length);
  assert.ok(uploaded.every((f) => f.copies === 3), JSON.stringify(uploaded));
  console.log(`# ${seconds()} s: ${FILES.length} files uploaded; the owner closes the tab`);
  browsers.splice(browsers.indexOf(owner.browser), 1);
  owner.browser.close();

  // Rounds: two of the first donors close, two new ones join, until none of the first is left.
  // On the fast schedule a round ends once the network has healed (at most ROUND_MS); the
  // blocks and the record count to heal back to are those every donor held after the upload.
  const live = [...first];
  const blocks = new Set((await Promise.all(live.map(({ page }) => page.evaluate(BLOCK_IDS_IN_PAGE)))).flat());
  const records = Math.min(...await Promise.all(live.map(async ({ page }) => (await status(page)).records_held)));
  let joinedCount = 0;
  for (let round = 1; first.length > 0; round++) {
    const began = Date.now();
    for (const gone of first.splice(0, 2)) {
      live.splice(live.indexOf(gone), 1);
      browsers.splice(browsers.indexOf(gone.browser), 1);
      gone.browser.close();
    }
    for (let i = 0; i < 2; i++) live.push(await openPeer(relay, `new-${++joinedCount}`, browsers));
    let left = "";
    if (REPAIR_SECS > 0) {
      while ((left = await short(live, blocks, records)) && Date.now() - began < ROUND_MS) await sleep(1000);
    } else {
      await sleep(ROUND_MS);
    }
    const took = ((Date.now() - began) / 1000).toFixed(0);
    const healed = REPAIR_SECS === 0 ? "" : left ? `; not healed in ${took} s: ${left}` : `; healed in ${took} s`;
    console.log(`# ${seconds()} s: round ${round}: 2 first donors closed, 2 new donors joined${healed}`);
  }

  // A fresh profile, which never saw the upload, logs in and reads every file.
  const reader = await openPeer(relay, "reader", browsers, { donate: false });
  await joinedTabs(reader.page, DONORS - 1);
  assert.equal((await call(reader.page, "log_in", "olga", PASSWORD)).value?.username, "olga");
  const list = await call(reader.page, "list_files");
  assert.ok(list.value, `the files are listed: ${JSON.stringify(list)}`);
  const listed = list.value;
  assert.deepEqual(listed.map((f) => f.name).sort(), FILES.map(([name]) => name).sort());
  for (const file of FILES) {
    const id = listed.find((f) => f.name === file[0]).id;
    assert.deepEqual(await reader.page.evaluate(DIGEST_IN_PAGE, id), digest(file), `${file[0]} bit-exact`);
  }
  // The page counts live copies now: every file back at three, on tabs that joined after it.
  const audited = await call(reader.page, "audit");
  assert.ok(audited.value, `the audit ran: ${JSON.stringify(audited)}`);
  const audit = audited.value;
  assert.equal(audit.files_at_risk, 0, JSON.stringify(audit));
  assert.equal(audit.files_degraded, 0, JSON.stringify(audit));
  console.log(`# ${seconds()} s: every file read bit-exact; audit ${JSON.stringify({ ...audit, holders: audit.holders.length, failures: audit.failures.length })}`);
  assert.deepEqual(pageErrors(browsers), []);
});
