// The supporters' console: live queue, own and all active chats, one chat pane.

import { ApiError, createApi } from "./api.js";
import { refreshAges, renderChatLists } from "./chatlist.js";
import { bindComposer } from "./composer.js";
import { byId, h, show } from "./dom.js";
import { applyTranslations, bindLanguageSelect, onLangChange, t } from "./i18n.js";
import { ReauthDialog } from "./reauth.js";
import { Session } from "./session.js";
import { ChatSocket } from "./socket.js";
import { showConnection } from "./status.js";
import { Transcript, TypingIndicator } from "./transcript.js";

const session = new Session("sc.console");
const OUTBOX_KEY = "sc.console.outbox";
const STAFF = new Set(["supporter", "admin"]);

let socket = null;
const chats = new Map(); // id -> chat
const touched = new Map(); // id -> when a live event last changed it
const messageCache = new Map(); // id -> Map(seq -> message), for every chat opened
let selectedId = null;
let suggestionId = null;

const els = {
  loginView: byId("login-view"),
  consoleView: byId("console-view"),
  loginForm: byId("login-form"),
  loginError: byId("login-error"),
  me: byId("me"),
  logout: byId("logout"),
  conn: byId("conn-status"),
  paneEmpty: byId("pane-empty"),
  paneChat: byId("pane-chat"),
  paneCustomer: byId("pane-customer"),
  paneStatus: byId("pane-status"),
  paneError: byId("pane-error"),
  take: byId("take-over"),
  end: byId("end-chat"),
  hint: byId("composer-hint"),
  input: byId("message-input"),
  suggestions: byId("suggestions"),
  suggestionList: byId("suggestion-list"),
  announcer: byId("announcer"),
  confirmEnd: byId("confirm-end"),
};
const lists = {
  queue: byId("queue-list"),
  queueCount: byId("queue-count"),
  mine: byId("mine-list"),
  mineCount: byId("mine-count"),
  active: byId("active-list"),
  activeCount: byId("active-count"),
};

const meId = () => session.user && session.user.id;

const reauth = new ReauthDialog({
  mode: () => "login",
  resumeGuest: async () => {},
  login: async (username, password) => {
    const auth = await api.post("/api/auth/login", { username, password }, { auth: false });
    if (auth.user.id !== meId()) {
      // Someone else signed in: nothing of the previous state is theirs.
      session.clear();
      session.signIn(auth, { username });
      location.reload();
      return;
    }
    session.signIn(auth, { username });
  },
  username: () => session.data.username,
  startOver: () => signOut(),
});
const api = createApi({ getToken: () => session.token, onUnauthorized: () => reauth.request() });
const transcript = new Transcript(byId("transcript"), meId);
const typing = new TypingIndicator(byId("typing"));
const composer = bindComposer({
  form: byId("composer"),
  input: els.input,
  error: byId("composer-error"),
  onSend: sendMessage,
  onTyping: () => selectedId && socket && socket.sendTyping(selectedId),
});

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.network");
    if (err.status === 429) return t("error.rateLimited");
    return t("error.generic", { detail: err.detail || err.code || err.status });
  }
  return t("error.generic", { detail: String(err) });
}

function setPaneError(message) {
  els.paneError.textContent = message || "";
  show(els.paneError, Boolean(message));
}

// ---- signing in and out -------------------------------------------------------------

function showLogin() {
  show(els.consoleView, false);
  show(els.loginView, true);
  show(els.logout, false);
  show(els.me, false);
  els.conn.textContent = "";
  byId("login-username").value = session.data.username || "";
  (session.data.username ? byId("login-password") : byId("login-username")).focus();
}

els.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  els.loginError.hidden = true;
  const username = byId("login-username").value.trim();
  const password = byId("login-password").value;
  try {
    const auth = await api.post("/api/auth/login", { username, password }, { auth: false });
    if (!STAFF.has(auth.user.role)) {
      api.post("/api/auth/logout", {}, { auth: false, token: auth.token }).catch(() => {});
      throw new Error(t("console.notSupporter"));
    }
    session.clear();
    session.signIn(auth, { username });
    byId("login-password").value = "";
    enterConsole();
  } catch (err) {
    let message = err.message;
    if (err instanceof ApiError) message = err.status === 401 ? t("login.failed") : errorText(err);
    els.loginError.textContent = message;
    els.loginError.hidden = false;
  }
});

async function signOut() {
  const token = session.token;
  if (socket) socket.stop();
  socket = null;
  if (token) api.post("/api/auth/logout", {}, { auth: false, token }).catch(() => {});
  const username = session.data.username;
  session.clear();
  session.update({ username });
  chats.clear();
  messageCache.clear();
  touched.clear();
  selectedId = null;
  showLogin();
}

els.logout.addEventListener("click", () => signOut());

function enterConsole() {
  show(els.loginView, false);
  show(els.consoleView, true);
  show(els.logout, true);
  els.me.textContent = t("console.signedIn", { name: session.user.display_name });
  show(els.me, true);
  session.startRefresh(api);
  ensureSocket();
  socket.subscribeQueue();
  socket.start();
  renderLists();
  const remembered = session.data.selected;
  loadLists().then(() => {
    if (remembered && !selectedId) selectChat(remembered);
  });
}

// ---- the lists ------------------------------------------------------------------------

function renderLists() {
  renderChatLists(lists, chats.values(), meId(), selectedId, selectChat);
}

async function loadLists() {
  const started = performance.now();
  try {
    const results = await Promise.all(
      ["open", "bot", "assigned"].map((status) => api.get(`/api/chats?status=${status}`)),
    );
    const fresh = new Map();
    for (const list of results) for (const c of list || []) fresh.set(c.id, c);
    // Keep what a live event changed after the request went out, and the open chat.
    for (const [id, c] of chats) {
      if ((touched.get(id) || 0) > started || id === selectedId) {
        if (!fresh.has(id) || (touched.get(id) || 0) > started) fresh.set(id, c);
      }
    }
    chats.clear();
    for (const [id, c] of fresh) chats.set(id, c);
    renderLists();
    if (selectedId && chats.has(selectedId)) renderPane();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) setPaneError(errorText(err));
  }
}

function upsertChat(c) {
  const before = chats.get(c.id);
  chats.set(c.id, c);
  touched.set(c.id, performance.now());
  const waiting = c.status === "open" || c.status === "bot";
  if (waiting && (!before || (before.status !== "open" && before.status !== "bot"))) {
    els.announcer.textContent = t("console.newChatWaiting", { name: c.customer.display_name });
  }
  renderLists();
  if (c.id === selectedId) renderPane();
}

// ---- the pane -------------------------------------------------------------------------

function paneStatus(c) {
  if (c.status === "assigned") {
    if (c.supporter && c.supporter.id === meId()) return t("cstatus.assignedMe");
    return t("cstatus.assigned", { name: c.supporter ? c.supporter.display_name : "?" });
  }
  return t(`cstatus.${c.status}`);
}

function renderPane() {
  const c = chats.get(selectedId);
  if (!c) return;
  show(els.paneEmpty, false);
  show(els.paneChat, true);
  els.paneCustomer.textContent = (c.customer && c.customer.display_name) || "?";
  els.paneStatus.textContent = paneStatus(c);
  els.paneStatus.dataset.status = c.status;
  const mine = c.status === "assigned" && c.supporter && c.supporter.id === meId();
  show(els.take, c.status === "open" || c.status === "bot");
  show(els.end, c.status !== "closed");
  composer.setEnabled(mine);
  show(els.hint, !mine && c.status !== "closed");
  if (c.status === "closed") {
    typing.hide();
    showSuggestions([]);
  }
}

async function selectChat(id) {
  if (!id) return;
  const changed = id !== selectedId;
  if (changed && selectedId && socket) socket.unsubscribe(selectedId);
  selectedId = id;
  session.update({ selected: id });
  if (changed) {
    transcript.clear();
    typing.hide();
    showSuggestions([]);
    setPaneError("");
    composer.showError("");
    els.input.value = "";
    for (const m of (messageCache.get(id) || new Map()).values()) transcript.add(m);
    for (const entry of socket.pending(id)) transcript.addPending(entry);
  }
  renderLists();
  if (chats.has(id)) renderPane();
  if (!messageCache.has(id)) messageCache.set(id, new Map());
  socket.subscribe(id);
  await refreshChat(id);
  if (window.matchMedia("(max-width: 720px)").matches) els.paneChat.scrollIntoView({ block: "start" });
}

async function refreshChat(id) {
  try {
    const c = await api.get(`/api/chats/${encodeURIComponent(id)}`);
    chats.set(c.id, c);
    renderLists();
    if (id === selectedId) renderPane();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && id === selectedId) {
      selectedId = null;
      session.update({ selected: null });
      show(els.paneChat, false);
      show(els.paneEmpty, true);
      renderLists();
    } else if (!(err instanceof ApiError && err.status === 401)) {
      setPaneError(errorText(err));
    }
  }
}

els.take.addEventListener("click", async () => {
  const id = selectedId;
  setPaneError("");
  els.take.disabled = true;
  try {
    upsertChat(await api.post(`/api/chats/${encodeURIComponent(id)}/assign`, {}));
    els.input.focus();
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      setPaneError(t("console.alreadyTaken"));
      await refreshChat(id);
    } else setPaneError(errorText(err));
  } finally {
    els.take.disabled = false;
  }
});

els.end.addEventListener("click", () => {
  els.confirmEnd.returnValue = "";
  els.confirmEnd.showModal();
  els.confirmEnd.querySelector("[value=cancel]").focus();
});

els.confirmEnd.addEventListener("close", async () => {
  if (els.confirmEnd.returnValue !== "end" || !selectedId) return;
  const id = selectedId;
  setPaneError("");
  try {
    upsertChat(await api.post(`/api/chats/${encodeURIComponent(id)}/close`, {}));
  } catch (err) {
    setPaneError(errorText(err));
    await refreshChat(id);
  }
});

// ---- invitations -----------------------------------------------------------------------

byId("invite-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = byId("invite-name").value.trim();
  const error = byId("invite-error");
  error.hidden = true;
  if (!name) return;
  try {
    const result = await api.post("/api/chats", { customer_display_name: name });
    byId("invite-url").value = new URL(result.invite_url, location.origin).href;
    show(byId("invite-result"), true);
    byId("invite-name").value = "";
    upsertChat(result.chat);
    byId("invite-url").select();
  } catch (err) {
    error.textContent = errorText(err);
    error.hidden = false;
  }
});

// ---- suggestions ----------------------------------------------------------------------

function showSuggestions(items) {
  suggestionId = null;
  els.suggestionList.replaceChildren(
    ...items.map((s) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "suggestion",
            dataset: { testid: "suggestion", suggestionId: s.id },
            onclick: () => {
              els.input.value = s.text;
              suggestionId = s.id;
              els.input.focus();
            },
          },
          h("span", { class: "suggestion__text", text: s.text }),
          h("span", {
            class: "suggestion__meta",
            text: t("console.confidence", { pct: Math.round((Number(s.confidence) || 0) * 100) }),
          }),
        ),
      ),
    ),
  );
  show(els.suggestions, items.length > 0);
}

// ---- socket ---------------------------------------------------------------------------

function ensureSocket() {
  if (socket) return;
  socket = new ChatSocket({
    getToken: () => session.token,
    getUserId: meId,
    outboxKey: OUTBOX_KEY,
    onEvent: handleEvent,
    onStatus: (state) => showConnection(els.conn, state),
    onAuthFailed: () => reauth.request(),
  });
  window.__chatSocket = socket;
}

function handleEvent(frame) {
  switch (frame.type) {
    case "ready":
      if (frame.resumed) {
        loadLists();
        if (selectedId) refreshChat(selectedId);
      }
      return;
    case "message": {
      const m = frame.message;
      if (!messageCache.has(m.chat_id)) messageCache.set(m.chat_id, new Map());
      messageCache.get(m.chat_id).set(m.seq, m);
      if (m.chat_id === selectedId) {
        transcript.add(m);
        if (m.sender) typing.hide(m.sender.id);
      }
      return;
    }
    case "chat":
      if (frame.chat) upsertChat(frame.chat);
      return;
    case "typing":
      if (frame.chat_id === selectedId && frame.user && frame.user.id !== meId()) typing.show(frame.user);
      return;
    case "suggestions":
      if (frame.chat_id === selectedId && Array.isArray(frame.suggestions)) showSuggestions(frame.suggestions);
      return;
    case "failed":
      transcript.markFailed(frame.entry.client_msg_id, frame.code);
      if (frame.entry.chat_id) refreshChat(frame.entry.chat_id);
      return;
    default:
  }
}

function sendMessage(text) {
  const c = chats.get(selectedId);
  if (!c || !socket || c.status !== "assigned" || !c.supporter || c.supporter.id !== meId()) return false;
  const extra = suggestionId ? { suggestion_id: suggestionId } : {};
  suggestionId = null;
  transcript.addPending(socket.send(c.id, text, extra));
  return true;
}

// ---- start ----------------------------------------------------------------------------

session.onToken(() => {
  session.startRefresh(api);
  if (socket && socket.state !== "idle" && socket.state !== "stopped") socket.resume();
});

onLangChange(() => {
  renderLists();
  renderPane();
  transcript.refresh();
  typing.refresh();
  showConnection(els.conn, els.conn.dataset.state);
  if (session.user) els.me.textContent = t("console.signedIn", { name: session.user.display_name });
});

setInterval(() => refreshAges(document), 30000);

function main() {
  applyTranslations(document);
  bindLanguageSelect(byId("lang-select"));
  if (session.token && session.user && STAFF.has(session.user.role)) {
    if (session.isExpired()) {
      enterConsoleAfterReauth();
      return;
    }
    enterConsole();
    return;
  }
  showLogin();
}

async function enterConsoleAfterReauth() {
  show(els.consoleView, true);
  if (await reauth.request()) enterConsole();
}

main();
