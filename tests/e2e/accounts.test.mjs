// Accounts in real browsers: every profile is a fresh Chromium with its own IndexedDB, and the
// only place an account lives is the DHT those tabs form (the relay stores no records).
import assert from "node:assert/strict";
import { test } from "./harness.mjs"; // node:test's, printing the tabs' last console lines on a failure
import { call, joined, openPeer, pageErrors, startRelay, status, waitFor, waitReachable } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const NEW_PASSWORD = "quiet harbour lanterns drift past midnight";

// Uploads deterministic bytes made in the page; resolves to the file's id and SHA-256.
const UPLOAD = async ([name, size, seed]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  const report = await window.jellyfish.upload(new Blob([bytes]), name);
  return { id: report.file.id, digest };
};
const DIGEST = async (id) => {
  const bytes = new Uint8Array(await (await window.jellyfish.download(id)).arrayBuffer());
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
};

test("sign up, log in anywhere (with the author gone), change password, log out", async (t) => {
  const { relay, browsers } = await startRelay(t);

  // Two tabs that only hold records for others, and the tab Alice signs up in.
  const holders = [await openPeer(relay, "h1", browsers), await openPeer(relay, "h2", browsers)];
  const a = await openPeer(relay, "a", browsers);
  await joined(a.page, 3);

  const weak = await call(a.page, "sign_up", "alice", "alice1234");
  assert.match(weak.error, /too easy to guess/);
  const strength = await a.page.evaluate(async () => {
    // The estimator's own module, beside the peer's (the page fetched it once the peer started).
    const estimator = await import(new URL("jellyfish_password.js", document.querySelector('link[rel="modulepreload"]').href).href);
    await estimator.default();
    return estimator.password_strength("alice1234", "alice");
  });
  assert.equal(strength.acceptable, false);
  assert.ok(strength.score < 3);

  const signUp = await call(a.page, "sign_up", "Alice", PASSWORD);
  assert.deepEqual(signUp, { value: { username: "alice" } });
  const taken = await call(holders[0].page, "sign_up", "alice", NEW_PASSWORD);
  assert.match(taken.error, /username is taken/);

  // A fresh profile logs in while A is online.
  const b = await openPeer(relay, "b", browsers);
  await joined(b.page, 2);
  assert.deepEqual(await call(b.page, "log_in", "alice", PASSWORD), { value: { username: "alice" } });

  // A closes; a fresh profile still logs in, from the copies other tabs hold.
  a.browser.close();
  const d = await openPeer(relay, "d", browsers);
  await joined(d.page, 2);
  assert.deepEqual(await call(d.page, "log_in", "alice", PASSWORD), { value: { username: "alice" } });
  assert.match((await call(d.page, "log_in", "alice", "not the password at all")).error, /wrong password/);
  assert.equal((await call(d.page, "account")).value, null, "a failed login leaves no session");
  assert.match((await call(d.page, "log_in", "nobody-here", PASSWORD)).error, /no account has this username/);

  // B stores a file, then changes the password (the current one confirms it): the account's
  // keys rotate, and B stores another file under the new keys.
  const before = await b.page.evaluate(UPLOAD, ["before.bin", 300 * 1024, 1]);
  assert.match((await call(b.page, "change_password", "wrong current", NEW_PASSWORD)).error, /wrong password/);
  assert.deepEqual(await call(b.page, "change_password", PASSWORD, NEW_PASSWORD), { value: undefined });
  const after = await b.page.evaluate(UPLOAD, ["after.bin", 200 * 1024, 2]);

  // In a fresh profile C the old password fails, the new one works and opens both files.
  const c = await openPeer(relay, "c", browsers);
  await joined(c.page, 2);
  const old = await call(c.page, "log_in", "alice", PASSWORD);
  assert.equal(old.code, "wrong_password", JSON.stringify(old));
  assert.deepEqual(await call(c.page, "log_in", "alice", NEW_PASSWORD), { value: { username: "alice" } });
  const listed = (await call(c.page, "list_files")).value.map((f) => f.name);
  assert.deepEqual(listed, ["before.bin", "after.bin"]);
  assert.deepEqual(await c.page.evaluate(DIGEST, before.id), before.digest);
  assert.deepEqual(await c.page.evaluate(DIGEST, after.id), after.digest);

  // D remembered the old key: the new one is its verified successor, not a changed key.
  assert.deepEqual(await call(d.page, "log_in", "alice", NEW_PASSWORD), { value: { username: "alice" } });

  // Log out wipes the session.
  await call(b.page, "log_out");
  assert.equal((await call(b.page, "account")).value, null);

  // The relay refused every record it was offered.
  const health = await relay.json("/health");
  assert.ok(health.records_refused > 0, JSON.stringify(health));

  assert.deepEqual(pageErrors(browsers), []);
});

test("a holder tab reloads: the records it held come back from IndexedDB and are still served", async (t) => {
  const { relay, browsers } = await startRelay(t);
  const holder = await openPeer(relay, "keeper", browsers);
  const other = await openPeer(relay, "other", browsers);
  const author = await openPeer(relay, "author", browsers);
  await joined(author.page, 2);
  assert.deepEqual(await call(author.page, "sign_up", "carol", PASSWORD), { value: { username: "carol" } });
  await waitFor("the holder to hold carol's records", async () => (await status(holder.page)).records_held >= 3);

  // Every other tab with the account leaves, so the holder alone has it; then it reloads.
  author.browser.close();
  other.browser.close();
  await holder.page.reload();
  await waitReachable(holder.page);
  const held = (await status(holder.page)).records_held;
  assert.ok(held >= 3, `records held right after the reload: ${held}`);

  // A fresh profile logs in from the reloaded holder alone.
  const reader = await openPeer(relay, "reader", browsers);
  await joined(reader.page, 1);
  assert.deepEqual(await call(reader.page, "log_in", "carol", PASSWORD), { value: { username: "carol" } });
  assert.deepEqual(pageErrors(browsers), []);
});
