// The password estimator's module (jellyfish_password.js, built from password/), fetched the
// first time a password is checked and kept: the peer's check at sign-up and password change
// calls this. wasm-bindgen copies this file to <pkg>/snippets/<crate>/js/, so the module sits
// three folders up; the page imports the same URL for its strength meter, so both share one
// instance.
let loading = null;

export async function password_strength(password, username) {
  loading ??= import(new URL("../../../jellyfish_password.js", import.meta.url).href).then(async (module) => {
    await module.default();
    return module;
  });
  let module;
  try {
    module = await loading;
  } catch (e) {
    loading = null; // fetched again next time: the relay may have been out of reach
    throw e;
  }
  return module.password_strength(password, username);
}
