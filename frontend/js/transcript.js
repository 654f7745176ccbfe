// The list of messages of one chat: sorted by seq, each seq shown once, plus the
// messages still on their way (pending, keyed by client_msg_id) and the bot's answers
// still being written (drafts, keyed by the customer message they answer) at the end.

import { formatTime, h, safeHttpUrl } from "./dom.js";
import { t } from "./i18n.js";

const NEAR_BOTTOM_PX = 80;

export class Transcript {
  /**
   * list: the <ol> (role=log); getMyId(): the signed-in user's id; decorate(message, el):
   * optional, adds page-specific parts to a stored message's element on every render.
   */
  constructor(list, getMyId, { decorate = null } = {}) {
    this.list = list;
    this.getMyId = getMyId;
    this.decorate = decorate;
    this.bySeq = new Map(); // seq -> {message, el}
    this.pendingEls = new Map(); // client_msg_id -> el
    this.drafts = new Map(); // reply_to (customer message id) -> {pieces: Map(index -> text), el}
  }

  /** Remove everything (another chat is shown). */
  clear() {
    this.bySeq.clear();
    this.pendingEls.clear();
    this.drafts.clear();
    this.list.replaceChildren();
  }

  /** The highest seq shown. */
  get maxSeq() {
    let max = 0;
    for (const seq of this.bySeq.keys()) if (seq > max) max = seq;
    return max;
  }

  /** Show a stored message once, in seq order; returns false when it was shown already. */
  add(message) {
    if (this.bySeq.has(message.seq)) return false;
    const stick = this.#nearBottom();
    const el = this.#render(message);
    this.bySeq.set(message.seq, { message, el });
    if (message.client_msg_id && this.pendingEls.has(message.client_msg_id)) {
      this.pendingEls.get(message.client_msg_id).remove();
      this.pendingEls.delete(message.client_msg_id);
    }
    if (message.kind === "bot") this.#dropDrafts(message);
    this.list.insertBefore(el, this.#firstAfter(message.seq));
    if (stick || this.#isMine(message)) this.scrollToEnd();
    return true;
  }

  /** Show a message of ours that the server has not stored yet. */
  addPending(entry) {
    if (this.pendingEls.has(entry.client_msg_id)) return;
    for (const { message } of this.bySeq.values()) {
      if (message.client_msg_id === entry.client_msg_id) return;
    }
    const el = h(
      "li",
      {
        class: "msg msg--own msg--pending",
        dataset: { testid: "pending-message", clientMsgId: entry.client_msg_id },
      },
      h(
        "div",
        { class: "msg__meta" },
        h("span", { class: "msg__sender", text: t("chat.you") }),
        " ",
        h("span", { class: "msg__state", text: t("chat.sending") }),
      ),
      h("div", { class: "msg__text", text: entry.text }),
    );
    this.pendingEls.set(entry.client_msg_id, el);
    this.list.append(el);
    this.scrollToEnd();
  }

  /**
   * A piece of a bot answer being written (a `bot_delta` frame): shown in a draft bubble,
   * pieces in index order, until the stored message replaces it.
   */
  addDelta(frame) {
    const replyTo = Number(frame.reply_to);
    const index = Number(frame.index);
    if (!Number.isFinite(replyTo) || !Number.isInteger(index) || index < 0 || typeof frame.delta !== "string") {
      return;
    }
    // The answer was stored already (a late or repeated piece): never show it twice.
    for (const { message } of this.bySeq.values()) {
      if (message.kind === "bot" && message.client_msg_id === `bot:${replyTo}`) return;
    }
    const stick = this.#nearBottom();
    let draft = this.drafts.get(replyTo);
    if (!draft) {
      const text = h("div", { class: "msg__text", dataset: { testid: "bot-draft-text" } });
      // aria-busy: screen readers wait for the stored answer instead of reading every piece.
      const el = h(
        "li",
        { class: "msg msg--bot msg--draft", "aria-busy": "true", dataset: { testid: "bot-draft", replyTo } },
        h("div", { class: "msg__meta" }, h("span", { class: "msg__sender", text: t("chat.botSender") })),
        text,
      );
      draft = { pieces: new Map(), el, text };
      this.drafts.set(replyTo, draft);
      this.list.insertBefore(el, this.list.querySelector("[data-testid=pending-message], [data-testid=failed-message]"));
    }
    draft.pieces.set(index, frame.delta);
    const ordered = [...draft.pieces.entries()].sort((a, b) => a[0] - b[0]).map(([, piece]) => piece);
    draft.text.textContent = ordered.join("");
    if (stick) this.scrollToEnd();
  }

  /** The stored bot message replaces the draft of the answer it is (or every draft before it). */
  #dropDrafts(message) {
    const match = /^bot:(\d+)$/.exec(message.client_msg_id || "");
    const answered = match ? Number(match[1]) : Infinity;
    for (const [replyTo, draft] of this.drafts) {
      if (replyTo > answered) continue; // a later question's answer, still being written
      draft.el.remove();
      this.drafts.delete(replyTo);
    }
  }

  /** Mark a pending message as not sent, with the server's error code (e.g. chat_closed). */
  markFailed(clientMsgId, code) {
    const el = this.pendingEls.get(clientMsgId);
    if (!el) return;
    el.classList.add("msg--failed");
    el.dataset.testid = "failed-message";
    el.dataset.code = code || "";
    const state = el.querySelector(".msg__state");
    if (state) state.textContent = failureText(code);
  }

  /** Render again (the language changed: "You", "sending…"). */
  refresh() {
    for (const [seq, entry] of this.bySeq) {
      const el = this.#render(entry.message);
      entry.el.replaceWith(el);
      this.bySeq.set(seq, { message: entry.message, el });
    }
    for (const draft of this.drafts.values()) {
      const sender = draft.el.querySelector(".msg__sender");
      if (sender) sender.textContent = t("chat.botSender");
    }
    for (const el of this.pendingEls.values()) {
      const sender = el.querySelector(".msg__sender");
      if (sender) sender.textContent = t("chat.you");
      const state = el.querySelector(".msg__state");
      if (state) {
        state.textContent = el.classList.contains("msg--failed") ? failureText(el.dataset.code) : t("chat.sending");
      }
    }
  }

  scrollToEnd() {
    const box = this.list.parentElement;
    if (box) box.scrollTop = box.scrollHeight;
  }

  /** The sender's name as the reader should see it. */
  senderName(message) {
    if (this.#isMine(message)) return t("chat.you");
    if (message.kind === "system") return t("chat.systemSender");
    const name = message.sender && message.sender.display_name;
    if (message.kind === "bot") return name || t("chat.botSender");
    return name || "?";
  }

  #isMine(message) {
    return Boolean(message.sender && message.sender.id === this.getMyId());
  }

  #nearBottom() {
    const box = this.list.parentElement;
    if (!box) return true;
    return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
  }

  #firstAfter(seq) {
    // Messages nearly always arrive in order: look from the end.
    let candidate = this.list.querySelector("[data-testid=pending-message], [data-testid=failed-message]");
    const children = [...this.list.children].filter((el) => el.dataset.seq);
    for (let i = children.length - 1; i >= 0; i -= 1) {
      if (Number(children[i].dataset.seq) > seq) candidate = children[i];
      else break;
    }
    return candidate;
  }

  #render(message) {
    const kind = ["bot", "system"].includes(message.kind) ? message.kind : "text";
    const mine = this.#isMine(message);
    const role = kind === "text" ? (mine ? "own" : "other") : kind;
    const el = h(
      "li",
      {
        class: `msg msg--${role}`,
        dataset: {
          testid: "message",
          seq: message.seq,
          messageId: message.id,
          kind,
          sender: mine ? "me" : "other",
        },
      },
      h(
        "div",
        { class: "msg__meta" },
        h("span", { class: "msg__sender", text: this.senderName(message) }),
        " ",
        h("time", { datetime: message.created_at, text: formatTime(message.created_at) }),
      ),
      h("div", { class: "msg__text", dataset: { testid: "message-text" }, text: message.text }),
    );
    if (kind === "bot" && Array.isArray(message.sources) && message.sources.length) {
      el.append(renderSources(message.sources));
    }
    if (this.decorate) this.decorate(message, el);
    return el;
  }
}

function failureText(code) {
  const reason =
    code === "chat_closed" ? t("chat.failedClosed") : code === "too_large" ? t("chat.failedTooLong") : t("chat.failedOther");
  return t("chat.failed", { reason });
}

/** A knowledge source as a link when its url is http(s), else as its plain title. */
export function sourceLink(source) {
  const title = (source && source.title) || (source && source.url) || "?";
  const href = safeHttpUrl(source && source.url);
  return href
    ? h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: title })
    : h("span", { text: title });
}

function renderSources(sources) {
  const items = sources.map((source) => h("li", {}, sourceLink(source)));
  return h(
    "div",
    { class: "msg__sources", dataset: { testid: "message-sources" } },
    h("span", { class: "msg__sources-label", text: `${t("chat.sources")}:` }),
    h("ul", {}, items),
  );
}

/** "X is typing…" that disappears by itself a few seconds after the last typing event. */
export class TypingIndicator {
  constructor(el) {
    this.el = el;
    this.timer = null;
    this.userId = null;
    this.name = "";
    this.bot = false;
  }

  show(user) {
    this.userId = user && user.id;
    this.name = (user && user.display_name) || "?";
    this.bot = Boolean(user && user.role === "bot");
    this.el.textContent = this.#text();
    this.el.dataset.role = this.bot ? "bot" : "person";
    this.el.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.hide(), 4000);
  }

  /** Hide now (the person sent their message), or only when fromUserId is the typist. */
  hide(fromUserId = null) {
    if (fromUserId !== null && fromUserId !== this.userId) return;
    clearTimeout(this.timer);
    this.el.hidden = true;
    this.el.textContent = "";
    this.userId = null;
  }

  refresh() {
    if (!this.el.hidden) this.el.textContent = this.#text();
  }

  #text() {
    // The bot's name is the page's word for it, in the page's language.
    return this.bot ? t("chat.botTyping") : t("chat.typing", { name: this.name });
  }
}
