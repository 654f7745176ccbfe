// The customer's page: start a chat, write, see the answers and the chat's status.

import { ApiError, createApi } from "./api.js";
import { bindComposer } from "./composer.js";
import { byId, h, show } from "./dom.js";
import { applyTranslations, bindLanguageSelect, onLangChange, t } from "./i18n.js";
import { ReauthDialog } from "./reauth.js";
import { Session } from "./session.js";
import { ChatSocket } from "./socket.js";
import { showConnection } from "./status.js";
import { Transcript, TypingIndicator } from "./transcript.js";

const session = new Session("sc.customer");
const OUTBOX_KEY = "sc.customer.outbox";
const RATINGS = ["helpful", "not_helpful"];
let chat = null; // the chat on screen
let socket = null;
// The customer's ratings of bot answers in the chat on screen: message id -> {rating, pending}.
// Kept in the session too, so a reload or resume shows the choice again.
const ratings = new Map();

const els = {
  notice: byId("notice"),
  startView: byId("start-view"),
  chatView: byId("chat-view"),
  guestForm: byId("guest-form"),
  guestName: byId("guest-name"),
  guestEmail: byId("guest-email"),
  guestError: byId("guest-error"),
  signedInBox: byId("signed-in-start"),
  signedInAs: byId("signed-in-as"),
  toggleLogin: byId("toggle-login"),
  loginForm: byId("login-form"),
  loginError: byId("login-error"),
  status: byId("chat-status"),
  escalate: byId("escalate"),
  closedBox: byId("closed-box"),
  input: byId("message-input"),
  conn: byId("conn-status"),
  transcriptList: byId("transcript"),
};

const reauth = new ReauthDialog({
  mode: () => (session.data.resume_token ? "guest" : session.data.username ? "login" : "none"),
  resumeGuest: async () => {
    const auth = await api.post("/api/auth/guest/resume", { resume_token: session.data.resume_token }, { auth: false });
    session.signIn(auth);
  },
  login: async (username, password) => {
    const auth = await api.post("/api/auth/login", { username, password }, { auth: false });
    session.signIn(auth, { username });
  },
  username: () => session.data.username,
  startOver: () => startOver(),
});

const api = createApi({ getToken: () => session.token, onUnauthorized: () => reauth.request() });
const transcript = new Transcript(byId("transcript"), () => session.user && session.user.id, {
  decorate: addRatingButtons,
});
const typing = new TypingIndicator(byId("typing"));
const composer = bindComposer({
  form: byId("composer"),
  input: els.input,
  error: byId("composer-error"),
  onSend: sendMessage,
  onTyping: () => chat && socket && socket.sendTyping(chat.id),
});

// ---- views ----------------------------------------------------------------------

function setNotice(message) {
  els.notice.textContent = message || "";
  show(els.notice, Boolean(message));
}

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t("error.network");
    if (err.status === 429) return t("error.rateLimited");
    return t("error.generic", { detail: err.detail || err.code || err.status });
  }
  return t("error.generic", { detail: String(err) });
}

function showStart() {
  chat = null;
  show(els.chatView, false);
  show(els.startView, true);
  const signedIn = Boolean(session.token) && !session.isExpired();
  show(els.guestForm, !signedIn);
  show(els.signedInBox, signedIn);
  show(els.toggleLogin, !signedIn);
  if (signedIn) {
    els.signedInAs.textContent = t("start.signedInAs", { name: session.user.display_name });
  } else {
    els.loginForm.hidden = true;
    els.toggleLogin.setAttribute("aria-expanded", "false");
  }
}

function statusText(c) {
  if (c.status === "bot") return t("status.bot");
  if (c.status === "open") return t("status.open");
  if (c.status === "assigned") {
    return c.supporter ? t("status.assignedWith", { name: c.supporter.display_name }) : t("status.assigned");
  }
  if (c.status === "closed") return t("status.closed");
  return c.status;
}

function renderChat() {
  if (!chat) return;
  els.status.textContent = statusText(chat);
  els.status.dataset.status = chat.status;
  show(els.escalate, chat.status === "bot" || chat.status === "open");
  const closed = chat.status === "closed";
  show(els.closedBox, closed);
  composer.setEnabled(!closed);
  if (closed) typing.hide();
}

async function openChat(chatId, known = null) {
  setNotice("");
  show(els.startView, false);
  show(els.chatView, true);
  if (!chat || chat.id !== chatId) {
    if (chat && socket) socket.unsubscribe(chat.id);
    transcript.clear();
    typing.hide();
    loadRatings(chatId);
  }
  chat = known || { id: chatId, status: "loading" };
  session.update({ chat_id: chatId });
  if (known) renderChat();
  else els.status.textContent = t("status.loading");
  ensureSocket();
  for (const entry of socket.pending(chatId)) transcript.addPending(entry);
  socket.subscribe(chatId);
  socket.start();
  await refreshChat();
}

async function refreshChat() {
  if (!chat) return;
  const id = chat.id;
  try {
    const fresh = await api.get(`/api/chats/${encodeURIComponent(id)}`);
    if (chat && chat.id === id) {
      chat = fresh;
      renderChat();
    }
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
      session.update({ chat_id: null });
      showStart();
      return;
    }
    setNotice(errorText(err));
  }
}

async function createChat() {
  const created = await api.post("/api/chats", {});
  const newChat = created && created.chat ? created.chat : created;
  await openChat(newChat.id, newChat);
  els.input.focus();
}

function startOver() {
  if (socket) socket.stop();
  socket = null;
  session.clear();
  try {
    localStorage.removeItem(OUTBOX_KEY);
  } catch {
    // Nothing stored.
  }
  transcript.clear();
  showStart();
}

// ---- rating the bot's answers ------------------------------------------------------

/** Load the ratings remembered for this chat (another chat's are forgotten). */
function loadRatings(chatId) {
  ratings.clear();
  const stored = session.data.ratings;
  if (!stored || stored.chat_id !== chatId || !stored.by || typeof stored.by !== "object") return;
  for (const [id, rating] of Object.entries(stored.by)) {
    if (RATINGS.includes(rating)) ratings.set(String(id), { rating, pending: false });
  }
}

function saveRatings() {
  if (!chat) return;
  const by = {};
  for (const [id, state] of ratings) if (state.rating && !state.pending) by[id] = state.rating;
  session.update({ ratings: { chat_id: chat.id, by } });
}

/** The two rating buttons under a bot answer with sources (decorates the transcript's element). */
function addRatingButtons(message, el) {
  if (message.kind !== "bot" || !Array.isArray(message.sources) || message.sources.length === 0) return;
  const id = String(message.id);
  if (!ratings.has(id) && RATINGS.includes(message.rating)) ratings.set(id, { rating: message.rating, pending: false });
  const button = (rating, testid, key) =>
    h("button", {
      type: "button",
      class: "btn btn--small rating__btn",
      "aria-pressed": "false",
      dataset: { testid, rating },
      text: t(key),
      onclick: () => rate(id, rating),
    });
  const group = h(
    "div",
    { class: "rating", role: "group", "aria-label": t("rate.question"), dataset: { testid: "rating", messageId: id } },
    button("helpful", "rate-helpful", "rate.helpful"),
    button("not_helpful", "rate-not-helpful", "rate.notHelpful"),
  );
  showRating(group, ratings.get(id));
  el.append(group);
}

function showRating(group, state) {
  const chosen = state ? state.rating : null;
  for (const btn of group.querySelectorAll("button[data-rating]")) {
    btn.setAttribute("aria-pressed", String(btn.dataset.rating === chosen));
  }
  group.setAttribute("aria-busy", String(Boolean(state && state.pending)));
}

function setRating(id, state) {
  if (state.rating) ratings.set(id, state);
  else ratings.delete(id);
  const group = els.transcriptList.querySelector(`[data-testid=rating][data-message-id="${CSS.escape(id)}"]`);
  if (group) showRating(group, state);
}

async function rate(id, rating) {
  if (!chat) return;
  const before = ratings.get(id) || { rating: null, pending: false };
  if (before.pending || before.rating === rating) return;
  const chatId = chat.id;
  setRating(id, { rating, pending: true }); // pressed at once; a failure takes it back
  try {
    const path = `/api/chats/${encodeURIComponent(chatId)}/messages/${encodeURIComponent(id)}/feedback`;
    const stored = await api.post(path, { rating });
    if (!chat || chat.id !== chatId) return;
    setRating(id, { rating: stored && RATINGS.includes(stored.rating) ? stored.rating : rating, pending: false });
    saveRatings();
  } catch (err) {
    if (!chat || chat.id !== chatId) return;
    setRating(id, { rating: before.rating, pending: false });
    setNotice(errorText(err));
  }
}

// ---- socket ---------------------------------------------------------------------

function ensureSocket() {
  if (socket) return;
  socket = new ChatSocket({
    getToken: () => session.token,
    getUserId: () => session.user && session.user.id,
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
      if (frame.resumed) refreshChat();
      return;
    case "message": {
      const m = frame.message;
      if (!chat || m.chat_id !== chat.id) return;
      transcript.add(m);
      if (m.sender) typing.hide(m.sender.id);
      return;
    }
    case "chat":
      if (chat && frame.chat && frame.chat.id === chat.id) {
        chat = frame.chat;
        renderChat();
      }
      return;
    case "typing":
      if (chat && frame.chat_id === chat.id && frame.user && frame.user.id !== session.user.id) {
        if (chat.status !== "closed") typing.show(frame.user);
      }
      return;
    case "bot_delta":
      if (chat && frame.chat_id === chat.id) transcript.addDelta(frame);
      return;
    case "failed":
      transcript.markFailed(frame.entry.client_msg_id, frame.code);
      if (frame.code === "chat_closed") refreshChat();
      return;
    case "error":
      if (frame.code === "chat_closed") refreshChat();
      return;
    default:
  }
}

function sendMessage(text) {
  if (!chat || chat.status === "closed" || !socket) return false;
  const entry = socket.send(chat.id, text);
  transcript.addPending(entry);
  return true;
}

// ---- actions --------------------------------------------------------------------

els.guestForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = els.guestName.value.trim();
  const email = els.guestEmail.value.trim();
  const error = byId("guest-error");
  error.hidden = true;
  if (!name) {
    error.textContent = t("error.nameRequired");
    error.hidden = false;
    els.guestName.focus();
    return;
  }
  const submit = els.guestForm.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const body = email ? { display_name: name, email } : { display_name: name };
    const auth = await api.post("/api/auth/guest", body, { auth: false });
    session.clear();
    session.signIn(auth, { resume_token: auth.resume_token || null, chat_id: null });
    await createChat();
  } catch (err) {
    error.textContent = errorText(err);
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
});

els.toggleLogin.addEventListener("click", () => {
  const open = els.loginForm.hidden;
  els.loginForm.hidden = !open;
  els.toggleLogin.setAttribute("aria-expanded", String(open));
  if (open) byId("login-username").focus();
});

els.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  els.loginError.hidden = true;
  const username = byId("login-username").value.trim();
  const password = byId("login-password").value;
  try {
    const auth = await api.post("/api/auth/login", { username, password }, { auth: false });
    session.clear();
    session.signIn(auth, { username, resume_token: null, chat_id: null });
    // A registered customer picks up their running chat, else starts one.
    const chats = await api.get("/api/chats");
    const running = (Array.isArray(chats) ? chats : [])
      .filter((c) => c.status !== "closed")
      .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    if (running.length) await openChat(running[0].id, running[0]);
    else await createChat();
  } catch (err) {
    els.loginError.textContent =
      err instanceof ApiError && err.status === 401 ? t("login.failed") : errorText(err);
    els.loginError.hidden = false;
  }
});

byId("start-signed-in").addEventListener("click", () => createChat().catch((err) => setNotice(errorText(err))));

byId("sign-out").addEventListener("click", async () => {
  try {
    await api.post("/api/auth/logout", {}, { auth: false, token: session.token });
  } catch {
    // Signing out locally is what matters.
  }
  startOver();
});

els.escalate.addEventListener("click", async () => {
  if (!chat) return;
  els.escalate.disabled = true;
  try {
    chat = await api.post(`/api/chats/${encodeURIComponent(chat.id)}/escalate`, {});
    renderChat();
  } catch (err) {
    setNotice(errorText(err));
  } finally {
    els.escalate.disabled = false;
  }
});

byId("new-chat").addEventListener("click", async () => {
  try {
    if (!session.token || session.isExpired()) {
      const ok = await reauth.request();
      if (!ok) return;
    }
    await createChat();
  } catch (err) {
    setNotice(errorText(err));
  }
});

// ---- start ----------------------------------------------------------------------

session.onToken(() => {
  session.startRefresh(api);
  if (socket && socket.state !== "idle" && socket.state !== "stopped") socket.resume();
});

onLangChange(() => {
  renderChat();
  transcript.refresh();
  typing.refresh();
  if (!els.startView.hidden) showStart();
  showConnection(els.conn, els.conn.dataset.state);
});

async function acceptInvite(token) {
  history.replaceState(null, "", location.pathname);
  try {
    const result = await api.post(`/api/invitations/${encodeURIComponent(token)}/accept`, {}, { auth: false });
    session.clear();
    session.signIn(result, { resume_token: result.resume_token || null, chat_id: result.chat.id });
    await openChat(result.chat.id, result.chat);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 410) setNotice(t("invite.expired"));
    else if (err instanceof ApiError && (err.status === 404 || err.status === 400 || err.status === 422)) {
      setNotice(t("invite.invalid"));
    } else setNotice(errorText(err));
    return false;
  }
}

async function main() {
  applyTranslations(document);
  bindLanguageSelect(byId("lang-select"));
  const invite = new URLSearchParams(location.search).get("invite");
  if (invite && (await acceptInvite(invite))) return;
  const canReauth = Boolean(session.data.resume_token || session.data.username);
  const chatId = session.data.chat_id;
  if (chatId && (session.token || canReauth)) {
    if (session.isExpired()) {
      const ok = await reauth.request();
      if (!ok) return;
    } else {
      session.startRefresh(api);
    }
    await openChat(chatId);
    return;
  }
  if (session.token && !session.isExpired()) session.startRefresh(api);
  showStart();
}

main();
