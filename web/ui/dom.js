// Small DOM helpers shared by the views.

export const $ = (id) => document.getElementById(id);

/** Creates an element with properties (className, textContent, …) and children. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("aria-") || key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// Icons are static markup written here, never built from data, so innerHTML is safe.
const ICONS = {
  download: '<path d="M12 4v12M6 10l6 6 6-6M4 20h16"/>',
  trash: '<path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6"/>',
  upload: '<path d="M12 16V4M6 10l6-6 6 6M4 20h16"/>',
  check: '<path d="M5 12l5 5 9-10"/>',
  warning: '<path d="M12 3l10 18H2zM12 10v5M12 18v.5"/>',
  file: '<path d="M6 3h8l5 5v13H6zM14 3v5h5"/>',
  link: '<path d="M10 14a4 4 0 0 0 6 0l3-3a4 4 0 0 0-6-6l-1 1M14 10a4 4 0 0 0-6 0l-3 3a4 4 0 0 0 6 6l1-1"/>',
};

export function icon(name) {
  const span = document.createElement("span");
  span.className = "icon-wrap";
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = `<svg class="icon" viewBox="0 0 24 24" focusable="false">${ICONS[name]}</svg>`;
  return span;
}

/**
 * Says something to screen-reader users through the polite live region. Clearing first and
 * writing a moment later makes the same sentence twice in a row be read twice.
 */
export function announce(text) {
  const region = $("announcer");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

/** Errors from the peer start lower-case ("wrong password"); show them as sentences. */
export function sentence(message) {
  const text = String(message || "Something went wrong.");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Sets a bar's fill (a CSSOM property assignment, which the page's CSP allows). */
export function setBar(fill, fraction) {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  fill.style.width = `${(clamped * 100).toFixed(1)}%`;
  fill.classList.toggle("full", clamped >= 0.9);
}
