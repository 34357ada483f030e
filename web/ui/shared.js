// The page opened with a share link (#share=… in the fragment): what the link names, and a
// Download button. No account: the tab's peer fetches the sealed blocks from the peers that
// hold them and opens them with the key in the link. The fragment never leaves this tab.
import { $, announce, sentence } from "./dom.js";
import { formatBytes, formatDate } from "./format.js";
import { save } from "./transfers.js";

/** The share token in this page's fragment, or null. */
export function sharedToken() {
  const hash = location.hash.slice(1);
  return hash.startsWith("share=") ? hash : null;
}

const MESSAGES = {
  bad_link: "This link is not complete: it may have been cut short when it was copied. Ask for it again.",
  link_expired: "This link has expired. Ask whoever shared the file for a new one.",
  link_gone: "This link no longer works: the file was unshared or deleted by its owner.",
  unavailable: "The peers that hold this file can't be reached right now. Try again in a minute.",
};

const IMAGE = /\.(png|jpe?g|gif|webp|avif|bmp)$/i;
const TEXT = /\.(txt|md|csv|tsv|json|log|xml|ya?ml|toml|ini|rs|js|py|c|h|html?|css)$/i;
/** Bytes of text shown at most; the rest is in the downloaded file. */
const TEXT_PREVIEW = 64 * 1024;

/** Shows what the fetched `blob` holds, for pictures and plain text (by the file's name). */
async function preview(blob, name) {
  const image = $("shared-image");
  const text = $("shared-text");
  if (IMAGE.test(name)) {
    const url = URL.createObjectURL(blob);
    image.onload = () => URL.revokeObjectURL(url);
    image.alt = `Preview of ${name}`;
    image.src = url;
    image.hidden = false;
    $("shared-caption").textContent = name;
  } else if (TEXT.test(name)) {
    text.textContent = await blob.slice(0, TEXT_PREVIEW).text();
    text.hidden = false;
    $("shared-caption").textContent = blob.size > TEXT_PREVIEW
      ? `The first ${formatBytes(TEXT_PREVIEW)} of ${name}` : name;
  } else {
    return;
  }
  $("shared-preview").hidden = false;
}

/** `peerReady` resolves to the started peer; `onLeave()` shows the log-in form instead. */
export function setupShared({ peerReady, onLeave }) {
  const token = sharedToken();
  const button = $("shared-download");
  let info = null;

  async function read() {
    try {
      const peer = await peerReady;
      info = peer.read_link(token);
      $("shared-name").textContent = info.name;
      $("shared-size").textContent = formatBytes(info.size);
      if (info.expires_ms) {
        $("shared-expiry").hidden = false;
        $("shared-expiry").textContent = `The link works until ${formatDate(info.expires_ms)}.`;
      }
      document.title = `${info.name} · Jellyfish`;
      button.disabled = false;
    } catch (e) {
      $("shared-name").textContent = "This link can't be opened";
      $("shared-error").textContent = MESSAGES[e.code] || sentence(e.message);
    }
  }

  async function download() {
    button.disabled = true;
    $("shared-error").textContent = "";
    const progress = $("shared-progress");
    progress.hidden = false;
    progress.value = 0;
    $("shared-status").textContent = "Finding the peers that hold it…";
    try {
      const peer = await peerReady;
      const blob = await peer.download_link(token, (done) => {
        progress.value = info.size ? done / info.size : 1;
        $("shared-status").textContent = `${formatBytes(done)} of ${formatBytes(info.size)}`;
      });
      save(blob, info.name);
      await preview(blob, info.name);
      progress.value = 1;
      $("shared-status").textContent = `Downloaded ${info.name} (${formatBytes(blob.size)}), every block checked.`;
      announce($("shared-status").textContent);
    } catch (e) {
      progress.hidden = true;
      $("shared-status").textContent = "";
      $("shared-error").textContent = MESSAGES[e.code] || sentence(e.message);
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener("click", download);
  // A link pasted into this tab's address bar changes only the fragment: read it afresh.
  window.addEventListener("hashchange", () => { if (sharedToken() && sharedToken() !== token) location.reload(); });
  $("shared-leave").addEventListener("click", () => {
    // The fragment goes: the log-in form is the page without the link.
    history.replaceState(null, "", location.pathname + location.search);
    onLeave();
  });

  return {
    active: token !== null,
    show() {
      $("share-view").hidden = false;
      $("auth-view").hidden = true;
      read();
    },
  };
}
