// The admins' panel: accounts with Disable/Enable, the latest security events, suggestion
// statistics and the knowledge gaps (GET /api/admin/users?role=, POST /api/admin/users/{id}/disable|enable,
// GET /api/admin/audit?action=&before_id=&limit=, GET /api/admin/knowledge-gaps).

import { ApiError } from "./api.js";
import { byId, h, show } from "./dom.js";
import { formatDateTime, shortId } from "./format.js";
import { t } from "./i18n.js";

const PAGE = 50;
// The actions the server records; others still show under "all", with their code.
export const AUDIT_ACTIONS = [
  "login_ok",
  "login_failed",
  "login_locked",
  "logout",
  "logout_all",
  "password_changed",
  "user_created",
  "user_disabled",
  "user_enabled",
  "invitation_created",
  "invitation_accepted",
  "chat_assigned",
  "chat_closed",
  "chats_archived",
  "customer_purged",
  "keys_rotated",
];

function actionLabel(action) {
  const key = `auditAction.${action}`;
  const text = t(key);
  return text === key ? action : text;
}

function gapReasonLabel(reason) {
  const key = `gaps.reason.${reason}`;
  const text = t(key);
  return text === key ? reason : text;
}

/** "Label: 3 · Other: 1" from {name: count}, most first as the server sent them. */
function countsText(counts, label = (name) => name) {
  return Object.entries(counts || {})
    .map(([name, count]) => `${label(name)}: ${count}`)
    .join(" · ");
}

export class AdminView {
  /** api: the console's client; meId(): the signed-in admin; errorText(err): a message. */
  constructor({ api, meId, errorText, announce }) {
    this.api = api;
    this.meId = meId;
    this.errorText = errorText;
    this.announce = announce;
    this.role = byId("admin-role");
    this.usersBody = byId("admin-users-body");
    this.usersError = byId("admin-users-error");
    this.action = byId("audit-action");
    this.auditBody = byId("audit-body");
    this.auditError = byId("audit-error");
    this.older = byId("audit-older");
    this.end = byId("audit-end");
    this.users = []; // AccountRead[] shown
    this.names = new Map(); // user id -> username or name, for the audit's actor and target
    this.events = [];
    this.done = false;
    this.loaded = false;
    this.auditSeq = 0;
    this.usersSeq = 0;
    this.gapsBody = byId("gaps-body");
    this.gapsSummary = byId("gaps-summary");
    this.gapsError = byId("gaps-error");
    this.gapsRefresh = byId("gaps-refresh");
    this.gaps = null; // GapReportRead shown
    this.gapsSeq = 0;

    this.role.addEventListener("change", () => this.loadUsers());
    this.gapsRefresh.addEventListener("click", () => this.loadGaps({ announce: true }));
    this.action.addEventListener("change", () => this.loadAudit());
    this.older.addEventListener("click", () => this.loadAudit({ older: true }));
    this.#fillActions();
  }

  /** The view became visible: load (again) what it shows. */
  shown() {
    this.loaded = true;
    this.loadUsers();
    this.loadAudit();
    this.loadSuggestionStats();
    this.loadGaps();
  }

  /** The questions the bot could not help with, grouped, most frequent first. */
  async loadGaps({ announce = false } = {}) {
    const seq = ++this.gapsSeq;
    this.#setError(this.gapsError, "");
    this.gapsRefresh.disabled = true;
    this.gapsRefresh.setAttribute("aria-busy", "true");
    try {
      const report = await this.api.get("/api/admin/knowledge-gaps");
      if (seq !== this.gapsSeq) return;
      this.gaps = report && Array.isArray(report.clusters) ? report : null;
      this.#renderGaps();
      if (announce) this.announce(t("gaps.updated"));
    } catch (err) {
      if (seq === this.gapsSeq) this.#setError(this.gapsError, this.#adminError(err));
    } finally {
      if (seq === this.gapsSeq) {
        this.gapsRefresh.disabled = false;
        this.gapsRefresh.removeAttribute("aria-busy");
      }
    }
  }

  /** Per source: suggestions shown, sent as they were, sent edited, ignored. */
  async loadSuggestionStats() {
    const body = byId("suggestion-stats-body");
    try {
      const rows = await this.api.get("/api/admin/suggestions/stats");
      body.replaceChildren(
        ...rows.map((r) =>
          h(
            "tr",
            { dataset: { testid: "suggestion-stats-row", source: r.source } },
            h("td", { text: t(`stats.source.${r.source}`) }),
            ...[r.shown, r.accepted, r.accepted_edited, r.ignored].map((n) => h("td", { text: String(n) })),
          ),
        ),
      );
    } catch {
      body.replaceChildren();
    }
  }

  async loadUsers() {
    const seq = ++this.usersSeq;
    this.#setError(this.usersError, "");
    const params = new URLSearchParams({ limit: "500" });
    if (this.role.value) params.set("role", this.role.value);
    try {
      const users = await this.api.get(`/api/admin/users?${params}`);
      if (seq !== this.usersSeq) return;
      this.users = Array.isArray(users) ? users : [];
      for (const u of this.users) this.names.set(u.id, u.username || u.display_name);
      this.#renderUsers();
      this.#renderAudit();
    } catch (err) {
      if (seq === this.usersSeq) this.#setError(this.usersError, this.#adminError(err));
    }
  }

  /** The newest events (again), or with older=true the page before the oldest shown. */
  async loadAudit({ older = false } = {}) {
    const seq = ++this.auditSeq;
    this.#setError(this.auditError, "");
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (this.action.value) params.set("action", this.action.value);
    const oldest = this.events.length ? this.events[this.events.length - 1].id : null;
    if (older && oldest) params.set("before_id", String(oldest));
    this.older.disabled = true;
    try {
      const page = await this.api.get(`/api/admin/audit?${params}`);
      if (seq !== this.auditSeq) return;
      const events = Array.isArray(page) ? page : [];
      this.events = older ? [...this.events, ...events] : events;
      this.done = events.length < PAGE;
      this.#renderAudit();
      if (older) this.announce(t("audit.loaded", { count: events.length }));
    } catch (err) {
      if (seq === this.auditSeq) this.#setError(this.auditError, this.#adminError(err));
    } finally {
      if (seq === this.auditSeq) this.older.disabled = false;
    }
  }

  async setDisabled(user, disabled, button) {
    this.#setError(this.usersError, "");
    button.disabled = true;
    try {
      const path = `/api/admin/users/${encodeURIComponent(user.id)}/${disabled ? "disable" : "enable"}`;
      const updated = await this.api.post(path, {});
      this.users = this.users.map((u) => (u.id === updated.id ? updated : u));
      this.#renderUsers();
      const name = updated.username || updated.display_name;
      this.announce(t(disabled ? "admin.disabledDone" : "admin.enabledDone", { name }));
      const again = this.usersBody.querySelector(`[data-user-id="${CSS.escape(updated.id)}"] button`);
      if (again) again.focus();
      this.loadAudit();
    } catch (err) {
      button.disabled = false;
      this.#setError(this.usersError, this.#adminError(err));
    }
  }

  /** The language changed. */
  refresh() {
    this.#fillActions();
    if (this.loaded) {
      this.#renderUsers();
      this.#renderAudit();
      this.#renderGaps();
    }
  }

  /** Signed out: forget everything shown. */
  reset() {
    this.usersSeq += 1;
    this.auditSeq += 1;
    this.gapsSeq += 1;
    this.gaps = null;
    this.gapsBody.replaceChildren();
    this.gapsSummary.textContent = "";
    this.gapsRefresh.disabled = false;
    this.gapsRefresh.removeAttribute("aria-busy");
    this.#setError(this.gapsError, "");
    this.users = [];
    this.names.clear();
    this.events = [];
    this.loaded = false;
    this.usersBody.replaceChildren();
    this.auditBody.replaceChildren();
    this.#setError(this.usersError, "");
    this.#setError(this.auditError, "");
    show(this.end, false);
  }

  #fillActions() {
    const value = this.action.value;
    this.action.replaceChildren(
      h("option", { value: "", text: t("admin.actionAll") }),
      ...AUDIT_ACTIONS.map((a) => h("option", { value: a, text: actionLabel(a) })),
    );
    this.action.value = value;
  }

  #renderUsers() {
    const me = this.meId();
    const cell = (label, ...content) => h("td", { dataset: { label } }, ...content);
    this.usersBody.replaceChildren(
      ...(this.users.length
        ? this.users.map((u) => {
            const self = u.id === me;
            const button = self
              ? h("span", { class: "hint", text: t("admin.you") })
              : h("button", {
                  type: "button",
                  class: `btn btn--small${u.disabled ? "" : " btn--danger"}`,
                  dataset: { testid: u.disabled ? "admin-enable" : "admin-disable" },
                  "aria-label": t(u.disabled ? "admin.enableName" : "admin.disableName", {
                    name: u.username || u.display_name,
                  }),
                  text: t(u.disabled ? "admin.enable" : "admin.disable"),
                });
            if (!self) button.addEventListener("click", () => this.setDisabled(u, !u.disabled, button));
            return h(
              "tr",
              { dataset: { testid: "admin-user", userId: u.id, username: u.username || "" } },
              cell(t("admin.username"), h("span", { class: "table__strong", text: u.username || "—" })),
              cell(t("admin.name"), u.display_name),
              cell(t("admin.roleCol"), t(`role.${u.role}`) === `role.${u.role}` ? u.role : t(`role.${u.role}`)),
              cell(
                t("admin.state"),
                h("span", {
                  class: `badge ${u.disabled ? "badge--disabled" : "badge--assigned"}`,
                  dataset: { testid: "admin-user-state", disabled: String(u.disabled) },
                  text: t(u.disabled ? "admin.disabled" : "admin.active"),
                }),
              ),
              cell(t("admin.actions"), button),
            );
          })
        : [h("tr", {}, h("td", { colspan: "5", class: "hint", text: t("admin.noUsers") }))]),
    );
  }

  #who(id) {
    if (!id) return "—";
    return this.names.get(id) || shortId(id);
  }

  #renderAudit() {
    const cell = (label, content, extra = {}) => h("td", { dataset: { label }, ...extra }, content);
    this.auditBody.replaceChildren(
      ...(this.events.length
        ? this.events.map((e) => {
            const details = e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : "";
            const target = e.target ? this.names.get(e.target) || e.target : "—";
            return h(
              "tr",
              { dataset: { testid: "audit-row", id: e.id, action: e.action } },
              cell(t("audit.time"), h("time", { datetime: e.at, text: formatDateTime(e.at) })),
              cell(
                t("audit.action"),
                h(
                  "span",
                  {},
                  h("span", { class: "table__strong", text: actionLabel(e.action) }),
                  details ? h("span", { class: "table__details", text: details }) : null,
                ),
              ),
              cell(t("audit.actor"), this.#who(e.actor_id), { title: e.actor_id || null }),
              cell(t("audit.target"), target, { class: "table__wrap", title: e.target || null }),
              cell(t("audit.address"), e.address || "—"),
            );
          })
        : [h("tr", {}, h("td", { colspan: "5", class: "hint", text: t("audit.none") }))]),
    );
    show(this.older, !this.done && this.events.length > 0);
    show(this.end, this.done && this.events.length > 0);
  }

  #renderGaps() {
    const report = this.gaps;
    if (!report) {
      this.gapsBody.replaceChildren();
      this.gapsSummary.textContent = "";
      return;
    }
    const clusters = report.clusters;
    const counts = { questions: report.questions, clusters: clusters.length };
    let summary = t("gaps.none");
    if (report.questions === 1) summary = t("gaps.summaryOne");
    else if (clusters.length === 1) summary = t("gaps.summaryOneGroup", counts);
    else if (clusters.length) summary = t("gaps.summary", counts);
    const byText = report.grouping === "text" && clusters.length > 0;
    this.gapsSummary.textContent = byText ? `${summary} ${t("gaps.byText")}` : summary;
    const cell = (label, ...content) => h("td", { dataset: { label } }, ...content);
    // Customers' questions are shown as text, never as HTML: h() only makes text nodes.
    this.gapsBody.replaceChildren(
      ...clusters.map((c) =>
        h(
          "tr",
          { dataset: { testid: "gap-cluster", size: String(c.size) } },
          cell(t("gaps.size"), h("span", { class: "table__strong", text: String(c.size) })),
          // The most central question first; the others smaller below it.
          cell(
            t("gaps.examples"),
            (c.examples || []).map((text, i) =>
              h(i ? "span" : "div", {
                class: i ? "table__details" : null,
                dataset: { testid: "gap-example" },
                text,
              }),
            ),
          ),
          cell(t("gaps.reasons"), countsText(c.reasons, gapReasonLabel)),
          cell(
            t("gaps.lastSeen"),
            h("time", { datetime: c.last_seen_at, text: formatDateTime(c.last_seen_at) }),
          ),
          cell(t("gaps.articles"), countsText(c.top_titles) || "—"),
        ),
      ),
    );
  }

  #adminError(err) {
    if (err instanceof ApiError && err.status === 403) return t("admin.forbidden");
    if (err instanceof ApiError && err.detail && err.status < 500 && err.status !== 429 && err.status !== 0) {
      return t("error.generic", { detail: err.detail });
    }
    return this.errorText(err);
  }

  #setError(el, message) {
    el.textContent = message || "";
    show(el, Boolean(message));
  }
}
