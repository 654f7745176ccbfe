// Dates and times in the page's language (not the browser's), for the console's new parts.

import { lang } from "./i18n.js";

const LOCALES = { de: "de-DE", en: "en-GB" };

/** The browser's own locale when it speaks the page's language (en-US stays en-US), else a default. */
function locale() {
  const code = lang();
  const own = (navigator.languages || [navigator.language]).find((l) => l && l.toLowerCase().startsWith(code));
  return own || LOCALES[code] || code;
}

/** "24 Nov 2026, 14:05" / "24.11.2026, 14:05"; "" for anything that is not a date. */
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** "24 Nov 2026" / "24.11.2026". */
export function formatDate(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(date);
}

/** The start of an id, for places where a whole UUID is too long to read. */
export function shortId(id) {
  const text = String(id || "");
  return text.length > 8 ? `${text.slice(0, 8)}…` : text;
}
