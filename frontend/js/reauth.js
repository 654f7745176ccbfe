// The "sign in again" dialog shown when the token was refused (HTTP 401, close 4401).
// While it is open every caller waits on the same promise; it resolves true once a new
// token is stored, false when the user gives up (start over).

import { ApiError } from "./api.js";
import { byId } from "./dom.js";
import { t } from "./i18n.js";

export class ReauthDialog {
  /**
   * mode(): "guest" (a Continue button) or "login" (username and password);
   * resumeGuest(): resolves when the guest is signed in again;
   * login(username, password): resolves when signed in; username(): to prefill;
   * startOver(): the session cannot be restored.
   */
  constructor({ mode, resumeGuest, login, username, startOver }) {
    this.dialog = byId("reauth-dialog");
    this.guestBox = byId("reauth-guest");
    this.form = byId("reauth-login");
    this.error = byId("reauth-error");
    this.startOverButton = byId("reauth-start-over");
    this.mode = mode;
    this.pending = null;
    this.resolve = null;

    this.dialog.addEventListener("cancel", (event) => event.preventDefault());
    byId("reauth-continue").addEventListener("click", () =>
      this.#attempt(() => resumeGuest()),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const user = byId("reauth-username").value.trim();
      const password = byId("reauth-password").value;
      this.#attempt(() => login(user, password));
    });
    this.startOverButton.addEventListener("click", () => {
      this.#finish(false);
      startOver();
    });
    this.username = username;
  }

  /** Ask the user to sign in again; the same promise for every caller while open. */
  request() {
    if (this.pending) return this.pending;
    this.pending = new Promise((resolve) => {
      this.resolve = resolve;
    });
    const mode = this.mode();
    this.guestBox.hidden = mode !== "guest";
    this.form.hidden = mode !== "login";
    this.startOverButton.hidden = mode === "guest" || mode === "login";
    // Nothing to sign in with (e.g. an invitation's session): only starting over is left.
    this.#setError(mode === "guest" || mode === "login" ? "" : t("reauth.failed"));
    byId("reauth-username").value = this.username() || "";
    byId("reauth-password").value = "";
    if (!this.dialog.open) this.dialog.showModal();
    const focus =
      mode === "guest" ? byId("reauth-continue") : mode === "login" ? this.#firstEmptyField() : this.startOverButton;
    focus.focus();
    return this.pending;
  }

  get isOpen() {
    return Boolean(this.pending);
  }

  #firstEmptyField() {
    const user = byId("reauth-username");
    return user.value ? byId("reauth-password") : user;
  }

  async #attempt(action) {
    this.#setError("");
    try {
      await action();
      this.#finish(true);
    } catch (err) {
      const gone = err instanceof ApiError && (err.status === 401 || err.status === 404 || err.status === 410);
      if (gone) {
        this.#setError(this.mode() === "login" ? t("login.failed") : t("reauth.failed"));
        if (this.mode() !== "login") {
          this.guestBox.hidden = true;
          this.startOverButton.hidden = false;
          this.startOverButton.focus();
        }
      } else if (err instanceof ApiError && err.status === 429) {
        this.#setError(t("error.rateLimited"));
      } else if (err instanceof ApiError && err.status === 0) {
        this.#setError(t("error.network"));
      } else {
        this.#setError(t("error.generic", { detail: err.message || String(err) }));
      }
    }
  }

  #setError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  #finish(ok) {
    if (this.dialog.open) this.dialog.close();
    const resolve = this.resolve;
    this.pending = null;
    this.resolve = null;
    if (resolve) resolve(ok);
  }
}
