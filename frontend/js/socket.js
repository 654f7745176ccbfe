// The resilient chat socket shared by both pages.
//
// Invariants: every message the user wrote stays in the outbox (memory and localStorage)
// until the server acknowledged it, and is resent with the same client_msg_id after any
// reconnect or reload (the server stores it once). Every subscribed chat is resumed with
// `after` = the highest seq up to which everything was delivered, so nothing is missed,
// and anything at or below it is dropped, so nothing is shown twice.

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000;
const READY_TIMEOUT_MS = 10000;
const ACK_TIMEOUT_MS = 15000;
const GAP_WAIT_MS = 2000;
const TYPING_EVERY_MS = 2000;
const HEARTBEAT_MS = 25000;
const HEARTBEAT_GRACE_MS = 10000;
// Stay well below the server's frame limits (burst 100, 20/s) even when flushing a backlog.
const BUCKET_SIZE = 60;
const BUCKET_RATE_PER_S = 15;
const RETRYABLE_ERRORS = new Set(["rate_limited", "too_many_requests", "busy", "unavailable"]);

function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class ChatSocket {
  /**
   * getToken(): current token or null; getUserId(): id of the signed-in user;
   * outboxKey: localStorage key of the outbox; onEvent(frame): server frames, after
   * deduplication, plus {type: "ready", resumed} and {type: "failed", entry, code, detail};
   * onStatus(state): "connecting" | "online" | "reconnecting" | "refused" | "auth";
   * onAuthFailed(): the token was refused (close 4401): sign in again, then call resume().
   */
  constructor({ getToken, getUserId, outboxKey, onEvent, onStatus, onAuthFailed }) {
    this.getToken = getToken;
    this.getUserId = getUserId;
    this.outboxKey = outboxKey;
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.onAuthFailed = onAuthFailed || (() => {});
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.everReady = false;
    this.reconnectTimer = null;
    this.readyTimer = null;
    this.blockedUntil = 0;
    this.chats = new Map(); // chat_id -> {after, seen: Set<seq>, gapTimer, wanted}
    this.queue = false;
    this.lastTyping = new Map();
    this.outbox = this.#loadOutbox();
    this.tokens = BUCKET_SIZE;
    this.tokensAt = Date.now();
    this.backlog = []; // frames waiting for the rate bucket
    this.pumpTimer = null;
    this.lastFrameAt = 0;
    this.pingAt = 0;
    this.watchdog = null;
    window.addEventListener("online", () => {
      if (this.state === "waiting") this.#connectSoon(0);
    });
    document.addEventListener("visibilitychange", () => {
      // Back from sleep or a background tab: check at once that the connection still lives.
      if (document.visibilityState !== "visible") return;
      if (this.state === "waiting") this.#connectSoon(0);
      else if (this.state === "ready" && Date.now() - this.lastFrameAt > HEARTBEAT_GRACE_MS) {
        this.pingAt = Date.now();
        this.#send({ type: "ping" });
      }
    });
  }

  // ---- lifecycle ---------------------------------------------------------------

  /** Connect (once); later drops reconnect by themselves. */
  start() {
    if (this.state === "idle" || this.state === "stopped") this.#connect();
  }

  /** Close for good (sign out). */
  stop() {
    this.state = "stopped";
    this.#clearTimers();
    clearInterval(this.watchdog);
    this.watchdog = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "bye");
    }
  }

  /** Reconnect now, e.g. with a new token, or after signing in again. */
  resume() {
    this.#clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "reconnect");
    }
    this.state = "idle";
    this.attempt = 0;
    this.#connect();
  }

  /** True when frames go out right away. */
  get online() {
    return this.state === "ready";
  }

  // ---- subscriptions -----------------------------------------------------------

  /** Receive a chat's messages after `after` (default: what was delivered already). */
  subscribe(chatId, after = null) {
    let chat = this.chats.get(chatId);
    if (!chat) {
      chat = { after: 0, seen: new Set(), gapTimer: null, wanted: true };
      this.chats.set(chatId, chat);
    }
    chat.wanted = true;
    if (after !== null && after > chat.after) chat.after = after;
    this.#send({ type: "subscribe", chat_id: chatId, after: chat.after });
  }

  /**
   * Stop live events of a chat. What was delivered is remembered: a later subscribe
   * continues after it.
   */
  unsubscribe(chatId) {
    const chat = this.chats.get(chatId);
    if (!chat || !chat.wanted) return;
    chat.wanted = false;
    this.#send({ type: "unsubscribe", chat_id: chatId });
  }

  /** Supporters: receive a `chat` event for every status change. */
  subscribeQueue() {
    this.queue = true;
    this.#send({ type: "subscribe_queue" });
  }

  /** The seq up to which every message of the chat was delivered. */
  lastSeq(chatId) {
    const chat = this.chats.get(chatId);
    return chat ? chat.after : 0;
  }

  // ---- sending -----------------------------------------------------------------

  /** Queue a message; it is sent now or after the next reconnect. Returns the outbox entry. */
  send(chatId, text, extra = {}) {
    const entry = {
      chat_id: chatId,
      client_msg_id: newClientMsgId(),
      text,
      user_id: this.getUserId(),
      created_at: new Date().toISOString(),
      ...extra,
    };
    this.outbox.push(entry);
    this.#saveOutbox();
    this.#sendEntry(entry);
    // The message ends this bout of typing: the next keystroke is reported at once.
    this.lastTyping.delete(chatId);
    return entry;
  }

  /** Messages of this user (and chat) not yet acknowledged, oldest first. */
  pending(chatId = null) {
    const me = this.getUserId();
    return this.outbox.filter((e) => e.user_id === me && (chatId === null || e.chat_id === chatId));
  }

  /** Tell the others in the chat that we are typing (at most once every ~2 s). */
  sendTyping(chatId) {
    const now = Date.now();
    if (now - (this.lastTyping.get(chatId) || 0) < TYPING_EVERY_MS) return;
    if (!this.online || this.tokens < 1) return;
    this.lastTyping.set(chatId, now);
    this.#send({ type: "typing", chat_id: chatId });
  }

  /** Test hook: drop the connection as a network failure would, offline for `offlineMs`. */
  dropForTest(offlineMs = 0) {
    this.blockedUntil = Date.now() + offlineMs;
    if (this.ws) this.ws.close(4000, "test drop");
  }

  // ---- internals ---------------------------------------------------------------

  #url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws`;
  }

  #connect() {
    if (!this.watchdog) this.watchdog = setInterval(() => this.#checkAlive(), 5000);
    const token = this.getToken();
    if (!token) {
      this.#authFailed();
      return;
    }
    const wait = this.blockedUntil - Date.now();
    if (wait > 0) {
      this.#connectSoon(wait);
      return;
    }
    this.state = "connecting";
    this.onStatus(this.everReady ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.#url());
    } catch {
      this.#scheduleReconnect(0);
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.state = "authenticating";
      ws.send(JSON.stringify({ type: "auth", token: this.getToken() || token }));
      this.readyTimer = setTimeout(() => {
        if (this.ws === ws && this.state === "authenticating") ws.close(4000, "no ready");
      }, READY_TIMEOUT_MS);
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") this.#handle(frame);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.#onClosed(event.code);
    });
    ws.addEventListener("error", () => {
      // A close event follows; reconnecting happens there.
    });
  }

  #onClosed(code) {
    clearTimeout(this.readyTimer);
    this.backlog = [];
    if (this.state === "stopped") return;
    if (code === 4401) {
      this.#authFailed();
      return;
    }
    let minDelay = 0;
    if (code === 4429) minDelay = 5000;
    if (code === 4403) {
      minDelay = 10000;
      this.onStatus("refused");
    } else {
      this.onStatus("reconnecting");
    }
    this.#scheduleReconnect(minDelay);
  }

  #authFailed() {
    this.state = "auth";
    this.#clearTimers();
    this.onStatus("auth");
    this.onAuthFailed();
  }

  #scheduleReconnect(minDelay) {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    // "Equal jitter": at least half the step, so a crowd of clients spreads out.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#connectSoon(Math.max(minDelay, delay, this.blockedUntil - Date.now()));
  }

  #connectSoon(delay) {
    clearTimeout(this.reconnectTimer);
    this.state = "waiting";
    this.reconnectTimer = setTimeout(() => {
      if (this.state === "waiting") this.#connect();
    }, delay);
  }

  #clearTimers() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.readyTimer);
    clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
    this.backlog = [];
  }

  #handle(frame) {
    this.lastFrameAt = Date.now();
    switch (frame.type) {
      case "pong":
        return;
      case "ready":
        this.#onReady(frame);
        return;
      case "message":
        this.#onMessage(frame);
        return;
      case "ack":
        this.#settle(frame.client_msg_id);
        this.onEvent(frame);
        return;
      case "error":
        this.#onError(frame);
        return;
      default:
        this.onEvent(frame);
    }
  }

  #onReady(frame) {
    clearTimeout(this.readyTimer);
    this.pingAt = 0;
    this.state = "ready";
    this.attempt = 0;
    this.tokens = BUCKET_SIZE;
    this.tokensAt = Date.now();
    const resumed = this.everReady;
    this.everReady = true;
    this.user = frame.user || null;
    this.onStatus("online");
    if (this.queue) this.#send({ type: "subscribe_queue" });
    for (const [chatId, chat] of this.chats) {
      if (chat.wanted) this.#send({ type: "subscribe", chat_id: chatId, after: chat.after });
    }
    for (const entry of this.pending()) this.#sendEntry(entry);
    this.onEvent({ type: "ready", user: frame.user, resumed });
  }

  #onMessage(frame) {
    const message = frame.message;
    if (!message || typeof message.seq !== "number") return;
    const me = this.getUserId();
    if (message.client_msg_id && message.sender && message.sender.id === me) {
      this.#settle(message.client_msg_id);
    }
    const chat = this.chats.get(message.chat_id);
    if (chat) {
      if (message.seq <= chat.after || chat.seen.has(message.seq)) return; // already shown
      chat.seen.add(message.seq);
      while (chat.seen.has(chat.after + 1)) {
        chat.after += 1;
        chat.seen.delete(chat.after);
      }
      this.#watchGap(message.chat_id, chat);
    }
    this.onEvent(frame);
  }

  #watchGap(chatId, chat) {
    clearTimeout(chat.gapTimer);
    chat.gapTimer = null;
    if (chat.seen.size === 0) return;
    // A later seq came before an earlier one: ask again from the last complete point.
    chat.gapTimer = setTimeout(() => {
      chat.gapTimer = null;
      if (chat.seen.size > 0 && chat.wanted) {
        this.#send({ type: "subscribe", chat_id: chatId, after: chat.after });
      }
    }, GAP_WAIT_MS);
  }

  #onError(frame) {
    const id = frame.client_msg_id;
    const entry = id ? this.outbox.find((e) => e.client_msg_id === id) : null;
    if (entry) {
      if (RETRYABLE_ERRORS.has(frame.code)) {
        entry.sent_at = null;
        setTimeout(() => this.#sendEntry(entry), 2000);
        return;
      }
      this.#settle(id);
      this.onEvent({ type: "failed", entry, code: frame.code, detail: frame.detail });
      return;
    }
    this.onEvent(frame);
  }

  #settle(clientMsgId) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((e) => e.client_msg_id !== clientMsgId);
    if (this.outbox.length !== before) this.#saveOutbox();
  }

  #sendEntry(entry) {
    if (!this.outbox.includes(entry)) return;
    const frame = {
      type: "message",
      chat_id: entry.chat_id,
      client_msg_id: entry.client_msg_id,
      text: entry.text,
    };
    if (entry.suggestion_id) frame.suggestion_id = entry.suggestion_id;
    if (this.#send(frame)) entry.sent_at = Date.now();
  }

  #checkAlive() {
    if (this.state !== "ready") return;
    const now = Date.now();
    // No ack or no answer to a ping for a long time on an "open" socket: the connection
    // is dead without knowing it (sleep, network switch). Start over.
    const unacked = this.outbox.some((e) => e.sent_at && now - e.sent_at > ACK_TIMEOUT_MS);
    const silent = this.pingAt > this.lastFrameAt && now - this.pingAt > HEARTBEAT_GRACE_MS;
    if (unacked || silent) {
      for (const e of this.outbox) e.sent_at = null;
      this.pingAt = 0;
      this.resume();
      return;
    }
    if (now - Math.max(this.lastFrameAt, this.pingAt) > HEARTBEAT_MS) {
      // Any answer counts (a server without "ping" answers with an error frame).
      this.pingAt = now;
      this.#send({ type: "ping" });
    }
  }

  /** Send a frame when connected; false when it has to wait for the next connection. */
  #send(frame) {
    if (this.state !== "ready" || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.#refill();
    if (this.tokens >= 1 && this.backlog.length === 0) {
      this.tokens -= 1;
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    this.backlog.push(frame);
    this.#pump();
    return true;
  }

  #refill() {
    const now = Date.now();
    this.tokens = Math.min(BUCKET_SIZE, this.tokens + ((now - this.tokensAt) / 1000) * BUCKET_RATE_PER_S);
    this.tokensAt = now;
  }

  #pump() {
    if (this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      if (this.state !== "ready" || !this.ws) return;
      this.#refill();
      while (this.backlog.length && this.tokens >= 1) {
        this.tokens -= 1;
        this.ws.send(JSON.stringify(this.backlog.shift()));
      }
      if (this.backlog.length) this.#pump();
    }, 1000 / BUCKET_RATE_PER_S);
  }

  #loadOutbox() {
    try {
      const list = JSON.parse(localStorage.getItem(this.outboxKey) || "[]");
      return Array.isArray(list) ? list.map((e) => ({ ...e, sent_at: null })) : [];
    } catch {
      return [];
    }
  }

  #saveOutbox() {
    try {
      localStorage.setItem(this.outboxKey, JSON.stringify(this.outbox));
    } catch {
      // Storage full or disabled: the outbox still lives in memory.
    }
  }
}
