// The hand-over panel above a chat's transcript in the console: why the bot handed the
// chat over, its summary, the customer's questions and the articles the bot used.

import { ApiError } from "./api.js";
import { byId, h, show } from "./dom.js";
import { formatDateTime } from "./format.js";
import { t } from "./i18n.js";
import { sourceLink } from "./transcript.js";

const REASONS = new Set(["customer_request", "low_confidence", "repeated_failure", "bot_error", "no_knowledge"]);

/** The reason code as a sentence for the supporter. */
export function reasonText(reason) {
  return REASONS.has(reason) ? t(`handover.reason.${reason}`) : t("handover.reason.other", { reason });
}

export class HandoverPanel {
  /** api: the console's client; errorText(err): the console's wording of a failure; getExpanded/setExpanded: remembered choice. */
  constructor({ api, errorText, getExpanded, setExpanded }) {
    this.api = api;
    this.errorText = errorText;
    this.getExpanded = getExpanded;
    this.setExpanded = setExpanded;
    this.el = byId("handover");
    this.toggle = byId("handover-toggle");
    this.body = byId("handover-body");
    this.chatId = null;
    this.key = null; // chat id + reason + time of the hand-over shown (or being fetched)
    this.reason = null;
    this.data = null; // the GET .../handover answer
    this.error = null;
    this.request = 0;
    this.toggle.addEventListener("click", () => {
      this.setExpanded(!this.expanded());
      this.render();
    });
  }

  expanded() {
    return this.getExpanded() !== false;
  }

  /** Another chat is selected (or none): forget the panel. */
  reset() {
    this.request += 1;
    this.chatId = null;
    this.key = null;
    this.reason = null;
    this.data = null;
    this.error = null;
    show(this.el, false);
  }

  /** The selected chat (new, or its chat frame changed): fetch the packet when its hand-over is new. */
  update(chat) {
    if (!chat) return;
    if (chat.id !== this.chatId || !chat.escalation_reason) this.reset();
    this.chatId = chat.id;
    if (!chat.escalation_reason) return;
    const key = `${chat.id} ${chat.escalation_reason} ${chat.escalated_at || ""}`;
    if (key === this.key) return;
    this.key = key;
    this.reason = chat.escalation_reason;
    this.data = null;
    this.error = null;
    this.render();
    this.#fetch(chat.id);
  }

  async #fetch(chatId) {
    const request = ++this.request;
    try {
      const data = await this.api.get(`/api/chats/${encodeURIComponent(chatId)}/handover`);
      if (request !== this.request) return;
      this.data = data && typeof data === "object" ? data : null;
      if (this.data && this.data.reason) this.reason = this.data.reason;
    } catch (err) {
      if (request !== this.request) return;
      if (err instanceof ApiError && err.status === 404) {
        // Never handed over by the bot after all: nothing to show.
        this.reason = null;
      } else if (!(err instanceof ApiError && err.status === 401)) {
        this.error = this.errorText(err);
      }
    }
    this.render();
  }

  /** Draw what is known (also after a language change). */
  render() {
    if (!this.reason) {
      show(this.el, false);
      return;
    }
    show(this.el, true);
    const expanded = this.expanded();
    this.toggle.setAttribute("aria-expanded", String(expanded));
    this.toggle.textContent = t(expanded ? "handover.hide" : "handover.show");
    show(this.body, expanded);
    this.el.dataset.reason = this.reason;
    this.el.dataset.state = this.data ? "loaded" : this.error ? "failed" : "loading";
    byId("handover-reason").textContent = reasonText(this.reason);

    const data = this.data || {};
    const at = formatDateTime(data.escalated_at);
    byId("handover-at").textContent = at ? t("handover.at", { time: at }) : "";
    show(byId("handover-at"), Boolean(at));

    const error = byId("handover-error");
    error.textContent = this.error ? t("handover.failed", { detail: this.error }) : "";
    show(error, Boolean(this.error));

    const summary = typeof data.summary === "string" ? data.summary : "";
    byId("handover-summary").textContent = summary;
    show(byId("handover-summary-box"), Boolean(summary));

    const notHelpful = Number(data.not_helpful) || 0;
    const ratingLine = byId("handover-not-helpful");
    ratingLine.textContent =
      notHelpful === 1 ? t("handover.notHelpful.one") : t("handover.notHelpful", { count: notHelpful });
    show(ratingLine, notHelpful > 0);

    const questions = Array.isArray(data.questions) ? data.questions.filter((q) => typeof q === "string") : [];
    byId("handover-questions").replaceChildren(
      ...questions.map((q) => h("li", { dataset: { testid: "handover-question" }, text: q })),
    );
    show(byId("handover-questions-box"), questions.length > 0);

    const sources = Array.isArray(data.sources) ? data.sources.filter((s) => s && typeof s === "object") : [];
    byId("handover-sources").replaceChildren(
      ...sources.map((s) => h("li", { dataset: { testid: "handover-source" } }, sourceLink(s))),
    );
    show(byId("handover-sources-box"), sources.length > 0);
  }
}
