// How the page looks and reads: screenshots at desktop and phone width, and axe-core's
// accessibility checks, for the scenarios that walk through the page's screens.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Screenshots at desktop and phone width; the page is left at desktop width. */
export async function shots(peer, label, prefix = "app") {
  await peer.page.setViewportSize(DESKTOP);
  await peer.browser.screenshot(peer.page, `${prefix}-${label}-desktop`);
  await peer.page.setViewportSize(PHONE);
  await peer.browser.screenshot(peer.page, `${prefix}-${label}-phone`);
  await peer.page.setViewportSize(DESKTOP);
}

/**
 * Runs axe-core on the page. The page's CSP forbids inline scripts, so the source is evaluated
 * over CDP (Runtime.evaluate is not subject to the page's CSP) instead of added as a <script>.
 */
export async function axe(page, label) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
    }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `axe on ${label}:\n${JSON.stringify(bad, null, 2)}`);
}
