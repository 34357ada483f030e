// Accounts in real browsers: every profile is a fresh Chromium with its own IndexedDB, and the
// only place an account lives is the DHT those tabs form (the relay stores no records).
import assert from "node:assert/strict";
import { test } from "node:test";
import { call, joined, openPeer, pageErrors, startRelay } from "./harness.mjs";

const PASSWORD = "violet tractor sings under seven moons";
const NEW_PASSWORD = "quiet harbour lanterns drift past midnight";

test("sign up, log in anywhere (with the author gone), change password, log out", async (t) => {
  const { relay, browsers } = await startRelay(t);

  // Two tabs that only hold records for others, and the tab Alice signs up in.
  const holders = [await openPeer(relay, "h1", browsers), await openPeer(relay, "h2", browsers)];
  const a = await openPeer(relay, "a", browsers);
  await joined(a.page, 3);

  const weak = await call(a.page, "sign_up", "alice", "alice1234");
  assert.match(weak.error, /too easy to guess/);
  const strength = await a.page.evaluate(async () => {
    const { password_strength } = await import("./pkg/jellyfish_peer.js");
    return password_strength("alice1234", "alice");
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

  // B changes the password (the current one confirms it).
  assert.match((await call(b.page, "change_password", "wrong current", NEW_PASSWORD)).error, /wrong password/);
  assert.deepEqual(await call(b.page, "change_password", PASSWORD, NEW_PASSWORD), { value: undefined });

  // In a fresh profile C the new password works and the old one fails.
  const c = await openPeer(relay, "c", browsers);
  await joined(c.page, 2);
  assert.match((await call(c.page, "log_in", "alice", PASSWORD)).error, /wrong password/);
  assert.deepEqual(await call(c.page, "log_in", "alice", NEW_PASSWORD), { value: { username: "alice" } });

  // Log out wipes the session.
  await call(b.page, "log_out");
  assert.equal((await call(b.page, "account")).value, null);

  // The relay refused every record it was offered.
  const health = await relay.json("/health");
  assert.ok(health.records_refused > 0, JSON.stringify(health));

  assert.deepEqual(pageErrors(browsers), []);
});
