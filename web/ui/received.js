// "Shared with me": the files other users shared with this one. The peer reads the letters
// under this account in the DHT, checks each against its sharer's current key (a forged,
// replayed or old-key letter is counted, never shown) and keeps what it read in the user's
// own index. Download goes through the transfer list; Open shows the file's own page (with
// a preview) in a new tab; Hide removes it from this list in every browser.
import { $, announce, h, icon, sentence } from "./dom.js";
import { formatBytes } from "./format.js";
import { linkFor } from "./share.js";

/** `getPeer()` returns the started peer; `transfers` runs downloads. */
export function setupReceived({ getPeer, transfers }) {
  let files = [];
  let loading = false;

  function row(file) {
    const download = h("button", {
      type: "button", className: "button ghost small", "aria-label": `Download ${file.name} from ${file.from}`,
    }, icon("download"), h("span", { className: "label", textContent: "Download" }));
    download.addEventListener("click", () => transfers.download(file));
    const open = h("a", {
      className: "button ghost small", href: linkFor(file.token), target: "_blank", rel: "noopener noreferrer",
      "aria-label": `Open ${file.name} in a new tab`,
    }, icon("link"), h("span", { className: "label", textContent: "Open" }));
    const hide = h("button", {
      type: "button", className: "button ghost small", "aria-label": `Hide ${file.name} from this list`,
    }, h("span", { className: "label", textContent: "Hide" }));
    hide.addEventListener("click", () => hideFile(file, hide));
    return h("li", { "data-id": file.id },
      h("span", { className: "received-name" }, icon("file"), " ", file.name),
      h("span", { className: "received-meta", textContent: `from ${file.from} · ${formatBytes(file.size)}` }),
      h("span", { className: "actions" }, download, open, hide));
  }

  function render() {
    $("received-list").replaceChildren(...files.map(row));
    $("received-empty").hidden = files.length > 0;
  }

  async function refresh() {
    if (loading) return;
    loading = true;
    $("received-refresh").disabled = true;
    $("received-error").textContent = "";
    $("received-status").textContent = "Checking for files shared with you…";
    try {
      const got = await getPeer().shared_with_me();
      files = got.files;
      render();
      const notes = [];
      if (!got.fresh) notes.push("Too few peers answered to check for new shares; this is the list from before.");
      if (got.refused) notes.push(`${got.refused === 1 ? "One share was" : `${got.refused} shares were`} refused: not signed by the user it names.`);
      $("received-status").textContent = notes.join(" ");
    } catch (e) {
      $("received-status").textContent = "";
      $("received-error").textContent = `Could not check for shared files: ${sentence(e.message)}`;
    } finally {
      loading = false;
      $("received-refresh").disabled = false;
    }
  }

  async function hideFile(file, button) {
    button.disabled = true;
    try {
      await getPeer().hide_shared(file.from, file.id);
      files = files.filter((f) => !(f.from === file.from && f.id === file.id));
      render();
      announce(`${file.name} hidden.`);
      $("received-title").focus();
    } catch (e) {
      button.disabled = false;
      $("received-error").textContent = `Could not hide ${file.name}: ${sentence(e.message)}`;
    }
  }

  $("received-refresh").addEventListener("click", refresh);
  $("received-title").tabIndex = -1;

  return {
    refresh,
    /** Log-out: forget the list (it names what others shared). */
    reset() {
      files = [];
      render();
      $("received-empty").hidden = true;
      $("received-status").textContent = "";
      $("received-error").textContent = "";
    },
  };
}
