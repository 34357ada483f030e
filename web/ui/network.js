// The network footer and banner: relay link, peers, the event log. The ids here (#peer-id,
// #relay-state, #banner, #reservation, #peer-count, #peers, #log) are what the end-to-end
// tests read, so they keep their meaning from the first diagnostics page.
import { $, h } from "./dom.js";
import { formatBytes } from "./format.js";

const MAX_LOG = 200;

export function log(text) {
  const list = $("log");
  list.prepend(h("li", { textContent: `${new Date().toLocaleTimeString()} ${text}` }));
  while (list.children.length > MAX_LOG) list.lastChild.remove();
}

export function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

function setRelayState(state, text) {
  $("relay-state").dataset.state = state;
  $("relay-state").textContent = text;
  document.body.dataset.relay = state; // colours the status dot
}

// The relay tells the page where to reach it over libp2p; nothing is hard-coded here.
export async function relayInfo() {
  for (let delay = 500; ; delay = Math.min(delay * 2, 30000)) {
    try {
      const response = await fetch("/api/relay", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const info = await response.json();
      if (info.addrs.length) return info;
      throw new Error("the relay announces no address yet");
    } catch (e) {
      setRelayState("unreachable", "unreachable");
      showBanner(`Cannot reach the relay (${e.message}); retrying in ${Math.round(delay / 1000)} s.`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function renderStatus(status) {
  const relay = status.relay;
  if (relay.state === "reconnecting") {
    const seconds = Math.ceil(relay.retry_in_ms / 1000);
    setRelayState(relay.state, seconds > 0
      ? `disconnected, retrying in ${seconds} s (attempt ${relay.attempts})`
      : `disconnected, reconnecting now (attempt ${relay.attempts})`);
    showBanner("Offline: the relay is unreachable. Reconnecting…");
  } else {
    setRelayState(relay.state, relay.state);
    showBanner(relay.state === "connected" ? "" : "Connecting to the relay…");
  }
  const relays = (status.relays_connected || []).length;
  $("reservation").textContent = !status.reservation ? "no"
    : relays > 1 ? `yes (through ${relays} relays)` : "yes";
}

// How a connected peer is reached: directly over WebRTC, or through the relay.
const LINKS = {
  direct: "connected directly",
  relayed: "connected through the relay",
  relayed_fallback: "connected through the relay: no direct path",
};

function renderPeers(peers, self) {
  const others = peers.filter((p) => p.peer_id !== self).length;
  const direct = peers.filter((p) => p.link === "direct").length;
  const relayed = peers.filter((p) => p.link === "relayed_fallback").length;
  const links = [direct ? `${direct} direct` : "", relayed ? `${relayed} relayed` : ""].filter(Boolean);
  $("peers-known").textContent = (others === 1 ? "1 peer known" : `${others} peers known`)
    + (links.length ? ` (${links.join(", ")})` : "");
  $("peer-count").textContent = `(${peers.length})`;
  const list = $("peers");
  list.replaceChildren();
  if (!peers.length) list.append(h("li", { className: "empty", textContent: "None yet." }));
  for (const peer of peers) {
    const how = LINKS[peer.link] || (peer.connected ? "connected" : "");
    list.append(h("li", {
      className: peer.peer_id === self ? "self" : "",
      textContent: `${peer.peer_id}${how ? ` (${how})` : ""}`,
    }));
    list.lastChild.dataset.link = peer.link || "";
  }
}

function renderDonation(storage) {
  const line = $("donation-line");
  // The browser said no to a block (its disk or this site's quota is full): the donation
  // promises more than it can keep. Other holders take the blocks meanwhile.
  line.classList.toggle("bad", Boolean(storage.write_refused));
  line.textContent = storage.write_refused
    ? `This tab donates ${formatBytes(storage.capacity)}, but the browser refused to store more `
      + `(${storage.write_refused.slice(0, 160)}): free some disk space, or lower the donation under Storage.`
    : storage.capacity > 0
      ? `This tab donates ${formatBytes(storage.capacity)}; keep it open to help the network.`
      : "This tab donates no space yet: it gives space only once you agree to an amount (under Storage, once logged in).";
}

/** Refreshes the footer every second for as long as the page lives. */
export async function pollStatus(peer) {
  for (;;) {
    try {
      renderStatus(await peer.status());
      renderPeers(await peer.peers(), peer.peer_id);
      renderDonation(await peer.storage());
    } catch (e) {
      log(`status failed: ${e.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export async function followEvents(peer) {
  for (let event = await peer.next_event(); event; event = await peer.next_event()) {
    const { type, ...fields } = event;
    const details = Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(" ");
    log(`${type.replaceAll("_", " ")} ${details}`);
  }
  log("the peer stopped");
}

export function showPeerId(id) {
  $("peer-id").textContent = id;
}
