// The file list: a sortable, filterable table with Download, Share and Delete per row, the drop
// zone and the Upload picker. The list comes from the user's sealed index in the network.
import { $, announce, h, icon, sentence } from "./dom.js";
import { formatBytes, formatDate, formatDay } from "./format.js";
import { droppedFiles, pickedFiles } from "./drop.js";

const FIRST_DIRECTION = { name: "ascending", size: "descending", date: "descending" };
const COMPARE = {
  name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: "base" }),
  size: (a, b) => a.size - b.size,
  date: (a, b) => a.created_ms - b.created_ms,
};

/** A file's copies against the `wanted` copies the peer asks for (its `replicas`). */
function health(copies, wanted) {
  const healthy = copies >= wanted;
  return h("span", {
    className: `health ${healthy ? "ok" : "warn"}`,
    title: healthy ? `Every block is kept by ${wanted} peers.` : "Fewer copies than wanted: this file is at risk if those peers leave.",
  }, icon(healthy ? "check" : "warning"), `${copies} of ${wanted} copies`);
}

/** `getPeer()` returns the started peer; `transfers` runs uploads and downloads; `share` is
 * the Share dialog. */
export function setupFiles({ getPeer, transfers, share }) {
  let files = [];
  let loaded = false;
  const sort = { key: "date", direction: "descending" };
  const filter = $("filter");
  const dialog = $("delete-dialog");

  function visible() {
    const needle = filter.value.trim().toLowerCase();
    const chosen = needle ? files.filter((f) => f.name.toLowerCase().includes(needle)) : [...files];
    const sign = sort.direction === "ascending" ? 1 : -1;
    return chosen.sort((a, b) => sign * COMPARE[sort.key](a, b) || COMPARE.name(a, b));
  }

  function row(file) {
    const download = h("button", {
      type: "button", className: "button ghost small", "aria-label": `Download ${file.name}`,
    }, icon("download"), h("span", { className: "label", textContent: "Download" }));
    download.addEventListener("click", () => transfers.download(file));
    const shareButton = h("button", {
      type: "button", className: "button ghost small", "aria-label": `Share ${file.name}`,
    }, icon("link"), h("span", { className: "label", textContent: "Share" }));
    shareButton.addEventListener("click", () => share.open(file, shareButton));
    const links = file.links + file.expired_links;
    const people = file.shared_with.length ? `Shared with ${file.shared_with.join(", ")}.` : "";
    const shared = links || people ? h("span", {
      className: "shared-badge",
      title: [people, links ? `${links === 1 ? "A link" : `${links} links`} to this file work until you stop sharing it.` : ""].filter(Boolean).join(" "),
    }, icon("link"), "Shared") : null;
    const remove = h("button", {
      type: "button", className: "button ghost small danger-text", "aria-label": `Delete ${file.name}`,
    }, icon("trash"), h("span", { className: "label", textContent: "Delete" }));
    remove.addEventListener("click", () => confirmDelete(file, remove));
    return h("tr", { "data-id": file.id },
      h("th", { scope: "row", className: "col-name" },
        h("span", { className: "file-name" }, icon("file"), h("span", { textContent: file.name, title: file.name })),
        shared,
        // Size, date and copies under the name, shown instead of their columns on narrow screens.
        h("span", { className: "file-meta" }, `${formatBytes(file.size)} · ${formatDay(file.created_ms)} · `, health(file.copies, getPeer().replicas))),
      h("td", { className: "col-size", textContent: formatBytes(file.size) }),
      h("td", { className: "col-date" }, h("time", { dateTime: new Date(file.created_ms).toISOString(), textContent: formatDate(file.created_ms) })),
      h("td", { className: "col-health" }, health(file.copies, getPeer().replicas)),
      h("td", { className: "col-actions" }, h("span", { className: "actions" }, download, shareButton, remove)));
  }

  function render() {
    for (const th of $("file-table").tHead.rows[0].cells) {
      const key = th.querySelector("button")?.dataset.sort;
      if (key) th.setAttribute("aria-sort", key === sort.key ? sort.direction : "none");
    }
    // Rows are rebuilt; a keyboard user on a row's button stays on the same button.
    const focused = document.activeElement?.closest("#file-rows tr") ? document.activeElement : null;
    const focusId = focused?.closest("tr").dataset.id;
    const focusAt = focused ? [...focused.closest("tr").querySelectorAll("button")].indexOf(focused) : -1;
    const rows = visible();
    $("file-rows").replaceChildren(...rows.map(row));
    if (focusId) $("file-rows").querySelector(`tr[data-id="${CSS.escape(focusId)}"]`)?.querySelectorAll("button")[focusAt]?.focus();
    $("file-table").hidden = rows.length === 0;
    $("empty").hidden = !loaded || files.length > 0;
    // Before the index has loaded, or when the filter hides every file, say so.
    $("list-note").hidden = loaded && (files.length === 0 || rows.length > 0);
    $("list-note").textContent = loaded ? `No file name contains “${filter.value.trim()}”.` : "Loading your files…";
    $("files-title").textContent = loaded && files.length ? `My files (${files.length})` : "My files";
  }

  async function refresh() {
    try {
      files = await getPeer().list_files();
      loaded = true;
      $("files-error").textContent = "";
    } catch (e) {
      $("files-error").textContent = `Could not load your files: ${sentence(e.message)}`;
    }
    render();
  }

  // Live copies: the audit asks, for a sample of each file's blocks, the peers listed at upload
  // and those now nearest the block to prove they hold it (holders copy blocks again when
  // peers leave), and the Copies column shows what it found. At most every 10 minutes while
  // the list shows; the Refresh button checks at once.
  const CHECK_EVERY_MS = 10 * 60 * 1000;
  let lastCheck = 0;
  let checking = false;
  // Bumped at log-out: a check still running then must not show its finding to the next user.
  let generation = 0;
  async function checkCopies(now) {
    if (checking || !files.length || (!now && Date.now() - lastCheck < CHECK_EVERY_MS)) return;
    checking = true;
    lastCheck = Date.now();
    const mine = generation;
    try {
      const report = await getPeer().audit();
      if (mine !== generation) return;
      const risky = report.files_at_risk;
      const note = $("copies-note");
      note.textContent = risky
        ? `${risky} ${risky === 1 ? "file is" : "files are"} at risk: part of ${risky === 1 ? "it has" : "them have"} a single copy online. `
          + "The network makes new copies as peers leave; keep a copy elsewhere until the Copies column is back up."
        : "";
      note.hidden = !risky;
      const listed = await getPeer().list_files();
      if (mine !== generation) return;
      files = listed;
      render();
    } catch {
      // Not logged in any more, or no network: the next check tries again.
    } finally {
      checking = false;
    }
  }
  setInterval(() => { if (!$("files-view").hidden && !document.hidden) checkCopies(false); }, 60 * 1000);

  function confirmDelete(file, opener) {
    $("delete-title").textContent = `Delete “${file.name}”?`;
    $("delete-text").textContent =
      "It will be removed from the network and from every browser where you are logged in. This cannot be undone.";
    dialog.returnValue = "";
    dialog.onclose = () => { if (dialog.returnValue === "delete") remove(file, opener); };
    dialog.showModal();
  }

  async function remove(file, opener) {
    const tr = opener.closest("tr");
    tr.classList.add("busy");
    for (const button of tr.querySelectorAll("button")) button.disabled = true;
    opener.querySelector(".label").textContent = "Deleting…";
    try {
      await getPeer().delete_file(file.id);
      announce(`${file.name} deleted.`);
    } catch (e) {
      $("files-error").textContent = `Could not delete ${file.name}: ${sentence(e.message)}`;
    }
    // Focus goes to the row that takes this one's place, or to the heading.
    const next = tr.nextElementSibling?.dataset.id || tr.previousElementSibling?.dataset.id;
    await refresh();
    const target = next && $("file-rows").querySelector(`tr[data-id="${CSS.escape(next)}"] button`);
    (target || $("files-title")).focus();
  }

  for (const button of $("file-table").querySelectorAll("th button")) {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      if (sort.key === key) sort.direction = sort.direction === "ascending" ? "descending" : "ascending";
      else Object.assign(sort, { key, direction: FIRST_DIRECTION[key] });
      render();
    });
  }
  filter.addEventListener("input", render);
  $("refresh").addEventListener("click", async () => {
    await refresh();
    announce("File list refreshed.");
    checkCopies(true);
  });

  $("file-input").addEventListener("change", (e) => {
    transfers.upload(pickedFiles(e.target));
    e.target.value = ""; // picking the same file again is a new upload
  });

  // Dropping anywhere on the page while the file view shows uploads; elsewhere a drop does
  // nothing (the browser would otherwise navigate away to the dropped file).
  const zone = $("drop-zone");
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  const active = () => !$("files-view").hidden;
  let depth = 0;
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    zone.classList.toggle("dragging", active());
  });
  window.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dragging");
  });
  window.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = active() ? "copy" : "none";
  });
  window.addEventListener("drop", async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (!active()) return;
    const items = await droppedFiles(e.dataTransfer);
    if (items.length) transfers.upload(items);
  });

  return {
    refresh,
    /** The view opened: another browser of the user's may have changed the list. */
    async show() {
      await refresh();
      checkCopies(false);
    },
    /** Log-out: forget the list (it is the user's). */
    reset() {
      files = [];
      loaded = false;
      filter.value = "";
      lastCheck = 0;
      generation++;
      $("copies-note").hidden = true;
      if (dialog.open) dialog.close();
      render();
    },
  };
}
