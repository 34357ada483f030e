// The first-use question: how much of this browser's storage to donate. A tab donates nothing
// (holds nothing for others, pledges nothing) until the person agrees to an amount, here or in
// the Storage view; the peer remembers the answer in this browser.
import { $, announce, sentence } from "./dom.js";
import { formatBytes } from "./format.js";

/** `getPeer()` returns the started peer; `onChoose()` opens the Storage view. */
export function setupConsent({ getPeer, onChoose }) {
  const card = $("donate-card");
  const accept = $("donate-accept");
  let suggested = 0;

  accept.addEventListener("click", async () => {
    accept.disabled = true;
    $("donate-error").textContent = "";
    try {
      await getPeer().set_donation(suggested);
      card.hidden = true;
      announce(`Thank you: this browser now donates ${formatBytes(suggested)}.`);
      $("files-title").focus();
    } catch (e) {
      $("donate-error").textContent = sentence(e.message);
    } finally {
      accept.disabled = false;
    }
  });
  $("donate-choose").addEventListener("click", () => onChoose());

  return {
    /** Shows the question if the person has not answered it in this browser. */
    async check() {
      const peer = getPeer();
      if (!peer) return;
      try {
        const storage = await peer.storage();
        suggested = storage.suggested;
        card.hidden = storage.agreed;
        if (storage.agreed) return;
        $("donate-amount").textContent = formatBytes(suggested);
        // Each block is kept on `peer.replicas` browsers: a donation earns that fraction of it.
        $("donate-space").textContent = formatBytes(Math.floor(suggested / peer.replicas));
        accept.textContent = `Donate ${formatBytes(suggested)}`;
      } catch (e) {
        $("donate-error").textContent = sentence(e.message);
      }
    },
    hide() {
      card.hidden = true;
    },
  };
}
