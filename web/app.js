// The diagnostics page: starts this tab's peer and shows its state. The peer itself is the
// wasm module; this file only wires it to the DOM. `window.jellyfish` exposes the running peer
// for the end-to-end tests and for curious people with a console.
import init, { start } from "./pkg/jellyfish_peer.js";

const $ = (id) => document.getElementById(id);
const MAX_LOG = 200;

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("log").prepend(item);
  while ($("log").children.length > MAX_LOG) $("log").lastChild.remove();
}

function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

// The relay tells the page where to reach it over libp2p; nothing is hard-coded here.
async function relayAddrs() {
  for (let delay = 500; ; delay = Math.min(delay * 2, 30000)) {
    try {
      const response = await fetch("/api/relay", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const info = await response.json();
      if (info.addrs.length) return info.addrs;
      throw new Error("the relay announces no address yet");
    } catch (e) {
      $("relay-state").textContent = "unreachable";
      $("relay-state").dataset.state = "unreachable";
      showBanner(`Cannot reach the relay (${e.message}); retrying in ${Math.round(delay / 1000)} s.`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function renderStatus(status) {
  const relay = status.relay;
  $("relay-state").dataset.state = relay.state;
  if (relay.state === "reconnecting") {
    const seconds = Math.ceil(relay.retry_in_ms / 1000);
    $("relay-state").textContent = seconds > 0
      ? `disconnected, retrying in ${seconds} s (attempt ${relay.attempts})`
      : `disconnected, reconnecting now (attempt ${relay.attempts})`;
    showBanner("Offline: the relay is unreachable. Reconnecting…");
  } else {
    $("relay-state").textContent = relay.state;
    showBanner(relay.state === "connected" ? "" : "Connecting to the relay…");
  }
  $("reservation").textContent = status.reservation ? "yes" : "no";
}

function renderPeers(peers, self) {
  $("peer-count").textContent = `(${peers.length})`;
  const list = $("peers");
  list.replaceChildren();
  if (!peers.length) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = "None yet.";
    list.append(empty);
  }
  for (const peer of peers) {
    const item = document.createElement("li");
    item.textContent = `${peer.peer_id}${peer.connected ? " (connected)" : ""}`;
    if (peer.peer_id === self) item.className = "self";
    list.append(item);
  }
}

async function pollStatus(peer) {
  for (;;) {
    try {
      renderStatus(await peer.status());
      renderPeers(await peer.peers(), peer.peer_id);
    } catch (e) {
      log(`status failed: ${e.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function followEvents(peer) {
  for (let event = await peer.next_event(); event; event = await peer.next_event()) {
    const { type, ...fields } = event;
    const details = Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(" ");
    log(`${type.replaceAll("_", " ")} ${details}`);
  }
  log("the peer stopped");
}

async function main() {
  await init();
  const addrs = await relayAddrs();
  const peer = await start(addrs);
  window.jellyfish = peer;
  $("peer-id").textContent = peer.peer_id;
  log(`started as ${peer.peer_id}`);
  followEvents(peer);
  pollStatus(peer);
}

main().catch((e) => {
  $("peer-id").textContent = "failed to start";
  showBanner(`Jellyfish could not start: ${e.message}`);
  console.error(e);
});
