// Jellyfish's page: starts this tab's peer and wires it to the views. The peer itself is the
// wasm module; the files in ui/ each own one part of the page:
//   network.js   footer and banner: relay link, peers, event log (what the e2e tests read)
//   auth.js      the sign-up / log-in form          strength.js  the password meter
//   files.js     the file table, drop zone, picker  drop.js      files out of a drop
//   transfers.js upload/download queue and progress storage.js   donation and quotas
//   account.js   change password, log out        consent.js   the first-use donation question
//   share.js     a file's Share dialog            shared.js    the page opened by a share link
//   received.js  "Shared with me": files other users shared with this one
// `window.jellyfish` exposes the running peer for the end-to-end tests and for curious people
// with a console.
import init, { start } from "./pkg/jellyfish_peer.js";
import { $, announce } from "./ui/dom.js";
import { followEvents, log, pollStatus, relayInfo, showBanner, showPeerId } from "./ui/network.js";
import { setupAuth } from "./ui/auth.js";
import { setupTransfers } from "./ui/transfers.js";
import { setupFiles } from "./ui/files.js";
import { setupStorage } from "./ui/storage.js";
import { setupAccount } from "./ui/account.js";
import { setupConsent } from "./ui/consent.js";
import { setupShare } from "./ui/share.js";
import { setupShared } from "./ui/shared.js";
import { setupReceived } from "./ui/received.js";

let peer = null;
let account = null;
const getPeer = () => peer;
// The password estimator is a wasm module of its own (zxcvbn's dictionaries would double the
// peer's): fetched once the peer has started, or as soon as someone types a password. Until it
// is there, the meter says what a good password looks like; once it is, every meter updates.
let estimator = null;
let estimatorLoading = null;
function loadEstimator() {
  estimatorLoading ??= import("./pkg/jellyfish_password.js").then(async (module) => {
    await module.default();
    estimator = module;
    window.dispatchEvent(new Event("jellyfish:estimator-ready"));
  }).catch((e) => {
    estimatorLoading = null;
    log(`the password checker did not load: ${e.message}`);
  });
  return estimatorLoading;
}
const estimate = (password, username) => {
  if (estimator) return estimator.password_strength(password, username);
  loadEstimator();
  return null;
};

const VIEWS = ["files", "storage", "account"];
let views = {};

function showView(name, { focus = true } = {}) {
  for (const view of VIEWS) {
    $(`${view}-view`).hidden = view !== name;
    const tab = document.querySelector(`.nav-item[data-view="${view}"]`);
    if (view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  views.storage.hide();
  views[name].show?.();
  if (name === "files") views.consent.check();
  if (focus) $(`${name}-title`).focus();
}

function loggedIn(who) {
  account = who;
  $("auth-view").hidden = true;
  $("nav").hidden = false;
  $("whoami").hidden = false;
  $("whoami").querySelector(".whoami-name").textContent = who.username;
  $("whoami").querySelector(".avatar").textContent = who.username.charAt(0).toUpperCase();
  showView("files");
  announce(`Logged in as ${who.username}.`);
  $("key-warning").hidden = !who.key_changed;
  watchAlone(who);
  $("share-view").hidden = true;
  // Share links whose expiry passed stop working for everyone once the owner is back.
  getPeer().revoke_expired_links().then((n) => {
    if (n) { log(`revoked the expired share links of ${n} file(s)`); views.files.refresh(); }
  }).catch((e) => {
    // A file out of reach is reported once the others were re-keyed: their new ids are listed.
    log(`expired share links not all revoked yet: ${e.message}`);
    views.files.refresh();
  });
  // Letters to the people files are shared with are kept 90 days after they were last sent.
  getPeer().send_all_letters().then((n) => { if (n) log(`sent ${n} share letter(s) again`); })
    .catch((e) => log(`share letters not sent again yet: ${e.message}`));
  views.received.refresh();
}

/** While the account lives in this tab alone, say so; the notice goes once others hold it. */
function watchAlone(who) {
  const notice = $("alone-notice");
  notice.hidden = !who.alone;
  if (!who.alone) return;
  const timer = setInterval(async () => {
    const now = await getPeer().account().catch(() => null);
    if (!now?.alone) {
      clearInterval(timer);
      notice.hidden = true;
      if (now) announce("Your account is now held by other tabs too.");
    }
  }, 2000);
}

function loggedOut() {
  account = null;
  $("key-warning").hidden = true;
  $("alone-notice").hidden = true;
  views.transfers.reset();
  views.files.reset();
  views.received.reset();
  views.account.reset();
  views.consent.hide();
  views.share.close();
  views.storage.hide();
  for (const view of VIEWS) $(`${view}-view`).hidden = true;
  $("nav").hidden = true;
  $("whoami").hidden = true;
  $("auth-view").hidden = false;
  views.auth.show();
  $("auth-title").focus();
}

function setup(peerReady) {
  const transfers = setupTransfers({ getPeer, onUploaded: () => views.files.refresh() });
  const share = setupShare({ getPeer, onChanged: () => views.files.refresh() });
  views = {
    transfers,
    share,
    auth: setupAuth({ peerReady, estimate, onAccount: loggedIn }),
    shared: setupShared({ peerReady, onLeave: () => { $("share-view").hidden = true; $("auth-view").hidden = false; views.auth.show(); $("auth-title").focus(); } }),
    files: setupFiles({ getPeer, transfers, share }),
    received: setupReceived({ getPeer, transfers }),
    storage: setupStorage({ getPeer }),
    account: setupAccount({ getPeer, estimate, username: () => account?.username || "", onLoggedOut: loggedOut }),
    consent: setupConsent({ getPeer, onChoose: () => showView("storage") }),
  };
  for (const tab of document.querySelectorAll(".nav-item")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  if (views.shared.active) views.shared.show();
}

// The forms work before the peer has started: a submit waits for this (or shows why it failed).
const started = {};
const peerReady = new Promise((resolve, reject) => Object.assign(started, { resolve, reject }));
peerReady.catch(() => {}); // reported by main's catch below; a submit reports it again

async function main() {
  setup(peerReady);
  // Marks for tests/bench/pageload.mjs: navigation to a form that takes input, to the wasm
  // module compiled, to the peer started.
  performance.mark("jellyfish:form-ready");
  await init();
  performance.mark("jellyfish:wasm-ready");
  const relay = await relayInfo();
  // The relay's own addresses, then its fellows': the peer keeps two relays.
  peer = await start([...relay.addrs, ...(relay.fellows || [])], relay.ice_servers || [], relay.probes === true,
    relay.repair_every_secs ?? undefined);
  window.jellyfish = peer;
  performance.mark("jellyfish:started");
  started.resolve(peer);
  showPeerId(peer.peer_id);
  log(`started as ${peer.peer_id}`);
  followEvents(peer);
  pollStatus(peer);
  loadEstimator();
}

main().catch((e) => {
  started.reject(new Error(`Jellyfish could not start: ${e.message}`));
  showPeerId("failed to start");
  showBanner(`Jellyfish could not start: ${e.message}`);
  console.error(e);
});
