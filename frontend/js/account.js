// The console's account menu: change password, sign out everywhere, and the admin panel.
// POST /api/auth/password {current_password, new_password} -> 204 (other sessions end);
// POST /api/auth/logout-all -> 204 (every session ends, this one too).

import { ApiError } from "./api.js";
import { byId, show } from "./dom.js";
import { t } from "./i18n.js";

const MIN_BYTES = 8;
const MAX_BYTES = 72;
const encoder = new TextEncoder();

export function passwordBytes(text) {
  return encoder.encode(text).length;
}

export class AccountMenu {
  /**
   * api, getToken(): the console's client and current token;
   * isAdmin(): whether to offer the admin panel; openAdmin(): show it;
   * signOutEverywhere(): stop the page's socket, returns a function that restarts it;
   * signedOut(): the session is gone (show the sign-in form);
   * sessionLost(): the token itself was refused (ask to sign in again);
   * notify(text): a visible, announced confirmation.
   */
  constructor(options) {
    Object.assign(this, options);
    this.box = byId("account");
    this.toggle = byId("account-toggle");
    this.menu = byId("account-menu");
    this.adminItem = byId("account-admin");
    this.confirm = byId("confirm-logout-all");
    this.dialog = byId("password-dialog");
    this.form = byId("password-form");
    this.current = byId("password-current");
    this.next = byId("password-new");
    this.repeat = byId("password-repeat");
    this.bytes = byId("password-bytes");
    this.error = byId("password-error");
    this.submit = byId("password-submit");

    this.toggle.addEventListener("click", () => this.setOpen(this.menu.hidden));
    this.box.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.menu.hidden) {
        event.stopPropagation();
        this.setOpen(false);
        this.toggle.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (!this.menu.hidden && !this.box.contains(event.target)) this.setOpen(false);
    });
    this.box.addEventListener("focusout", (event) => {
      if (!this.menu.hidden && event.relatedTarget && !this.box.contains(event.relatedTarget)) this.setOpen(false);
    });

    byId("account-password").addEventListener("click", () => {
      this.setOpen(false);
      this.openPassword();
    });
    this.adminItem.addEventListener("click", () => {
      this.setOpen(false);
      this.openAdmin();
    });
    byId("account-logout-all").addEventListener("click", () => {
      this.setOpen(false);
      this.confirm.returnValue = "";
      this.confirm.showModal();
      this.confirm.querySelector("[value=cancel]").focus();
    });
    this.confirm.addEventListener("close", () => {
      if (this.confirm.returnValue === "yes") this.logoutAll();
      else this.toggle.focus();
    });

    this.next.addEventListener("input", () => this.#showBytes());
    byId("password-cancel").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => {
      this.current.value = "";
      this.next.value = "";
      this.repeat.value = "";
      if (this.box.isConnected && !this.box.hidden) this.toggle.focus();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.changePassword();
    });
  }

  /** Show the menu for a signed-in user (admins get the admin entry). */
  enable(visible) {
    show(this.box, visible);
    show(this.adminItem, visible && this.isAdmin());
    if (!visible) {
      this.setOpen(false);
      if (this.dialog.open) this.dialog.close();
      if (this.confirm.open) this.confirm.close();
    }
  }

  setOpen(open) {
    show(this.menu, open);
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const first = [...this.menu.querySelectorAll("button")].find((b) => !b.hidden);
      if (first) first.focus();
    }
  }

  openPassword() {
    this.#setError("");
    this.current.value = "";
    this.next.value = "";
    this.repeat.value = "";
    this.#showBytes();
    this.dialog.showModal();
    this.current.focus();
  }

  refresh() {
    this.#showBytes();
  }

  async changePassword() {
    this.#setError("");
    const current = this.current.value;
    const next = this.next.value;
    if (next !== this.repeat.value) {
      this.#setError(t("password.mismatch"));
      this.repeat.focus();
      return;
    }
    this.submit.disabled = true;
    try {
      // auth: false: a 401 here means the session ended; the sign-in prompt is handled below.
      await this.api.post(
        "/api/auth/password",
        { current_password: current, new_password: next },
        { auth: false, token: this.getToken() },
      );
      this.dialog.close();
      this.notify(t("password.changed"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.dialog.close();
        this.sessionLost();
        return;
      }
      this.#setError(this.#passwordError(err));
      (err instanceof ApiError && err.code === "wrong_password" ? this.current : this.next).focus();
    } finally {
      this.submit.disabled = false;
    }
  }

  async logoutAll() {
    const token = this.getToken();
    // The server closes this page's socket too: stop it first, so that is no "session ended".
    const restart = this.signOutEverywhere();
    try {
      await this.api.post("/api/auth/logout-all", {}, { auth: false, token });
      this.signedOut(t("account.loggedOutAll"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.signedOut(t("account.loggedOutAll"));
        return;
      }
      restart();
      this.notify(
        err instanceof ApiError && err.status === 0
          ? t("error.network")
          : t("error.generic", { detail: err.detail || err.message }),
        true,
      );
    }
  }

  #passwordError(err) {
    if (err instanceof ApiError) {
      if (err.status === 0) return t("error.network");
      if (err.status === 429) return t("error.rateLimited");
      if (err.code === "wrong_password") return t("password.wrongCurrent", { detail: err.detail });
      if (err.status === 422) return t("password.refused", { detail: err.detail });
      if (err.status === 403) return t("password.noPassword", { detail: err.detail });
      return t("error.generic", { detail: err.detail || err.code || err.status });
    }
    return t("error.generic", { detail: String(err) });
  }

  #showBytes() {
    const n = passwordBytes(this.next.value);
    this.bytes.textContent = n ? t("password.bytes", { n, max: MAX_BYTES }) : "";
    this.bytes.dataset.ok = String(n >= MIN_BYTES && n <= MAX_BYTES);
  }

  #setError(message) {
    this.error.textContent = message || "";
    show(this.error, Boolean(message));
  }
}
