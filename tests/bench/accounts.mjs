// Benchmark: sign-up and log-in in real Chromium tabs, beside the raw costs they are made of,
// measured in the same run on the same machine. Prints a table and writes JSON.
//   node tests/bench/accounts.mjs [--runs N] [--out file.json]
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { Browser, Relay, waitFor, waitReachable, ROOT } from "../e2e/harness.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const RUNS = Number(option("runs", 5));
const OUT = option("out", join(ROOT, "tests", "bench", "results", "accounts.json"));
const PASSWORD = "violet tractor sings under seven moons";

const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const summary = (values) => ({ p50: quantile(values, 0.5), p95: quantile(values, 0.95), runs: values.length });

async function main() {
  const relay = await Relay.start();
  const browsers = [];
  try {
    const pages = [];
    for (const name of ["bench-a", "bench-b", "bench-h"]) {
      const browser = await Browser.launch(name);
      browsers.push(browser);
      const page = await browser.open(relay.url);
      await waitReachable(page);
      pages.push(page);
    }
    for (const page of pages) {
      await waitFor("peers in the DHT", () => page.evaluate(() => window.jellyfish.discover()).then((f) => f.length >= 2),
        { timeout: 45000, interval: 500 });
    }
    const [author, reader] = pages;

    // Baselines: the platform's own PBKDF2 and RSA, and the peer's RustCrypto RSA.
    const baselines = await author.evaluate(async (runs) => {
      const time = async (f) => { const t = performance.now(); await f(); return performance.now() - t; };
      const pbkdf2 = [], rsaWeb = [], rsaRust = [];
      const enc = new TextEncoder();
      for (let i = 0; i < runs; i++) {
        pbkdf2.push(await time(async () => {
          const key = await crypto.subtle.importKey("raw", enc.encode("password"), "PBKDF2", false, ["deriveBits"]);
          await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations: 600000 }, key, 256);
        }));
        rsaWeb.push(await time(() => crypto.subtle.generateKey(
          { name: "RSA-PSS", modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, true, ["sign", "verify"])));
        const { measure_rsa_keygen_ms } = await import("./pkg/jellyfish_peer.js");
        rsaRust.push(measure_rsa_keygen_ms(3072));
      }
      return { pbkdf2, rsaWeb, rsaRust };
    }, RUNS);

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
    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(OUT, JSON.stringify(result, null, 2));
    console.log(`JSON: ${OUT}`);
  } finally {
    browsers.forEach((b) => b.close());
    relay.cleanup();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
