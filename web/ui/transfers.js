// Uploads and downloads with a progress bar, bytes done, speed, time left and Cancel.
// Uploads go one at a time: each already keeps several blocks in flight to several holders,
// so running two would only split the same circuits and make both slower to finish.
// Downloads start at once (up to two together), so a click never waits behind a big upload.
import { $, announce, h, icon, sentence } from "./dom.js";
import { formatBytes, formatDuration } from "./format.js";

const SPEED_WINDOW_MS = 5000;
const LIMITS = { upload: 1, download: 2 };

/** One transfer and its row in the list. */
class Transfer {
  constructor(kind, name, total) {
    this.kind = kind;
    this.name = name;
    this.total = total;
    this.done = 0;
    this.state = "queued";
    this.controller = new AbortController();
    this.samples = [];
    this.milestone = 0;
    this.render();
  }

  render() {
    const verb = this.kind === "upload" ? "Upload" : "Download";
    this.bar = h("progress", { max: Math.max(this.total, 1), value: 0, "aria-label": `${verb} of ${this.name}` });
    this.status = h("span", { className: "transfer-status", textContent: "Queued" });
    this.detail = h("p", { className: "transfer-detail", textContent: `${formatBytes(this.total)} · waiting for its turn` });
    this.cancel = h("button", {
      type: "button", className: "button ghost small", textContent: "Cancel",
      "aria-label": `Cancel ${verb.toLowerCase()} of ${this.name}`,
    });
    this.cancel.addEventListener("click", () => this.abort());
    this.row = h("li", { className: "transfer", "data-state": "queued" },
      h("div", { className: "transfer-top" },
        icon(this.kind),
        h("span", { className: "transfer-name", textContent: this.name, title: this.name }),
        this.status),
      this.bar,
      h("div", { className: "transfer-bottom" }, this.detail, this.cancel));
  }

  setState(state, statusText, detailText) {
    this.state = state;
    this.row.dataset.state = state;
    this.status.textContent = statusText;
    if (detailText !== undefined) this.detail.textContent = detailText;
    if (!["queued", "running"].includes(state)) {
      // Keyboard users keep their place when the button they were on goes away.
      if (document.activeElement === this.cancel) $("clear-transfers").focus();
      this.cancel.remove();
    }
  }

  start() {
    this.started = performance.now();
    this.samples = [[this.started, 0]];
    this.setState("running", "0 %", this.kind === "upload" ? "Encrypting and placing the first block…" : "Fetching the first block…");
  }

  progress(done) {
    if (this.state !== "running") return;
    const now = performance.now();
    this.done = Math.min(done, this.total);
    this.samples.push([now, this.done]);
    while (this.samples.length > 2 && now - this.samples[0][0] > SPEED_WINDOW_MS) this.samples.shift();
    const [t0, d0] = this.samples[0];
    const speed = now > t0 ? ((this.done - d0) * 1000) / (now - t0) : 0;
    const fraction = this.total ? this.done / this.total : 1;
    this.bar.value = this.total ? this.done : 1;
    this.status.textContent = `${Math.floor(fraction * 100)} %`;
    const parts = [`${formatBytes(this.done)} of ${formatBytes(this.total)}`];
    if (speed > 0) parts.push(`${formatBytes(speed)}/s`);
    if (speed > 0 && this.done < this.total) parts.push(`${formatDuration((this.total - this.done) / speed)} left`);
    this.detail.textContent = parts.join(" · ");
    // Every block is placed; an upload still seals and publishes the file index.
    if (this.done === this.total && this.kind === "upload") {
      this.detail.textContent = `${formatBytes(this.total)} sent · adding it to your files…`;
    }
    // Screen-reader users hear each quarter of a long transfer, not every block.
    const quarter = Math.floor(fraction * 4);
    if (this.total > 4 * 1024 * 1024 && quarter > this.milestone && quarter < 4) {
      this.milestone = quarter;
      announce(`${this.name}: ${quarter * 25} % ${this.kind === "upload" ? "uploaded" : "downloaded"}.`);
    }
  }

  finish(detailText, state = "done") {
    this.bar.value = Math.max(this.total, 1);
    const seconds = (performance.now() - this.started) / 1000;
    this.setState(state, state === "warn" ? "Done, with a warning" : "Done",
      detailText || `${formatBytes(this.total)} in ${formatDuration(seconds)}`);
  }

  fail(e) {
    this.setState("failed", "Failed", readable(e));
  }

  abort() {
    if (!["queued", "running"].includes(this.state)) return;
    this.controller.abort();
    this.setState("cancelled", "Cancelled", `${formatBytes(this.done)} of ${formatBytes(this.total)} when cancelled`);
    announce(`${this.kind === "upload" ? "Upload" : "Download"} of ${this.name} cancelled.`);
    this.onSettled?.();
  }

  get cancelled() {
    return this.controller.signal.aborted;
  }
}

/**
 * What to tell the person about a failed transfer: the peer's sentence, except that an
 * over-quota or too-large failure (codes `over_quota`, `too_large`, sizes in bytes) is worded
 * in the units people read.
 */
function readable(e) {
  if (e.code === "over_quota") {
    const [size, used, quota] = [e.size, e.used, e.quota].map((n) => formatBytes(n));
    return `Over quota: this upload needs ${size} but you use ${used} of ${quota}; donate more space or delete files.`;
  }
  if (e.code === "too_large") {
    return `This file is ${formatBytes(e.size)}; the largest file Jellyfish stores is ${formatBytes(e.max)}.`;
  }
  if (e.code === "link_gone") {
    return "This file is no longer shared with you: its owner stopped sharing it or deleted it.";
  }
  return sentence(e.message);
}

/** Saves a Blob under `name` the way a download link would. */
export function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name.split("/").pop() || "download" });
  document.body.append(link);
  link.click();
  link.remove();
  // The browser reads the URL after the click returns; a minute is plenty for it to start.
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** `getPeer()` returns the started peer; `onUploaded()` runs after each finished upload. */
export function setupTransfers({ getPeer, onUploaded }) {
  const queues = { upload: [], download: [] };
  const running = { upload: 0, download: 0 };
  const list = $("transfer-list");
  const all = new Set();

  function add(transfer) {
    all.add(transfer);
    $("transfers").hidden = false;
    list.prepend(transfer.row);
    queues[transfer.kind].push(transfer);
    pump(transfer.kind);
  }

  function pump(kind) {
    while (running[kind] < LIMITS[kind] && queues[kind].length) {
      const next = queues[kind].shift();
      if (next.cancelled) continue;
      running[kind]++;
      let settled = false;
      // A cancel frees the slot at once, even if the peer has not noticed the signal yet.
      next.onSettled = () => {
        if (settled) return;
        settled = true;
        all.delete(next);
        running[kind]--;
        pump(kind);
      };
      (kind === "upload" ? runUpload : runDownload)(next).finally(next.onSettled);
    }
  }

  async function runUpload(t) {
    t.start();
    announce(`Uploading ${t.name}.`);
    try {
      const report = await getPeer().upload(t.file, t.name, undefined, (done) => t.progress(done), t.controller.signal);
      if (t.cancelled) return; // cancelled on our side: the result is no longer wanted
      const copies = report.file.copies;
      if (report.complete) {
        t.finish();
        announce(`${t.name} uploaded, ${copies} of ${report.replicas} copies.`);
      } else {
        t.finish(`Only ${copies} of ${report.replicas} copies could be stored: too few peers are online.`, "warn");
        announce(`${t.name} uploaded with only ${copies} of ${report.replicas} copies.`);
      }
    } catch (e) {
      if (t.cancelled) return;
      t.fail(e);
      announce(`Upload of ${t.name} failed: ${readable(e)}`);
    } finally {
      onUploaded();
    }
  }

  async function runDownload(t) {
    t.start();
    announce(`Downloading ${t.name}.`);
    try {
      // A file someone shared is read with the capability they gave (a link's token).
      const blob = t.token
        ? await getPeer().download_link(t.token, (done) => t.progress(done), t.controller.signal)
        : await getPeer().download(t.id, (done) => t.progress(done), t.controller.signal);
      if (t.cancelled) return;
      t.finish();
      save(blob, t.name);
      announce(`${t.name} downloaded.`);
    } catch (e) {
      if (t.cancelled) return;
      t.fail(e);
      announce(`Download of ${t.name} failed: ${readable(e)}`);
    }
  }

  $("clear-transfers").addEventListener("click", () => {
    for (const row of [...list.children]) {
      if (!["queued", "running"].includes(row.dataset.state)) row.remove();
    }
    $("transfers").hidden = list.children.length === 0;
    $("files-title").focus();
  });

  return {
    upload(items) {
      for (const { file, name } of items) {
        const t = new Transfer("upload", name, file.size);
        t.file = file;
        add(t);
      }
    },
    /** Downloads one of the user's files, or (with `token`) one shared with them. */
    download(file) {
      const t = new Transfer("download", file.name, file.size);
      t.id = file.id;
      t.token = file.token;
      add(t);
    },
    /** Log-out: stop everything and forget the list (it names the user's files). */
    reset() {
      for (const t of all) t.controller.abort(); // results that still arrive are ignored
      all.clear();
      for (const kind of ["upload", "download"]) queues[kind].length = 0;
      for (const row of [...list.children]) row.remove();
      $("transfers").hidden = true;
    },
  };
}
