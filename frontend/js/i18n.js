// Every visible string of both pages, in German and English.
// Elements carry data-i18n (textContent), data-i18n-placeholder, data-i18n-aria-label
// or data-i18n-title; applyTranslations() fills them in for the current language.

const STRINGS = {
  en: {
    "app.title": "Customer support",
    "skip.main": "Skip to content",
    "console.title": "Support console",
    "lang.label": "Language",
    "conn.connecting": "Connecting…",
    "conn.online": "Connected",
    "conn.reconnecting": "Connection lost. Reconnecting…",
    "conn.auth": "Please sign in again to continue.",
    "conn.refused": "The server refused the connection. Retrying…",

    "start.heading": "How can we help?",
    "start.intro": "Start a chat with us. We usually answer within a few minutes.",
    "start.name": "Your name",
    "start.email": "E-mail (optional)",
    "start.submit": "Start chat",
    "start.haveAccount": "I have an account",
    "start.signedInAs": "Signed in as {name}.",
    "start.signOut": "Sign out",
    "start.newChat": "Start a new chat",
    "login.heading": "Sign in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.failed": "Username or password is wrong.",
    "error.generic": "Something went wrong: {detail}",
    "error.network": "The server cannot be reached. Please try again.",
    "error.rateLimited": "Too many attempts. Please wait a moment and try again.",
    "error.nameRequired": "Please enter your name.",
    "invite.expired": "This invitation link has expired or was already used. You can start a new chat below.",
    "invite.invalid": "This invitation link is not valid. You can start a new chat below.",

    "status.bot": "Chatting with our assistant",
    "status.open": "Waiting for supporter",
    "status.assigned": "Chat active",
    "status.assignedWith": "Chat active with {name}",
    "status.closed": "Chat was ended by the supporter",
    "status.loading": "Loading chat…",
    "chat.escalate": "Talk to a person",
    "chat.transcript": "Messages",
    "chat.message": "Message",
    "chat.placeholder": "Write a message…",
    "chat.keys": "Enter sends, Shift+Enter starts a new line.",
    "chat.send": "Send",
    "chat.typing": "{name} is typing…",
    "chat.sending": "sending…",
    "chat.failed": "not sent: {reason}",
    "chat.failedClosed": "the chat has ended",
    "chat.failedTooLong": "too long",
    "chat.failedOther": "the server refused it",
    "chat.you": "You",
    "chat.sources": "Sources",
    "chat.closedNotice": "This chat has ended. Thank you for contacting us!",
    "chat.tooLong": "The message is too long (at most {max} characters).",
    "chat.systemSender": "System",
    "chat.botSender": "Assistant",

    "reauth.heading": "Your session has ended",
    "reauth.guestText": "For your security the session was ended. Continue to pick up your chat where you left it.",
    "reauth.continue": "Continue",
    "reauth.loginText": "Please sign in again. Your chat continues where you left it.",
    "reauth.failed": "The session could not be restored. Please start a new chat.",
    "reauth.startOver": "Start over",

    "console.login": "Supporter sign in",
    "console.logout": "Sign out",
    "console.signedIn": "Signed in as {name}",
    "console.queue": "Waiting",
    "console.mine": "My chats",
    "console.active": "All active chats",
    "console.none": "None",
    "console.select": "Select a chat on the left to see it here.",
    "console.take": "Take over",
    "console.end": "End chat",
    "console.endConfirm": "End this chat? The customer can no longer write in it.",
    "console.endYes": "End chat",
    "console.cancel": "Cancel",
    "console.alreadyTaken": "This chat was already taken by someone else.",
    "console.notYours": "Take the chat over to write in it.",
    "console.suggestions": "Suggested replies",
    "console.confidence": "{pct}% confidence",
    "console.newInvite": "New chat with invitation",
    "console.inviteName": "Customer name",
    "console.inviteCreate": "Create",
    "console.inviteLink": "Send this link to the customer:",
    "console.chats": "Chats",
    "console.pane": "Selected chat",
    "console.notSupporter": "This account is not a supporter account.",
    "cstatus.bot": "With the assistant",
    "cstatus.open": "Waiting for a supporter",
    "cstatus.assignedMe": "Assigned to you",
    "cstatus.assigned": "Assigned to {name}",
    "cstatus.closed": "Ended",
    "state.bot": "Bot",
    "state.open": "Waiting",
    "state.assigned": "Active",
    "state.closed": "Ended",
    "console.newChatWaiting": "New chat waiting: {name}",
  },
  de: {
    "app.title": "Kundensupport",
    "skip.main": "Zum Inhalt springen",
    "console.title": "Support-Konsole",
    "lang.label": "Sprache",
    "conn.connecting": "Verbinde…",
    "conn.online": "Verbunden",
    "conn.reconnecting": "Verbindung unterbrochen. Verbinde erneut…",
    "conn.auth": "Bitte melden Sie sich erneut an, um fortzufahren.",
    "conn.refused": "Der Server hat die Verbindung abgelehnt. Neuer Versuch…",

    "start.heading": "Wie können wir helfen?",
    "start.intro": "Starten Sie einen Chat mit uns. Wir antworten meist innerhalb weniger Minuten.",
    "start.name": "Ihr Name",
    "start.email": "E-Mail (optional)",
    "start.submit": "Chat starten",
    "start.haveAccount": "Ich habe ein Konto",
    "start.signedInAs": "Angemeldet als {name}.",
    "start.signOut": "Abmelden",
    "start.newChat": "Neuen Chat starten",
    "login.heading": "Anmelden",
    "login.username": "Benutzername",
    "login.password": "Passwort",
    "login.submit": "Anmelden",
    "login.failed": "Benutzername oder Passwort ist falsch.",
    "error.generic": "Etwas ist schiefgegangen: {detail}",
    "error.network": "Der Server ist nicht erreichbar. Bitte versuchen Sie es erneut.",
    "error.rateLimited": "Zu viele Versuche. Bitte warten Sie einen Moment.",
    "error.nameRequired": "Bitte geben Sie Ihren Namen ein.",
    "invite.expired": "Dieser Einladungslink ist abgelaufen oder wurde schon benutzt. Sie können unten einen neuen Chat starten.",
    "invite.invalid": "Dieser Einladungslink ist ungültig. Sie können unten einen neuen Chat starten.",

    "status.bot": "Sie chatten mit unserem Assistenten",
    "status.open": "Warten auf einen Mitarbeiter",
    "status.assigned": "Chat aktiv",
    "status.assignedWith": "Chat aktiv mit {name}",
    "status.closed": "Der Chat wurde vom Mitarbeiter beendet",
    "status.loading": "Chat wird geladen…",
    "chat.escalate": "Mit einem Menschen sprechen",
    "chat.transcript": "Nachrichten",
    "chat.message": "Nachricht",
    "chat.placeholder": "Nachricht schreiben…",
    "chat.keys": "Enter sendet, Umschalt+Enter beginnt eine neue Zeile.",
    "chat.send": "Senden",
    "chat.typing": "{name} schreibt…",
    "chat.sending": "wird gesendet…",
    "chat.failed": "nicht gesendet: {reason}",
    "chat.failedClosed": "der Chat ist beendet",
    "chat.failedTooLong": "zu lang",
    "chat.failedOther": "vom Server abgelehnt",
    "chat.you": "Sie",
    "chat.sources": "Quellen",
    "chat.closedNotice": "Dieser Chat ist beendet. Danke für Ihre Nachricht!",
    "chat.tooLong": "Die Nachricht ist zu lang (höchstens {max} Zeichen).",
    "chat.systemSender": "System",
    "chat.botSender": "Assistent",

    "reauth.heading": "Ihre Sitzung wurde beendet",
    "reauth.guestText": "Zu Ihrer Sicherheit wurde die Sitzung beendet. Fahren Sie fort, um Ihren Chat dort aufzunehmen, wo Sie waren.",
    "reauth.continue": "Fortfahren",
    "reauth.loginText": "Bitte melden Sie sich erneut an. Ihr Chat geht dort weiter, wo Sie waren.",
    "reauth.failed": "Die Sitzung konnte nicht wiederhergestellt werden. Bitte starten Sie einen neuen Chat.",
    "reauth.startOver": "Neu beginnen",

    "console.login": "Anmeldung für Mitarbeiter",
    "console.logout": "Abmelden",
    "console.signedIn": "Angemeldet als {name}",
    "console.queue": "Wartend",
    "console.mine": "Meine Chats",
    "console.active": "Alle aktiven Chats",
    "console.none": "Keine",
    "console.select": "Wählen Sie links einen Chat aus, um ihn hier zu sehen.",
    "console.take": "Übernehmen",
    "console.end": "Chat beenden",
    "console.endConfirm": "Diesen Chat beenden? Der Kunde kann dann nicht mehr schreiben.",
    "console.endYes": "Chat beenden",
    "console.cancel": "Abbrechen",
    "console.alreadyTaken": "Dieser Chat wurde bereits von jemand anderem übernommen.",
    "console.notYours": "Übernehmen Sie den Chat, um darin zu schreiben.",
    "console.suggestions": "Antwortvorschläge",
    "console.confidence": "{pct} % Sicherheit",
    "console.newInvite": "Neuer Chat mit Einladung",
    "console.inviteName": "Name des Kunden",
    "console.inviteCreate": "Erstellen",
    "console.inviteLink": "Senden Sie diesen Link an den Kunden:",
    "console.chats": "Chats",
    "console.pane": "Ausgewählter Chat",
    "console.notSupporter": "Dieses Konto ist kein Mitarbeiterkonto.",
    "cstatus.bot": "Beim Assistenten",
    "cstatus.open": "Wartet auf einen Mitarbeiter",
    "cstatus.assignedMe": "Ihnen zugewiesen",
    "cstatus.assigned": "Zugewiesen an {name}",
    "cstatus.closed": "Beendet",
    "state.bot": "Bot",
    "state.open": "Wartend",
    "state.assigned": "Aktiv",
    "state.closed": "Beendet",
    "console.newChatWaiting": "Neuer wartender Chat: {name}",
  },
};

export const LANGUAGES = [
  { code: "de", name: "Deutsch" },
  { code: "en", name: "English" },
];

const STORAGE_KEY = "sc.lang";
const listeners = new Set();
let current = detect();

function detect() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null;
  }
  if (stored && STRINGS[stored]) return stored;
  const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
  return nav.toLowerCase().startsWith("de") ? "de" : "en";
}

/** The current language code ("de" or "en"). */
export function lang() {
  return current;
}

/** Translate a key, replacing {name} placeholders with params. */
export function t(key, params = {}) {
  const table = STRINGS[current] || STRINGS.en;
  const template = table[key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Switch the language, remember it, re-translate the document and tell listeners. */
export function setLang(code) {
  if (!STRINGS[code] || code === current) return;
  current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  applyTranslations(document);
  for (const fn of listeners) fn(code);
}

/** Call fn(code) whenever the language changes. */
export function onLangChange(fn) {
  listeners.add(fn);
}

/** Fill every data-i18n* element below root with the current language's text. */
export function applyTranslations(root) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  const titleKey = document.body && document.body.dataset.titleKey;
  if (titleKey) document.title = t(titleKey);
}

/** Wire a <select> to the language: fill its options and switch on change. */
export function bindLanguageSelect(select) {
  select.replaceChildren();
  for (const { code, name } of LANGUAGES) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = name;
    option.lang = code;
    select.append(option);
  }
  select.value = current;
  select.addEventListener("change", () => setLang(select.value));
  onLangChange((code) => {
    select.value = code;
  });
}
