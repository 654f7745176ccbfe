// The connection line in the top bar.

import { t } from "./i18n.js";

const TEXT = {
  connecting: "conn.connecting",
  online: "conn.online",
  reconnecting: "conn.reconnecting",
  refused: "conn.refused",
  auth: "conn.auth",
};

/** Show the socket's state ("online", "reconnecting", ...) in el. */
export function showConnection(el, state) {
  if (!state || !TEXT[state]) return;
  el.dataset.state = state;
  el.textContent = t(TEXT[state]);
}
