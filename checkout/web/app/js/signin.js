// The sign-in page: sign in (or open a shopper account), then go to the face of the role.
import { api, ApiError, attempt, byId, clearError, faceOf, showError } from "./common.js";

function goTo(account) {
  const face = faceOf(account.role);
  if (!face) {
    showError(
      "This account cannot use the web app",
      new Error(`a ${account.role} account only talks to the API`),
    );
    return;
  }
  const next = new URLSearchParams(window.location.search).get("next");
  // Only a page of this app, never another site.
  const safeNext = next && /^\/app\/[a-z-]+\.html$/.test(next) ? next : null;
  window.location.assign(account.role === "admin" && safeNext ? safeNext : face);
}

async function alreadySignedIn() {
  try {
    goTo(await api("/me"));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      showError("Could not reach the store", err);
    }
  }
}

function wire(formId, submitId, path, body) {
  const form = byId(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const button = byId(submitId);
    button.disabled = true;
    const signedIn = await attempt(
      formId === "register-form" ? "Could not open the account" : "Could not sign in",
      () => api(path, { method: "POST", body: body() }),
    );
    button.disabled = false;
    if (signedIn) goTo(signedIn.account);
  });
}

wire("sign-in-form", "sign-in-submit", "/auth/login", () => ({
  username: byId("sign-in-username").value.trim(),
  password: byId("sign-in-password").value,
}));
wire("register-form", "register-submit", "/auth/register", () => ({
  username: byId("register-username").value.trim(),
  password: byId("register-password").value,
  display_name: byId("register-name").value.trim() || null,
}));
alreadySignedIn();
