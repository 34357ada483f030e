// The sign-up / log-in form. One form for both, because they ask the same two things; the
// mode decides the wording, the password's autocomplete hint and whether the meter shows.
import { $, sentence } from "./dom.js";
import { strengthMeter } from "./strength.js";

const MODES = {
  login: { title: "Log in to Jellyfish", submit: "Log in", busy: "Deriving keys…", autocomplete: "current-password" },
  signup: { title: "Create your account", submit: "Create account", busy: "Creating your keys…", autocomplete: "new-password" },
};

/** Show/hide for a password field, so people can check what they typed. */
export function revealToggle(button, input) {
  const render = () => {
    const shown = input.type === "text";
    button.textContent = shown ? "Hide" : "Show";
    button.setAttribute("aria-label", shown ? "Hide password" : "Show password");
  };
  button.addEventListener("click", () => {
    input.type = input.type === "password" ? "text" : "password";
    render();
  });
  render();
  return () => { input.type = "password"; render(); };
}

/** While a slow operation runs: every field disabled, the button says what is happening. */
export function setBusy(fieldsets, button, busyText, idleText) {
  for (const set of fieldsets) set.disabled = !!busyText;
  button.replaceChildren();
  if (busyText) {
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    button.append(spinner, busyText);
  } else {
    button.append(idleText);
  }
  button.setAttribute("aria-busy", busyText ? "true" : "false");
}

// Connected peers other than the relays (a tab keeps two relays when the network has them).
const otherPeers = (status) => status.connected_peers.filter((p) => !status.relays_connected.includes(p)).length;

/**
 * Whether this tab is the only one on the network: it holds its own reservation at the relay,
 * and the relay (whose `/health` counts every tab's) holds no other.
 */
async function aloneOnNetwork(peer) {
  try {
    const status = await peer.status();
    if (!status.reservation || otherPeers(status) > 0) return false;
    const health = await (await fetch("/health", { cache: "no-store" })).json();
    return health.reservations <= 1;
  } catch {
    return false;
  }
}

/**
 * `peerReady` resolves to the started peer (the form works before it has: a submit waits);
 * `estimate(password, username)` is the peer's strength estimate or null while loading;
 * `onAccount(account)` runs after a successful sign-up or log-in.
 */
export function setupAuth({ peerReady, estimate, onAccount }) {
  const form = $("auth-form");
  const username = $("username");
  const password = $("password");
  const submit = $("auth-submit");
  const error = $("auth-error");
  const fieldsets = [...form.querySelectorAll("fieldset")];
  const hidePassword = revealToggle(form.querySelector(".reveal"), password);
  const meter = strengthMeter($("signup-strength"), password, (p) => estimate(p, username.value));
  const mode = () => form.elements.mode.value;
  const firstHere = $("first-here");
  // In: the password forgotten by the form, the button back, the account view.
  const done = (account, m) => {
    password.value = "";
    hidePassword();
    meter.update();
    setBusy(fieldsets, submit, "", m.submit);
    onAccount(account);
  };

  function renderMode() {
    const m = MODES[mode()];
    $("auth-title").textContent = m.title;
    submit.textContent = m.submit;
    password.autocomplete = m.autocomplete;
    $("signup-strength").hidden = mode() !== "signup";
    if (mode() === "signup") {
      password.setAttribute("aria-describedby", "signup-strength-summary");
      meter.update();
    } else {
      password.removeAttribute("aria-describedby");
    }
    error.textContent = "";
  }
  form.addEventListener("change", (e) => { if (e.target.name === "mode") renderMode(); });
  // The username counts against the password (a password near the name is weak).
  username.addEventListener("input", () => { if (mode() === "signup") meter.update(); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault(); // never navigate: the password must not reach a URL
    error.textContent = "";
    if (!username.value.trim()) { error.textContent = "Enter your username."; username.focus(); return; }
    if (!password.value) { error.textContent = "Enter your password."; password.focus(); return; }
    const m = MODES[mode()];
    setBusy(fieldsets, submit, "Connecting…", m.submit);
    let watch;
    let ended = false;
    const stopWatching = () => { ended = true; clearInterval(watch); };
    try {
      const peer = await peerReady;
      // Until another peer is connected, the peer is still joining: log-in and sign-up wait
      // for the network (up to 30 s) rather than answer from silence. Say so.
      const label = async () => {
        const status = await peer.status().catch(() => null);
        // Ended while the status was asked: a label now would disable the form for good
        // (seen in CI: the error shown, the fields disabled).
        if (ended) return;
        const others = status ? otherPeers(status) : 0;
        setBusy(fieldsets, submit, others > 0 ? m.busy : "Finding the network…", m.submit);
      };
      if (mode() === "signup" && await aloneOnNetwork(peer)) {
        // Nobody else to hold the account or to ask whether the name is free: offer the
        // first-on-the-network sign-up at once rather than wait 30 s for a network that is
        // not there.
        setBusy(fieldsets, submit, "", m.submit);
        firstHere.hidden = false;
        firstHere.querySelector("button").focus();
        return;
      }
      await label();
      watch = setInterval(label, 500);
      const name = username.value.trim();
      const account = mode() === "signup"
        ? await peer.sign_up(name, password.value)
        : await peer.log_in(name, password.value);
      stopWatching();
      done(account, m);
    } catch (e) {
      stopWatching();
      setBusy(fieldsets, submit, "", m.submit);
      // A lookup that heard too few peers (it carries `heard`) gets the one plain sentence;
      // any other failure says what happened.
      error.textContent = e.code === "network_unreachable" && e.heard !== undefined
        ? "Can't reach enough peers to check; try again."
        : sentence(e.message);
      // The first person on a fresh network: the relay sees every tab, and this is the only
      // one, so the account can only live here for now. Offer that, plainly.
      if (mode() === "signup" && e.code === "network_unreachable" && await aloneOnNetwork(await peerReady)) {
        firstHere.hidden = false;
        firstHere.querySelector("button").focus();
        return;
      }
      // Put the cursor where the fix goes (the page switches on the code, never on the text).
      const aboutName = ["bad_username", "name_taken", "unknown_user"].includes(e.code);
      (aboutName ? username : password).focus();
    }
  });

  form.addEventListener("change", () => { firstHere.hidden = true; });
  username.addEventListener("input", () => { firstHere.hidden = true; });
  $("first-here-submit").addEventListener("click", async () => {
    const m = MODES.signup;
    const name = username.value.trim();
    firstHere.hidden = true;
    error.textContent = "";
    setBusy(fieldsets, submit, m.busy, m.submit);
    try {
      const peer = await peerReady;
      done(await peer.sign_up_alone(name, password.value), m);
    } catch (e) {
      setBusy(fieldsets, submit, "", m.submit);
      error.textContent = sentence(e.message);
      (e.code === "name_taken" ? username : password).focus();
    }
  });

  renderMode();
  return {
    /** Back to the form after log-out, ready for the next person. */
    show() {
      password.value = "";
      error.textContent = "";
      meter.update();
    },
  };
}
