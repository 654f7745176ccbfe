// The console's three chat lists: waiting, mine, all active.

import { h } from "./dom.js";
import { lang, t } from "./i18n.js";

const WAITING = new Set(["open", "bot"]);

/** "3 min. ago" in the page's language. */
export function formatAge(iso) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return "";
  const seconds = Math.round((then - Date.now()) / 1000);
  const format = new Intl.RelativeTimeFormat(lang(), { numeric: "auto", style: "short" });
  const abs = Math.abs(seconds);
  if (abs < 60) return format.format(0, "minute");
  if (abs < 3600) return format.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return format.format(Math.round(seconds / 3600), "hour");
  return format.format(Math.round(seconds / 86400), "day");
}

function byAge(a, b) {
  return String(a.created_at).localeCompare(String(b.created_at));
}

function item(chat, selectedId, onSelect) {
  const name = (chat.customer && chat.customer.display_name) || "?";
  const selected = chat.id === selectedId;
  const button = h(
    "button",
    {
      type: "button",
      class: `chatitem${selected ? " is-selected" : ""}`,
      "aria-current": selected ? "true" : null,
      dataset: { testid: "chat-item", chatId: chat.id, status: chat.status },
      onclick: () => onSelect(chat.id),
    },
    h("span", { class: "chatitem__name", dataset: { testid: "chat-item-name" }, text: name }),
    h(
      "span",
      { class: "chatitem__meta" },
      h("span", { class: `badge badge--${chat.status}`, text: t(`state.${chat.status}`) }),
      " ",
      h("time", { datetime: chat.created_at, dataset: { age: "" }, text: formatAge(chat.created_at) }),
    ),
  );
  return h("li", {}, button);
}

function fill(list, countEl, chats, selectedId, onSelect, filter = null) {
  const focused = document.activeElement;
  const focusedId = focused && list.contains(focused) ? focused.dataset.chatId : null;
  const active = Boolean(filter && filter.active);
  const shown = active ? chats.filter(filter.matches) : chats;
  const empty = active && chats.length ? "console.noMatch" : "console.none";
  list.replaceChildren(
    ...(shown.length
      ? shown.map((c) => item(c, selectedId, onSelect))
      : [h("li", { class: "chatlist__empty", dataset: { testid: "chatlist-empty" }, text: t(empty) })]),
  );
  if (!chats.length) countEl.textContent = "";
  else if (shown.length === chats.length) countEl.textContent = `(${chats.length})`;
  else countEl.textContent = `(${t("console.countOf", { shown: shown.length, total: chats.length })})`;
  if (focusedId) {
    const again = list.querySelector(`[data-chat-id="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
}

/** Lower case without accents, so "muller" finds "Müller". */
export function foldText(text) {
  return String(text || "")
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLocaleLowerCase()
    .trim();
}

/**
 * A filter over the lists: name (part of the customer's name, any case and accents) and
 * status ("all", "waiting", "bot", "assigned", "mine"). Returns {active, matches(chat)}.
 */
export function chatFilter(name, status, meId) {
  const needle = foldText(name);
  const wanted = status || "all";
  const matches = (c) => {
    if (needle && !foldText(c.customer && c.customer.display_name).includes(needle)) return false;
    switch (wanted) {
      case "waiting":
        return c.status === "open";
      case "bot":
        return c.status === "bot";
      case "assigned":
        return c.status === "assigned";
      case "mine":
        return c.status === "assigned" && Boolean(c.supporter) && c.supporter.id === meId;
      default:
        return true;
    }
  };
  return { active: Boolean(needle) || wanted !== "all", matches };
}

/** Render the lists from all known chats, narrowed by filter (see chatFilter) when given. */
export function renderChatLists(els, chats, meId, selectedId, onSelect, filter = null) {
  const all = [...chats].filter((c) => c.status !== "closed").sort(byAge);
  fill(els.queue, els.queueCount, all.filter((c) => WAITING.has(c.status)), selectedId, onSelect, filter);
  fill(
    els.mine,
    els.mineCount,
    all.filter((c) => c.status === "assigned" && c.supporter && c.supporter.id === meId),
    selectedId,
    onSelect,
    filter,
  );
  fill(els.active, els.activeCount, all, selectedId, onSelect, filter);
}

/** Update the "x min ago" texts without re-rendering. */
export function refreshAges(root) {
  for (const el of root.querySelectorAll("time[data-age]")) el.textContent = formatAge(el.dateTime);
}
