// Benchmark: page load. A fresh profile (nothing cached) opens the page, then reloads it (the
// module kept); each time, from navigation to a form that takes input, to the wasm module
// compiled and to the peer started (the page's own performance marks), with the bytes the
// module took on the wire, and those of the password estimator's module fetched after it. Baseline in the same run: the same fresh load with compression
// refused (Accept-Encoding: identity), the module as the relay served it before it was
// precompressed. Prints a markdown table and writes every raw number as JSON.
//   scripts/isolated.sh node tests/bench/pageload.mjs [--runs 5] [--out tests/bench/results/pageload.json]
import { join } from "node:path";
import { Browser, ROOT, Relay } from "../e2e/harness.mjs";
import { MIB, option, summary, writeResults } from "./common.mjs";

const RUNS = Number(option("runs", 5));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "pageload.json"));

/** In the page, once the peer has started: the marks and what the wasm module cost. */
const TIMINGS = () => {
  const mark = (name) => performance.getEntriesByName(`jellyfish:${name}`)[0]?.startTime ?? null;
  const resources = performance.getEntriesByType("resource");
  const wasm = resources.find((r) => r.name.endsWith("/jellyfish_peer_bg.wasm"));
  const estimator = resources.find((r) => r.name.endsWith("/jellyfish_password_bg.wasm"));
  return {
    form_ms: mark("form-ready"),
    wasm_ms: mark("wasm-ready"),
    started_ms: mark("started"),
    wasm_wire_bytes: wasm ? wasm.transferSize : null,
    wasm_bytes: wasm ? wasm.decodedBodySize : null,
    estimator_wire_bytes: estimator ? estimator.transferSize : null,
  };
};

async function load(page, how) {
  await how();
  await page.waitForFunction(() => window.jellyfish !== undefined, null, { timeout: 30000 });
  // The password estimator's module follows the peer's start: wait for it too, to count it.
  await page.waitForFunction(
    () => performance.getEntriesByType("resource").some((r) => r.name.endsWith("/jellyfish_password_bg.wasm") && r.responseEnd > 0),
    null, { timeout: 30000 });
  return page.evaluate(TIMINGS);
}

async function main() {
  const relay = await Relay.start();
  const runs = { fresh: [], reload: [], uncompressed: [] };
  try {
    for (let i = 0; i < RUNS; i++) {
      const browser = await Browser.launch(`bench-pageload${i}`);
      try {
        const page = await browser.newPage();
        runs.fresh.push(await load(page, () => page.goto(relay.url)));
        runs.reload.push(await load(page, () => page.reload()));
      } finally {
        browser.close();
      }
      // The baseline: a fresh profile whose requests accept no compression.
      const plain = await Browser.launch(`bench-pageload-plain${i}`);
      try {
        const page = await plain.newPage();
        await page.setExtraHTTPHeaders({ "accept-encoding": "identity" });
        runs.uncompressed.push(await load(page, () => page.goto(relay.url)));
      } finally {
        plain.close();
      }
    }
  } finally {
    relay.cleanup();
  }
  const figure = (kind, key) => summary(runs[kind].map((r) => r[key]));
  const rows = [];
  const row = (label, value, base, baseLabel) =>
    rows.push(`| ${label} | ${value} | ${baseLabel} | ${base} | ${(value / base).toFixed(2)} |`);
  const p50 = (kind, key) => Math.round(figure(kind, key).p50);
  for (const [key, label] of [["form_ms", "a form that takes input"], ["wasm_ms", "the wasm module compiled"], ["started_ms", "the peer started"]]) {
    row(`navigation to ${label}, fresh profile, ms p50`, p50("fresh", key), p50("uncompressed", key), "same, module uncompressed");
    row(`navigation to ${label}, reload, ms p50`, p50("reload", key), p50("fresh", key), "fresh profile");
  }
  const mib = (kind) => (figure(kind, "wasm_wire_bytes").p50 / MIB).toFixed(2);
  row("wasm module on the wire, fresh profile, MiB", mib("fresh"), mib("uncompressed"), "same, uncompressed");
  row("wasm module on the wire, reload, MiB", mib("reload"), mib("fresh"), "fresh profile");
  const estimatorMib = (kind) => (figure(kind, "estimator_wire_bytes").p50 / MIB).toFixed(2);
  row("password estimator's module on the wire (after the peer started), fresh profile, MiB", estimatorMib("fresh"), estimatorMib("uncompressed"), "same, uncompressed");
  console.log(`\nPage load, ${RUNS} fresh profiles (and a reload in each)\n`);
  console.log("| figure | Jellyfish | baseline, same run | baseline | ratio |\n|---|---:|---|---:|---:|");
  console.log(rows.join("\n"));
  writeResults(OUT, { runs: RUNS, raw: runs });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
