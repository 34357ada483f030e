// The Account view: change password (with the same meter as sign-up) and log out.
import { $, announce, sentence } from "./dom.js";
import { setBusy } from "./auth.js";
import { strengthMeter } from "./strength.js";

/** `getPeer()` returns the started peer; `username()` the logged-in name; `onLoggedOut()`. */
export function setupAccount({ getPeer, estimate, username, onLoggedOut }) {
  const current = $("current-password");
  const next = $("new-password");
  const submit = $("password-submit");
  const error = $("password-error");
  const message = $("password-message");
  const meter = strengthMeter($("change-strength"), next, (p) => estimate(p, username()));

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    message.textContent = "";
    if (!current.value) { error.textContent = "Enter your current password."; current.focus(); return; }
    if (!next.value) { error.textContent = "Enter a new password."; next.focus(); return; }
    setBusy([$("password-fields")], submit, "Making your new keys…", "Change password");
    try {
      await getPeer().change_password(current.value, next.value);
      current.value = "";
      next.value = "";
      meter.update();
      setBusy([$("password-fields")], submit, "", "Change password");
      message.textContent = "Password changed: your account has new keys, and the old password opens nothing from now on. Use the new one in every browser.";
      submit.focus();
    } catch (e) {
      setBusy([$("password-fields")], submit, "", "Change password");
      error.textContent = sentence(e.message);
      (e.code === "wrong_password" ? current : next).focus();
    }
  });

  $("log-out").addEventListener("click", async () => {
    $("log-out").disabled = true;
    try {
      await getPeer().log_out();
      announce("Logged out.");
      onLoggedOut();
    } catch (e) {
      error.textContent = sentence(e.message);
    } finally {
      $("log-out").disabled = false;
    }
  });

  return {
    show() {
      $("account-name").textContent = username();
    },
    reset() {
      current.value = "";
      next.value = "";
      error.textContent = "";
      message.textContent = "";
      meter.update();
    },
  };
}
