// The signed-in session of one page: token, user and page state in localStorage,
// refreshed shortly before it expires while the page is open.

import { ApiError } from "./api.js";

const REFRESH_AT = 0.8; // of the token's lifetime
const DEFAULT_LIFETIME_MS = 3600 * 1000;

function jwtLifetimeMs(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    if (typeof claims.exp === "number" && typeof claims.iat === "number" && claims.exp > claims.iat) {
      return (claims.exp - claims.iat) * 1000;
    }
  } catch {
    // Not a JWT we can read: fall back to expires_at.
  }
  return null;
}

export class Session {
  /** key: the localStorage key, different per page so console and customer never mix. */
  constructor(key) {
    this.key = key;
    this.data = this.#load();
    this.timer = null;
    this.listeners = new Set();
    window.addEventListener("storage", (event) => {
      // Another tab refreshed or signed in: adopt its token so ours is not a revoked one.
      if (event.key !== this.key) return;
      const before = this.token;
      this.data = this.#load();
      if (this.token && this.token !== before) this.#emit();
    });
  }

  #load() {
    try {
      const raw = localStorage.getItem(this.key);
      const data = raw ? JSON.parse(raw) : null;
      return data && typeof data === "object" ? data : {};
    } catch {
      return {};
    }
  }

  #store() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.data));
    } catch {
      // Storage full or disabled: the session lives in memory only.
    }
  }

  #emit() {
    for (const fn of this.listeners) fn(this.token);
  }

  get token() {
    return this.data.token || null;
  }

  get user() {
    return this.data.user || null;
  }

  /** Call fn(token) whenever the token changes (refresh, new sign in, another tab). */
  onToken(fn) {
    this.listeners.add(fn);
  }

  /** Take a {token, expires_at, user} answer plus any page state (resume_token, chat_id). */
  signIn(auth, extra = {}) {
    const now = Date.now();
    let lifetime = jwtLifetimeMs(auth.token);
    if (lifetime === null) {
      const until = Date.parse(auth.expires_at);
      lifetime = Number.isFinite(until) && until > now ? until - now : DEFAULT_LIFETIME_MS;
    }
    this.data = {
      ...this.data,
      ...extra,
      token: auth.token,
      expires_at: auth.expires_at,
      user: auth.user || this.data.user,
      received_at: now,
      lifetime_ms: lifetime,
    };
    this.#store();
    this.#emit();
  }

  /** Change page state (e.g. chat_id) without touching the token. */
  update(extra) {
    this.data = { ...this.data, ...extra };
    this.#store();
  }

  /** Forget the token; keep what signing in again needs (resume_token, username, chat_id). */
  dropToken() {
    const { token, expires_at, received_at, lifetime_ms, ...rest } = this.data;
    this.data = rest;
    this.#store();
  }

  /** Forget everything. */
  clear() {
    this.stopRefresh();
    this.data = {};
    try {
      localStorage.removeItem(this.key);
    } catch {
      // Nothing stored.
    }
  }

  /** True when there is no token or its lifetime has run out by the local clock. */
  isExpired() {
    if (!this.token) return true;
    const { received_at: at, lifetime_ms: life } = this.data;
    if (!at || !life) return false;
    return Date.now() >= at + life - 5000;
  }

  /** Keep the token fresh: POST /api/auth/refresh at 80 % of its lifetime. */
  startRefresh(api) {
    this.stopRefresh();
    if (!this.token) return;
    const { received_at: at, lifetime_ms: life } = this.data;
    const due = (at || Date.now()) + (life || DEFAULT_LIFETIME_MS) * REFRESH_AT;
    const wait = Math.max(1000, due - Date.now());
    this.timer = setTimeout(() => this.#refresh(api), Math.min(wait, 2 ** 31 - 1));
  }

  stopRefresh() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  async #refresh(api) {
    this.timer = null;
    const token = this.token;
    try {
      const auth = await api.request("POST", "/api/auth/refresh", {}, { auth: false, token });
      if (auth && auth.token) this.signIn(auth);
      this.startRefresh(api);
    } catch (err) {
      if (this.token !== token) {
        this.startRefresh(api);
        return;
      }
      if (err instanceof ApiError && (err.status === 0 || err.status >= 500 || err.status === 429)) {
        this.timer = setTimeout(() => this.#refresh(api), 30000);
      }
      // 401: the socket's 4401 or the next request brings up the sign-in prompt.
      // 404: the server cannot refresh; the token lives until it expires.
    }
  }
}
