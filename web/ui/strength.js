// The password-strength meter under a new-password field. The estimate comes from the
// password estimator's module (zxcvbn, the same one the peer's sign-up and change-password
// check asks), so the meter never promises a password the peer would refuse.
import { h } from "./dom.js";

const WORDS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];

/**
 * Wires a meter into `container` for `input`. `estimate(password)` returns the peer's
 * PasswordStrength, or null while the estimator's module is still loading (the meter
 * updates itself when it arrives).
 */
export function strengthMeter(container, input, estimate) {
  const fills = [0, 1, 2, 3].map(() => h("span", { className: "segment" }));
  const summary = h("p", { className: "strength-summary", id: `${container.id}-summary` });
  const warning = h("p", { className: "strength-warning" });
  const advice = h("ul", { className: "strength-advice" });
  container.replaceChildren(h("div", { className: "segments", "aria-hidden": "true" }, ...fills), summary, warning, advice);
  // Read with the field, not announced on every keystroke.
  input.setAttribute("aria-describedby", summary.id);

  function update() {
    const result = input.value ? estimate(input.value) : null;
    container.dataset.score = result ? String(result.score) : "";
    fills.forEach((fill, i) => fill.classList.toggle("on", !!result && i < Math.max(1, result.score)));
    if (!result) {
      summary.textContent = "Use a long passphrase of several uncommon words.";
      warning.textContent = "";
      advice.replaceChildren();
      return;
    }
    const verdict = result.acceptable ? "good enough" : "too weak to use";
    summary.textContent = `Strength: ${WORDS[result.score]} (${verdict}). It could be guessed in ${result.crack_time}.`;
    warning.textContent = result.warning || "";
    advice.replaceChildren(...(result.acceptable ? [] : result.suggestions.map((s) => h("li", { textContent: s }))));
  }
  input.addEventListener("input", update);
  window.addEventListener("jellyfish:estimator-ready", update);
  update();
  return { update };
}
