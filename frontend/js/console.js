// The supporters' console: live queue, own and all active chats (filterable), one chat
// pane; the archive (read-only), the account menu and, for admins, the admin panel.

import { AccountMenu } from "./account.js";
import { AdminView } from "./admin.js";
import { ApiError, createApi } from "./api.js";
import { ArchiveView } from "./archive.js";
import { chatFilter, refreshAges, renderChatLists } from "./chatlist.js";
import { bindComposer } from "./composer.js";
import { HandoverPanel } from "./handover.js";
import { bindModulePicker } from "./modules.js";
import { byId, h, safeHttpUrl, show } from "./dom.js";
import { applyTranslations, bindLanguageSelect, onLangChange, t } from "./i18n.js";
import { ReauthDialog } from "./reauth.js";
import { Session } from "./session.js";
import { ChatSocket } from "./socket.js";
import { showConnection } from "./status.js";
import { Transcript, TypingIndicator } from "./transcript.js";

const session = new Session("sc.console");
const OUTBOX_KEY = "sc.console.outbox";
const STAFF = new Set(["supporter", "admin"]);
const VIEWS = ["chats", "archive", "admin"];

let socket = null;
const chats = new Map(); // id -> chat
const touched = new Map(); // id -> when a live event last changed it
const messageCache = new Map(); // id -> Map(seq -> message), for every chat opened
let selectedId = null;
let suggestionId = null;
let view = "chats";
let noticeTimer = null;

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
  views: byId("views"),
  archiveView: byId("archive-view"),
  adminView: byId("admin-view"),
  notice: byId("account-notice"),
  filterName: byId("filter-name"),
  filterStatus: byId("filter-status"),
  filterClear: byId("filter-clear"),
  paneArchive: byId("pane-archive"),
  inviteUrl: byId("invite-url"),
  inviteCopy: byId("invite-copy"),
  inviteCopied: byId("invite-copied"),
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
const isAdmin = () => Boolean(session.user && session.user.role === "admin");

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
bindModulePicker({
  input: els.input,
  list: byId("module-list"),
  search: (q) => {
    const params = new URLSearchParams({ q });
    if (selectedId) params.set("chat_id", selectedId);
    return api.get(`/api/text-modules?${params}`);
  },
});

const composer = bindComposer({
  form: byId("composer"),
  input: els.input,
  error: byId("composer-error"),
  onSend: sendMessage,
  onTyping: () => selectedId && socket && socket.sendTyping(selectedId),
});

const archive = new ArchiveView({ api, meId, errorText });
const admin = new AdminView({ api, meId, errorText, announce: (text) => announce(text) });
const handover = new HandoverPanel({
  api,
  errorText,
  getExpanded: () => session.data.handover_open,
  setExpanded: (open) => session.update({ handover_open: open }),
});
const account = new AccountMenu({
  api,
  getToken: () => session.token,
  isAdmin,
  openAdmin: () => setView("admin", { focus: true }),
  signOutEverywhere: () => {
    if (socket) socket.stop();
    return () => socket && socket.start();
  },
  signedOut: (message) => {
    signOut({ revoke: false });
    notify(message);
  },
  sessionLost: () => reauth.request(),
  notify: (text, isError = false) => notify(text, isError),
});

function announce(text) {
  els.announcer.textContent = "";
  els.announcer.textContent = text;
}

/** A confirmation (or failure) under the top bar, for a while. */
function notify(text, isError = false) {
  clearTimeout(noticeTimer);
  els.notice.textContent = text;
  els.notice.classList.toggle("notice--ok", !isError);
  show(els.notice, Boolean(text));
  if (text) noticeTimer = setTimeout(() => show(els.notice, false), 15000);
}

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
  show(els.archiveView, false);
  show(els.adminView, false);
  show(els.views, false);
  account.enable(false);
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

async function signOut({ revoke = true } = {}) {
  const token = session.token;
  if (socket) socket.stop();
  socket = null;
  if (token && revoke) api.post("/api/auth/logout", {}, { auth: false, token }).catch(() => {});
  const username = session.data.username;
  session.clear();
  session.update({ username });
  chats.clear();
  messageCache.clear();
  touched.clear();
  selectedId = null;
  transcript.clear();
  handover.reset();
  show(els.paneChat, false);
  show(els.paneEmpty, true);
  archive.reset();
  admin.reset();
  view = "chats";
  showLogin();
}

els.logout.addEventListener("click", () => {
  notify("");
  signOut();
});

function enterConsole() {
  show(els.loginView, false);
  show(els.views, true);
  show(els.views.querySelector("[data-view=admin]"), isAdmin());
  account.enable(true);
  setView(session.data.view || "chats");
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

// ---- views: chats, archive, admin -------------------------------------------------------

function setView(name, { focus = false } = {}) {
  const next = VIEWS.includes(name) && (name !== "admin" || isAdmin()) ? name : "chats";
  const changed = next !== view;
  view = next;
  session.update({ view });
  show(els.consoleView, view === "chats");
  show(els.archiveView, view === "archive");
  show(els.adminView, view === "admin");
  for (const tab of els.views.querySelectorAll("[data-view]")) {
    const current = tab.dataset.view === view;
    tab.classList.toggle("is-current", current);
    if (current) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "archive") archive.shown();
  if (view === "admin") admin.shown();
  if (focus && changed) byId("main").focus();
}

for (const tab of els.views.querySelectorAll("[data-view]")) {
  tab.addEventListener("click", () => setView(tab.dataset.view));
}

// ---- the lists ------------------------------------------------------------------------

function currentFilter() {
  return chatFilter(els.filterName.value, els.filterStatus.value, meId());
}

function renderLists() {
  const filter = currentFilter();
  show(els.filterClear, filter.active);
  renderChatLists(lists, chats.values(), meId(), selectedId, selectChat, filter);
}

els.filterName.addEventListener("input", () => renderLists());
els.filterStatus.addEventListener("change", () => renderLists());
els.filterClear.addEventListener("click", () => {
  els.filterName.value = "";
  els.filterStatus.value = "all";
  renderLists();
  els.filterName.focus();
});
els.filterName.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && els.filterName.value) {
    event.preventDefault();
    els.filterName.value = "";
    renderLists();
  }
});

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
    announce(t("console.newChatWaiting", { name: c.customer.display_name }));
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
  show(els.paneArchive, Boolean(c.customer && c.customer.id));
  composer.setEnabled(mine);
  show(els.hint, !mine && c.status !== "closed");
  if (c.status === "closed") {
    typing.hide();
    showSuggestions([]);
  }
  handover.update(c);
}

async function selectChat(id) {
  if (!id) return;
  const changed = id !== selectedId;
  if (changed && selectedId && socket) socket.unsubscribe(selectedId);
  selectedId = id;
  session.update({ selected: id });
  if (changed) {
    transcript.clear();
    handover.reset();
    typing.hide();
    suggestionId = null;
    showSuggestions([]);
    setPaneError("");
    composer.showError("");
    els.input.value = "";
    for (const m of (messageCache.get(id) || new Map()).values()) transcript.add(m);
    for (const entry of socket.pending(id)) transcript.addPending(entry);
    loadSuggestions(id);
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
      handover.reset();
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

els.paneArchive.addEventListener("click", () => {
  const c = chats.get(selectedId);
  if (!c || !c.customer) return;
  setView("archive");
  archive.search({ customerId: c.customer.id, limit: Number(byId("archive-limit").value) });
});

// ---- invitations -----------------------------------------------------------------------

byId("invite-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = byId("invite-name").value.trim();
  const error = byId("invite-error");
  error.hidden = true;
  if (!name) return;
  const submit = event.submitter || byId("invite-form").querySelector("[type=submit]");
  submit.disabled = true;
  try {
    const result = await api.post("/api/chats", { customer_display_name: name });
    const url = safeHttpUrl(result.invite_url);
    if (!url) throw new Error("invite_url");
    els.inviteUrl.value = url;
    els.inviteCopied.textContent = "";
    show(byId("invite-result"), true);
    byId("invite-name").value = "";
    // It starts assigned to us: it shows under "My chats" (and live events keep it current).
    upsertChat(result.chat);
    announce(t("console.inviteCreated", { name: result.chat.customer.display_name }));
    els.inviteCopy.focus();
  } catch (err) {
    error.textContent = errorText(err);
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
});

els.inviteCopy.addEventListener("click", async () => {
  const url = els.inviteUrl.value;
  if (!url) return;
  let copied = false;
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(url);
      copied = true;
    } catch {
      copied = false;
    }
  }
  if (copied) {
    els.inviteCopied.textContent = t("console.inviteCopied");
    els.inviteCopied.dataset.state = "copied";
  } else {
    // No clipboard here (plain http, or refused): select it for Ctrl+C.
    els.inviteUrl.focus();
    els.inviteUrl.select();
    els.inviteCopied.textContent = t("console.inviteSelect");
    els.inviteCopied.dataset.state = "selected";
  }
});

// ---- suggestions ----------------------------------------------------------------------

function showSuggestions(items) {
  // A suggestion already put into the input stays linked to it when newer ones arrive.
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
            dataset: { testid: "suggestion", suggestionId: s.id, messageId: s.message_id },
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

async function loadSuggestions(id) {
  try {
    const items = await api.get(`/api/chats/${encodeURIComponent(id)}/suggestions`);
    if (id === selectedId && Array.isArray(items) && items.length > 0) showSuggestions(items);
  } catch {
    // Suggestions are a help, not the chat: a failed load leaves them empty.
  }
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
    case "bot_delta":
      if (frame.chat_id === selectedId) transcript.addDelta(frame);
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
  archive.refresh();
  admin.refresh();
  account.refresh();
  transcript.refresh();
  typing.refresh();
  handover.render();
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

window.addEventListener("keydown", (event) => {
  // Escape closes the account menu from anywhere in the top bar.
  if (event.key === "Escape") account.setOpen(false);
});

main();
