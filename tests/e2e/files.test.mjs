// Files in real browsers: five Chromium profiles, blocks in IndexedDB, WebRTC-less relayed
// circuits between tabs (direct WebRTC is another issue).
import assert from "node:assert/strict";
import { test } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { call, joined, openPeer, pageErrors, settled, startRelay, waitReachable } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const MIB = 1024 * 1024;

// Deterministic content made in the page, and its SHA-256, so nothing large crosses CDP.
const MAKE_AND_UPLOAD = async ([name, size, seed]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  let calls = 0, last = 0;
  const report = await window.jellyfish.upload(new Blob([bytes]), name, undefined, (done, total) => {
    calls++; last = done;
    if (total !== size) throw new Error("progress total is wrong");
  });
  return { report, digest, calls, last };
};

const DOWNLOAD_DIGEST = async (id) => {
  const blob = await window.jellyfish.download(id);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  return { size: bytes.length, digest: Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))) };
};

// Starts an upload or download and aborts it at its first progress report.
const CANCEL_UPLOAD = (size) => {
  const abort = new AbortController();
  return window.jellyfish
    .upload(new Blob([new Uint8Array(size)]), "cancelled.bin", undefined, () => abort.abort(), abort.signal)
    .then(() => "finished", (e) => e.code);
};
const CANCEL_DOWNLOAD = (id) => {
  const abort = new AbortController();
  return window.jellyfish.download(id, () => abort.abort(), abort.signal).then(() => "finished", (e) => e.code);
};

// Empties this profile's block store in IndexedDB, as a holder that takes blocks and throws
// them away would (its books still say it holds them).
const DROP_ALL = () => new Promise((resolve, reject) => {
  const open = indexedDB.open("jellyfish");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const tx = open.result.transaction("blocks", "readwrite");
    tx.objectStore("blocks").clear();
    tx.oncomplete = () => { open.result.close(); resolve(); };
    tx.onerror = () => reject(tx.error);
  };
});

async function totalBlocks(peers) {
  let total = 0;
  for (const p of peers) total += (await call(p.page, "storage")).value.blocks;
  return total;
}

// Flips a byte of every block this profile holds in IndexedDB, as a dishonest holder would.
// A block's bytes are a Blob in its record (a Uint8Array in blocks stored before session 30):
// they are read outside any transaction, then each record is written back altered.
const TAMPER_ALL = async () => {
  const done = (request) => new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const db = await done(indexedDB.open("jellyfish"));
  const read = db.transaction("blocks", "readonly").objectStore("blocks");
  const [keys, values] = await Promise.all([done(read.getAllKeys()), done(read.getAll())]);
  const altered = [];
  for (const value of values) {
    const blob = value.bytes instanceof Blob;
    const bytes = blob ? new Uint8Array(await value.bytes.arrayBuffer()) : value.bytes;
    bytes[0] ^= 1;
    altered.push({ ...value, bytes: blob ? new Blob([bytes]) : bytes });
  }
  const tx = db.transaction("blocks", "readwrite");
  const store = tx.objectStore("blocks");
  altered.forEach((value, i) => store.put(value, keys[i]));
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  db.close();
  return altered.length;
};

test("upload in one profile, download bit-exact in a fresh one after the uploader closed", async (t) => {
  const { relay, browsers } = await startRelay(t);

  const holders = [];
  for (const name of ["h1", "h2", "h3"]) holders.push(await openPeer(relay, name, browsers));
  const a = await openPeer(relay, "a", browsers);
  await joined(a.page, 4);

  const storage = (await call(a.page, "storage")).value;
  assert.ok(storage.capacity > 0 && typeof storage.persisted === "boolean", JSON.stringify(storage));
  assert.equal((await call(a.page, "sign_up", "alice", PASSWORD)).value.username, "alice");

  const files = [["empty.txt", 0, 1], ["one.bin", 1, 2], ["note.txt", 5 * 1024, 3], ["big.bin", 20 * MIB + 77, 4]];
  const uploaded = [];
  for (const file of files) {
    const result = await a.page.evaluate(MAKE_AND_UPLOAD, file);
    assert.equal(result.report.complete, true, JSON.stringify(result.report));
    assert.equal(result.report.file.copies, 3);
    assert.equal(result.last, file[1], "progress reaches 100 %");
    uploaded.push({ name: file[0], size: file[1], id: result.report.file.id, digest: result.digest });
  }
  // Every holder took blocks; the uploader holds none of its own.
  for (const h of holders) assert.ok((await call(h.page, "storage")).value.blocks > 0);
  assert.equal((await call(a.page, "storage")).value.blocks, 0);

  // Over quota: donating 3 MiB earns 1 MiB with three copies, and 20 MiB are used already.
  await call(a.page, "set_donation", 3 * MIB);
  // The page switches on the code and words the sizes itself, from the numbers the error carries.
  const over = await a.page.evaluate(([size]) => window.jellyfish.upload(new Blob([new Uint8Array(size)]), "more.bin")
    .then(() => ({ code: "uploaded" }), (e) => ({ code: e.code, size: e.size, quota: e.quota, message: e.message })), [2 * MIB]);
  assert.deepEqual([over.code, over.size], ["over_quota", 2 * MIB], JSON.stringify(over));
  assert.ok(over.quota < 2 * MIB, JSON.stringify(over));
  assert.match(over.message, /over quota/);

  // Cancelled after the first block: the upload rejects, nothing is listed, holders free it all.
  await call(a.page, "set_donation", 1024 * MIB);
  const heldBefore = await settled("the holders' blocks to settle", () => totalBlocks(holders));
  const cancelled = await a.page.evaluate(CANCEL_UPLOAD, 6 * MIB);
  assert.equal(cancelled, "cancelled");
  assert.equal(await totalBlocks(holders), heldBefore, "the cancelled upload left no block behind");
  assert.equal((await call(a.page, "list_files")).value.length, files.length);

  // A tab that closes mid-upload loses nothing already confirmed and leaves no half file.
  await a.page.evaluate((size) => {
    window.partial = 0;
    window.jellyfish.upload(new Blob([new Uint8Array(size)]), "interrupted.bin", undefined, (done) => {
      window.partial = done;
    }).catch(() => {});
  }, 16 * MIB);
  await a.page.waitForFunction((mib) => window.partial >= mib, 1 * MIB, { timeout: 60000 });
  assert.ok(await a.page.evaluate((size) => window.partial < size, 16 * MIB), "closed before the upload ended");

  // The uploader closes; a fresh profile logs in and gets every file back, bit-exact.
  a.browser.close();
  const f = await openPeer(relay, "f", browsers);
  await joined(f.page, 3);
  assert.equal((await call(f.page, "log_in", "alice", PASSWORD)).value.username, "alice");
  const listed = (await call(f.page, "list_files")).value;
  assert.deepEqual(listed.map((x) => [x.name, x.size]), uploaded.map((x) => [x.name, x.size]));
  for (const file of uploaded) {
    const got = await f.page.evaluate(DOWNLOAD_DIGEST, file.id);
    assert.equal(got.size, file.size);
    assert.deepEqual(got.digest, file.digest, `${file.name} is bit-exact`);
  }

  const downloadCancelled = await f.page.evaluate(CANCEL_DOWNLOAD, uploaded[3].id);
  assert.equal(downloadCancelled, "cancelled");

  // A holder alters every block in its IndexedDB: the download detects it and uses another copy.
  assert.ok(await holders[0].page.evaluate(TAMPER_ALL) > 0);
  const big = uploaded[3];
  assert.deepEqual((await f.page.evaluate(DOWNLOAD_DIGEST, big.id)).digest, big.digest);

  // That holder then throws away everything it holds: the owner's audit (a challenge for a
  // random leaf of every block, checked against the block's address alone) finds it, and only
  // it; the files it held count one copy fewer.
  const dropper = await holders[0].page.evaluate(() => window.jellyfish.peer_id);
  await holders[0].page.evaluate(DROP_ALL);
  const audit = (await call(f.page, "audit", 1000)).value;
  assert.ok(audit.held > 0 && audit.held + audit.failures.length === audit.challenges, JSON.stringify(audit));
  assert.ok(audit.failures.length > 0, JSON.stringify(audit));
  assert.ok(audit.failures.every((x) => x.peer === dropper && x.answered), JSON.stringify(audit.failures));
  assert.ok(audit.files_degraded > 0, JSON.stringify(audit));
  const degraded = (await call(f.page, "list_files")).value;
  assert.ok(degraded.some((x) => x.copies < 3), JSON.stringify(degraded));

  // What a tab holds for others survives a reload (IndexedDB), and it serves it again.
  // The audit saved the index, and frees the previous one in the background: that free
  // reaches this holder whenever it does, so its count settles first.
  const storageOf = async (tab) => JSON.stringify((await call(tab.page, "storage")).value);
  const before = JSON.parse(await settled("the holder's blocks to settle", () => storageOf(holders[1])));
  await holders[1].page.reload();
  await waitReachable(holders[1].page);
  const after = (await call(holders[1].page, "storage")).value;
  assert.equal(after.blocks, before.blocks);
  assert.equal(after.used, before.used);
  await call(holders[2].page, "set_donation", 0); // the third holder stops taking blocks, still serves
  assert.deepEqual((await f.page.evaluate(DOWNLOAD_DIGEST, big.id)).digest, big.digest);

  // Delete: the file leaves the index and holders free the space.
  const freed = (await call(f.page, "delete_file", big.id)).value;
  assert.ok(freed >= 21, `freed ${freed} block copies`);
  assert.deepEqual((await call(f.page, "list_files")).value.map((x) => x.name), ["empty.txt", "one.bin", "note.txt"]);

  assert.deepEqual(pageErrors(browsers), []);
});
