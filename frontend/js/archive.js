// The console's archive: search archived chats (of one customer, or the latest N) and read
// one, read-only. GET /api/archive/chats?customer_id=&limit= and GET /api/archive/chats/{id}.

import { ApiError } from "./api.js";
import { byId, h, show } from "./dom.js";
import { formatDateTime, shortId } from "./format.js";
import { t } from "./i18n.js";
import { Transcript } from "./transcript.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function archiveErrorText(err, fallback) {
  if (err instanceof ApiError) {
    if (err.status === 503) return t("archive.unavailable");
    if (err.status === 403) return t("archive.forbidden");
    if (err.status === 404) return t("archive.notFound");
    if (err.status === 422) return t("archive.badCustomer");
  }
  return fallback(err);
}

export class ArchiveView {
  /** api: the console's client; meId(): the signed-in user; errorText(err): a generic message. */
  constructor({ api, meId, errorText }) {
    this.api = api;
    this.errorText = errorText;
    this.form = byId("archive-search");
    this.customer = byId("archive-customer");
    this.limit = byId("archive-limit");
    this.error = byId("archive-error");
    this.summary = byId("archive-summary");
    this.list = byId("archive-list");
    this.empty = byId("archive-empty");
    this.chatBox = byId("archive-chat");
    this.name = byId("archive-name");
    this.on = byId("archive-on");
    this.meta = byId("archive-meta");
    this.same = byId("archive-same");
    this.transcript = new Transcript(byId("archive-transcript"), meId);
    this.results = null; // [{chat, archived_at}] of the last search
    this.query = null; // {customerId, limit} of the last search
    this.current = null; // {chat, messages, archived_at} shown
    this.loaded = false;
    this.searchSeq = 0;
    this.openSeq = 0;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search({ customerId: this.customer.value.trim(), limit: Number(this.limit.value) });
    });
    this.same.addEventListener("click", () => {
      if (!this.current) return;
      this.search({ customerId: this.current.chat.customer.id, limit: Number(this.limit.value) });
    });
  }

  /** The view became visible: the first time, list the latest archived chats. */
  shown() {
    if (!this.loaded) this.search({ customerId: this.customer.value.trim(), limit: Number(this.limit.value) });
  }

  /** Archived chats of one customer (customerId), or the latest `limit` of all. */
  async search({ customerId = "", limit = 25 } = {}) {
    this.loaded = true;
    this.customer.value = customerId;
    if ([...this.limit.options].some((o) => o.value === String(limit))) this.limit.value = String(limit);
    this.#setError("");
    if (customerId && !UUID_RE.test(customerId)) {
      this.#setError(t("archive.badCustomer"));
      this.customer.focus();
      return;
    }
    const seq = ++this.searchSeq;
    this.query = { customerId, limit };
    this.summary.textContent = t("archive.searching");
    const params = new URLSearchParams({ limit: String(limit) });
    if (customerId) params.set("customer_id", customerId);
    try {
      const results = await this.api.get(`/api/archive/chats?${params}`);
      if (seq !== this.searchSeq) return;
      this.results = Array.isArray(results) ? results : [];
      this.#renderList();
    } catch (err) {
      if (seq !== this.searchSeq) return;
      this.results = [];
      this.#renderList();
      this.summary.textContent = "";
      this.#setError(archiveErrorText(err, this.errorText));
    }
  }

  /** Show one archived chat, read-only. */
  async open(chatId) {
    const seq = ++this.openSeq;
    this.#setError("");
    try {
      const archived = await this.api.get(`/api/archive/chats/${encodeURIComponent(chatId)}`);
      if (seq !== this.openSeq) return;
      this.current = archived;
      this.transcript.clear();
      for (const m of archived.messages || []) this.transcript.add(m);
      this.#renderHead();
      show(this.empty, false);
      show(this.chatBox, true);
      this.#renderList();
      this.transcript.scrollToEnd();
      if (window.matchMedia("(max-width: 720px)").matches) this.chatBox.scrollIntoView({ block: "start" });
    } catch (err) {
      if (seq !== this.openSeq) return;
      this.#setError(archiveErrorText(err, this.errorText));
    }
  }

  /** The language changed. */
  refresh() {
    if (this.results) this.#renderList();
    if (this.current) {
      this.#renderHead();
      this.transcript.refresh();
    }
  }

  /** Signed out: forget everything shown. */
  reset() {
    this.searchSeq += 1;
    this.openSeq += 1;
    this.results = null;
    this.query = null;
    this.current = null;
    this.loaded = false;
    this.customer.value = "";
    this.list.replaceChildren();
    this.summary.textContent = "";
    this.transcript.clear();
    this.#setError("");
    show(this.chatBox, false);
    show(this.empty, true);
  }

  #renderHead() {
    const { chat, archived_at: archivedAt } = this.current;
    this.name.textContent = (chat.customer && chat.customer.display_name) || "?";
    this.on.textContent = t("archive.archivedOn", { date: formatDateTime(archivedAt) });
    const parts = [
      chat.supporter ? t("archive.supporter", { name: chat.supporter.display_name }) : t("archive.noSupporter"),
      t("archive.started", { date: formatDateTime(chat.created_at) }),
    ];
    if (chat.closed_at) parts.push(t("archive.ended", { date: formatDateTime(chat.closed_at) }));
    this.meta.textContent = parts.join(" · ");
    this.same.title = t("archive.customerId", { id: chat.customer ? chat.customer.id : "?" });
  }

  #renderList() {
    const results = this.results || [];
    const selected = this.current && this.current.chat.id;
    const focused = document.activeElement;
    const focusedId = focused && this.list.contains(focused) ? focused.dataset.chatId : null;
    if (this.query) {
      const key = this.query.customerId ? "archive.foundFor" : "archive.found";
      const one = results.length === 1 ? ".one" : "";
      const params = { count: results.length, id: shortId(this.query.customerId) };
      this.summary.textContent = results.length ? t(key + one, params) : "";
    }
    this.list.replaceChildren(
      ...(results.length
        ? results.map(({ chat, archived_at: archivedAt }) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: `chatitem${chat.id === selected ? " is-selected" : ""}`,
                  "aria-current": chat.id === selected ? "true" : null,
                  dataset: { testid: "archive-item", chatId: chat.id },
                  onclick: () => this.open(chat.id),
                },
                h("span", {
                  class: "chatitem__name",
                  dataset: { testid: "archive-item-name" },
                  text: (chat.customer && chat.customer.display_name) || "?",
                }),
                h(
                  "span",
                  { class: "chatitem__meta" },
                  h("span", { class: "badge badge--archived", text: t("archive.badge") }),
                  " ",
                  h("time", { datetime: archivedAt, text: formatDateTime(archivedAt) }),
                ),
              ),
            ),
          )
        : [h("li", { class: "chatlist__empty", text: this.query ? t("archive.none") : "" })]),
    );
    if (focusedId) {
      const again = this.list.querySelector(`[data-chat-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  #setError(message) {
    this.error.textContent = message || "";
    show(this.error, Boolean(message));
  }
}
