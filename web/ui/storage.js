// The Storage view: the user's own space (their browsers' donations / 3) and what this browser
// gives to the network, holds for others, and may keep.
import { $, sentence, setBar } from "./dom.js";
import { formatBytes } from "./format.js";

const MB = 1024 * 1024;
const GB = 1024 * MB;
const REFRESH_MS = 5000;

/** `getPeer()` returns the started peer. */
export function setupStorage({ getPeer }) {
  const input = $("donation");
  const unit = $("donation-unit");
  let browserQuota = null;
  let timer = 0;
  // Whether the person has touched the form since the view opened: the current donation,
  // fetched when the view opens, must not overwrite what they typed in the meantime.
  let edited = false;
  input.addEventListener("input", () => { edited = true; });
  unit.addEventListener("change", () => { edited = true; });

  function fillDonation(capacity) {
    const inGb = capacity >= GB;
    unit.value = String(inGb ? GB : MB);
    input.value = String(Math.round((capacity / (inGb ? GB : MB)) * 100) / 100);
  }

  function renderStorage(s) {
    browserQuota = s.browser_quota;
    $("donation-hint").textContent = browserQuota
      ? `Your browser lets this site use up to ${formatBytes(browserQuota)}.`
      : "Your browser does not say how much space it allows this site.";
    $("persisted").textContent = s.persisted
      ? "Granted: the browser keeps what this tab holds."
      : "Not granted: the browser may clear what this tab holds when the disk runs low.";
    const blocks = s.blocks === 1 ? "1 block" : `${s.blocks} blocks`;
    $("held-text").textContent = `${formatBytes(s.used)} of ${formatBytes(s.capacity)} used (${blocks})`;
    setBar($("held-bar"), s.capacity ? s.used / s.capacity : 0);
  }

  async function refresh({ fill = false } = {}) {
    const peer = getPeer();
    try {
      const s = await peer.storage();
      renderStorage(s);
      // Before the person agreed to a donation the form proposes the suggested amount.
      if (fill && !edited) fillDonation(s.agreed ? s.capacity : s.suggested);
    } catch (e) {
      $("held-text").textContent = sentence(e.message);
    }
    try {
      const q = await peer.quota();
      $("quota-text").textContent = `${formatBytes(q.used)} of ${formatBytes(q.quota)} used`;
      setBar($("quota-bar"), q.quota ? q.used / q.quota : 1);
    } catch (e) {
      $("quota-text").textContent = `Unknown: ${sentence(e.message)}`;
    }
  }

  $("donation-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("donation-message");
    const bytes = Math.round(Number(input.value) * Number(unit.value));
    message.classList.remove("bad");
    if (input.value === "" || !Number.isFinite(bytes) || bytes < 0) {
      message.classList.add("bad");
      message.textContent = "Enter a size of 0 or more.";
      input.focus();
      return;
    }
    if (browserQuota && bytes > browserQuota) {
      message.classList.add("bad");
      message.textContent = `Your browser allows at most ${formatBytes(browserQuota)}.`;
      input.focus();
      return;
    }
    try {
      await getPeer().set_donation(bytes);
      message.textContent = `Saved: this browser now donates ${formatBytes(bytes)}.`;
      await refresh();
    } catch (e) {
      message.classList.add("bad");
      message.textContent = sentence(e.message);
    }
  });

  return {
    /** The view opened: fill the form and keep the figures fresh while it shows. */
    show() {
      $("donation-message").textContent = "";
      edited = false;
      refresh({ fill: true });
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
    },
    hide() {
      clearInterval(timer);
    },
  };
}
