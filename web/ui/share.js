// The Share dialog of a file's row: shares it with a person by username (a letter sealed to
// their key; they need not be online) and stops sharing with one; makes a link anyone can open
// with no account (optionally expiring), copies it, and stops sharing. Stopping re-keys the
// file (its blocks are sealed again under a new key and the old ones freed), so every link
// made for it stops working, and what a person was given opens nothing more; the people it
// stays shared with get the new key.
import { $, announce, h, sentence } from "./dom.js";
import { formatBytes } from "./format.js";

const DAY_MS = 24 * 60 * 60 * 1000;

const PERSON_MESSAGES = {
  unknown_user: "No account has this username. Check the spelling.",
  share_self: "This is your own username: the file is yours already.",
  bad_username: "Usernames are 3 to 32 letters, digits, “.”, “_” or “-”.",
  network_unreachable: "Too few peers answered to find this user. Try again in a moment.",
  letter_unconfirmed: "Shared, but no peer confirmed their letter yet: it goes again each time you log in. Stop sharing to take it back.",
};

/** What the page says when a re-key's letters (the new key, or the file gone) were not confirmed. */
const LETTER_AGAIN = "No peer confirmed a letter about it yet: it goes again each time you log in.";
/** What the page says when a re-key failed after its new key was in the index. */
const REKEY_UNFINISHED = (e) => `The file was sealed again under a new key, but a step after failed (${e.message}). Reopen Share to see where it stands.`;

/** The link that opens a share token: the token goes in the fragment, never to a server. */
export function linkFor(token) {
  return `${location.origin}${location.pathname}#share=${token}`;
}

/** `getPeer()` returns the started peer; `onChanged()` runs after a link is made or revoked. */
export function setupShare({ getPeer, onChanged }) {
  const dialog = $("share-dialog");
  let file = null;
  let busy = false;

  /** The file as the index lists it now: by id, or, re-keyed (a new id), by name and upload
   * time; null when the list cannot be read. */
  async function refreshed() {
    const rows = await getPeer().list_files().catch(() => null);
    if (!rows) return null;
    return rows.find((f) => f.id === file.id)
      || rows.find((f) => f.name === file.name && f.created_ms === file.created_ms) || null;
  }

  function setBusy(on) {
    busy = on;
    for (const id of ["share-create", "share-stop", "share-expiry", "share-user", "share-user-add"]) $(id).disabled = on;
    for (const button of $("share-people").querySelectorAll("button")) button.disabled = on;
  }

  function showPeople() {
    $("share-people").replaceChildren(...file.shared_with.map((name) => {
      const stop = h("button", {
        type: "button", className: "button ghost small danger-text", textContent: "Stop",
        "aria-label": `Stop sharing with ${name}`,
      });
      stop.addEventListener("click", () => stopPerson(name));
      return h("li", {}, h("span", { textContent: `Shared with ${name}` }), stop);
    }));
  }

  async function addPerson() {
    const name = $("share-user").value.trim();
    if (busy || !name) return;
    setBusy(true);
    $("share-error").textContent = "";
    $("share-status").textContent = `Sharing with ${name}…`;
    try {
      file = await getPeer().share_with(file.id, name);
      showPeople();
      $("share-user").value = "";
      $("share-status").textContent = `Shared with ${name}: it appears under “Shared with me” when they log in.`;
      announce($("share-status").textContent);
      onChanged();
    } catch (e) {
      $("share-status").textContent = "";
      if (e.code === "letter_unconfirmed") {
        // The share stands (the letter may have landed): show the file as the index has it.
        file = (await refreshed()) || { ...file, shared_with: [...file.shared_with, name] };
        showPeople();
        $("share-user").value = "";
        onChanged();
      }
      $("share-error").textContent = PERSON_MESSAGES[e.code] || `Could not share: ${sentence(e.message)}`;
    } finally {
      setBusy(false);
      $("share-user").focus();
    }
  }

  // After a re-key (stop sharing with one person, or every link) reported `e`: when the index
  // holds the file under a new id, the re-key happened, done but for a letter with the new key
  // (`letter_unconfirmed`: it goes again at the next log-in) or unfinished. Then `show` redraws
  // the dialog, `doneText` or the error is shown and announced, and `rekeyed` is true. `now` is
  // the file as the index has it, or null when it could not be read.
  async function afterRekeyError(e, doneText, show) {
    const now = await refreshed();
    if (!now || now.id === file.id) return { rekeyed: false, now };
    file = now;
    show();
    const done = e.code === "letter_unconfirmed";
    $("share-status").textContent = done ? doneText : "";
    $("share-error").textContent = done ? LETTER_AGAIN : REKEY_UNFINISHED(e);
    announce(done ? doneText : $("share-error").textContent);
    onChanged();
    return { rekeyed: true, now };
  }

  async function stopPerson(name) {
    if (busy) return;
    setBusy(true);
    $("share-error").textContent = "";
    const progress = $("share-progress");
    progress.hidden = false;
    progress.value = 0;
    $("share-status").textContent = `Sealing ${file.name} again under a new key…`;
    try {
      file = await getPeer().unshare_with(file.id, name, (done) => {
        progress.value = file.size ? done / file.size : 1;
        $("share-status").textContent = `Sealing again under a new key: ${formatBytes(done)} of ${formatBytes(file.size)}`;
      });
      showPeople();
      showLive();
      $("share-status").textContent = `No longer shared with ${name}: what they were given opens nothing more.`
        + (file.shared_with.length ? " The others it is shared with have the new key." : "");
      announce($("share-status").textContent);
      onChanged();
    } catch (e) {
      $("share-status").textContent = "";
      const { rekeyed } = await afterRekeyError(e, `No longer shared with ${name}: what they were given opens nothing more.`, () => {
        showPeople();
        showLive();
      });
      if (rekeyed) return;
      $("share-error").textContent = `Could not stop sharing with ${name}: ${sentence(e.message)}`;
    } finally {
      progress.hidden = true;
      setBusy(false);
      $("share-user").focus();
    }
  }

  function showLive() {
    const live = file.links + file.expired_links;
    $("share-live").hidden = live === 0;
    $("share-live-text").textContent = live === 0 ? ""
      : `${live === 1 ? "1 link" : `${live} links`} made for this file ${live === 1 ? "works" : "work"} until you stop sharing`
        + (file.expired_links ? ` (${file.expired_links} expired; they stop working when you next log in)` : "") + ".";
  }

  async function create() {
    if (busy) return;
    setBusy(true);
    $("share-error").textContent = "";
    $("share-status").textContent = "Making the link…";
    try {
      const days = Number($("share-expiry").value);
      const token = await getPeer().share_link(file.id, days ? Date.now() + days * DAY_MS : undefined);
      $("share-url").value = linkFor(token);
      $("share-result").hidden = false;
      $("share-status").textContent = days ? `The link works for ${days === 1 ? "1 day" : `${days} days`}.` : "The link works until you stop sharing.";
      file = { ...file, links: file.links + 1 };
      showLive();
      $("share-url").select();
      $("share-copy").focus();
      onChanged();
    } catch (e) {
      $("share-status").textContent = "";
      $("share-error").textContent = `Could not make a link: ${sentence(e.message)}`;
    } finally {
      setBusy(false);
    }
  }

  async function copy() {
    try {
      await navigator.clipboard.writeText($("share-url").value);
      $("share-status").textContent = "Link copied.";
    } catch {
      $("share-url").select();
      $("share-status").textContent = "Select the link and copy it (the browser did not allow copying from here).";
    }
    announce($("share-status").textContent);
  }

  async function stop() {
    if (busy) return;
    setBusy(true);
    $("share-error").textContent = "";
    const progress = $("share-progress");
    progress.hidden = false;
    progress.value = 0;
    $("share-status").textContent = `Sealing ${file.name} again under a new key…`;
    try {
      const now = await getPeer().revoke_links(file.id, (done) => {
        progress.value = file.size ? done / file.size : 1;
        $("share-status").textContent = `Sealing again under a new key: ${formatBytes(done)} of ${formatBytes(file.size)}`;
      });
      file = now;
      $("share-result").hidden = true;
      $("share-url").value = "";
      showLive();
      $("share-status").textContent = "Sharing stopped: links made before no longer open this file.";
      announce($("share-status").textContent);
      onChanged();
    } catch (e) {
      $("share-status").textContent = "";
      const { rekeyed, now } = await afterRekeyError(e, "Sharing stopped: links made before no longer open this file.", () => {
        $("share-result").hidden = true;
        $("share-url").value = "";
        showLive();
      });
      if (rekeyed) return;
      $("share-error").textContent = `Could not stop sharing: ${sentence(e.message)}`
        + (now ? " Every link still works." : " Reopen Share to see where it stands.");
    } finally {
      progress.hidden = true;
      setBusy(false);
    }
  }

  $("share-user-add").addEventListener("click", addPerson);
  $("share-user").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); addPerson(); }
  });
  $("share-create").addEventListener("click", create);
  $("share-copy").addEventListener("click", copy);
  $("share-stop").addEventListener("click", stop);
  dialog.addEventListener("cancel", (e) => { if (busy) e.preventDefault(); });

  return {
    /** Opens the dialog for `chosen` (a FileInfo); focus returns to `opener` when it closes. */
    open(chosen, opener) {
      file = chosen;
      $("share-title").textContent = `Share “${file.name}”`;
      $("share-result").hidden = true;
      $("share-url").value = "";
      $("share-status").textContent = "";
      $("share-error").textContent = "";
      $("share-user").value = "";
      showLive();
      showPeople();
      dialog.onclose = () => opener?.isConnected && opener.focus();
      dialog.showModal();
    },
    close() {
      if (dialog.open) dialog.close();
    },
  };
}
