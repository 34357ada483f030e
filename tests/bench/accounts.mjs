// Benchmark: sign-up and log-in in real Chromium tabs, beside the raw costs they are made of,
// measured in the same run on the same machine. Prints a table and writes JSON.
//   node tests/bench/accounts.mjs [--runs N] [--out file.json]
import { join } from "node:path";
import { ROOT, Relay, joined, openPeer } from "../e2e/harness.mjs";
import { PASSWORD, PBKDF2_MS, RSA_KEYGEN_MS, RSA_SIGN_MS, option, summary, writeResults } from "./common.mjs";

const RUNS = Number(option("runs", 5));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "accounts.json"));

/** Milliseconds for the peer's own RustCrypto code to generate an RSA-3072 key. */
const RUST_RSA_KEYGEN_MS = async () => {
  const { measure_rsa_keygen_ms } = await import(document.querySelector('link[rel="modulepreload"]').href);
  return measure_rsa_keygen_ms(3072);
};

/** Milliseconds per RSA-PSS signature with the peer's own RustCrypto code (a 3072-bit key). */
const RUST_RSA_SIGN_MS = async () => {
  const { measure_rsa_sign_ms } = await import(document.querySelector('link[rel="modulepreload"]').href);
  return measure_rsa_sign_ms(3072, 10);
};

async function main() {
  const relay = await Relay.start({ extraArgs: ["--allow-probes"] });
  const browsers = [];
  try {
    const pages = [];
    for (const name of ["bench-a", "bench-b", "bench-h"]) pages.push((await openPeer(relay, name, browsers)).page);
    for (const page of pages) await joined(page, 2);
    const [author, reader] = pages;

    // Baselines: the platform's own PBKDF2 and RSA, and the peer's RustCrypto RSA.
    const baselines = { pbkdf2: [], rsaWeb: [], rsaRust: [], signWeb: [], signRust: [] };
    for (let i = 0; i < RUNS; i++) {
      baselines.pbkdf2.push(await author.evaluate(PBKDF2_MS));
      baselines.rsaWeb.push(await author.evaluate(RSA_KEYGEN_MS));
      baselines.rsaRust.push(await author.evaluate(RUST_RSA_KEYGEN_MS));
      baselines.signWeb.push(await author.evaluate(RSA_SIGN_MS));
      baselines.signRust.push(await author.evaluate(RUST_RSA_SIGN_MS));
    }

    const signUp = [], logIn = [];
    const stamp = Date.now().toString(36);
    for (let i = 0; i < RUNS; i++) {
      const username = `bench-${stamp}-${i}`;
      signUp.push(await author.evaluate(async ([u, p]) => {
        const t = performance.now(); await window.jellyfish.sign_up(u, p); return performance.now() - t;
      }, [username, PASSWORD]));
      logIn.push(await reader.evaluate(async ([u, p]) => {
        const t = performance.now(); await window.jellyfish.log_in(u, p); return performance.now() - t;
      }, [username, PASSWORD]));
    }

    const rows = [
      ["sign-up (name check, RSA-3072 keygen, PBKDF2, 3 signed records)", summary(signUp)],
      ["log-in (3 DHT lookups, PBKDF2, RSA-OAEP, republish)", summary(logIn)],
      ["baseline: WebCrypto PBKDF2-SHA256, 600,000 iterations", summary(baselines.pbkdf2)],
      ["baseline: WebCrypto RSA-3072 key generation", summary(baselines.rsaWeb)],
      ["baseline: RustCrypto RSA-3072 key generation (wasm)", summary(baselines.rsaRust)],
      ["one RSA-PSS-3072 signature, RustCrypto in wasm (each block's warrant)", summary(baselines.signRust)],
      ["baseline: one RSA-PSS-3072 signature, WebCrypto", summary(baselines.signWeb)],
    ];
    const result = {
      machine: { cpus: (await import("node:os")).cpus().length, chromium: await browsers[0].browser.version() },
      runs: RUNS,
      results: Object.fromEntries(rows.map(([name, s]) => [name, s])),
      ratios: {
        // Sign-up generates its RSA key with WebCrypto, which is the faster engine here.
        "sign-up p50 / (WebCrypto RSA keygen p50 + PBKDF2 p50)":
          summary(signUp).p50 / (summary(baselines.rsaWeb).p50 + summary(baselines.pbkdf2).p50),
        "log-in p50 / PBKDF2 p50": summary(logIn).p50 / summary(baselines.pbkdf2).p50,
      },
    };
    console.log(`\nAccounts benchmark: ${RUNS} runs, ${result.machine.cpus} cores, Chromium ${result.machine.chromium}`);
    console.log("| operation | p50 ms | p95 ms |\n|---|---:|---:|");
    for (const [name, s] of rows) console.log(`| ${name} | ${s.p50.toFixed(0)} | ${s.p95.toFixed(0)} |`);
    for (const [name, ratio] of Object.entries(result.ratios)) console.log(`${name}: ${ratio.toFixed(2)}`);
    writeResults(OUT, result);
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
