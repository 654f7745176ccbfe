// The message input: Enter sends, Shift+Enter adds a line, typing is reported.

import { t } from "./i18n.js";

export const MAX_MESSAGE_CHARS = 4000;

/**
 * Wire a <form> with a <textarea>. onSend(text) returns true when the text was taken
 * (the input is then cleared); onTyping() is called on every keystroke that changes text.
 */
export function bindComposer({ form, input, error, onSend, onTyping }) {
  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || input.disabled) return;
    if ([...text].length > MAX_MESSAGE_CHARS) {
      showError(t("chat.tooLong", { max: MAX_MESSAGE_CHARS }));
      return;
    }
    showError("");
    if (onSend(text)) {
      input.value = "";
      input.focus();
    }
  });

  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    form.requestSubmit();
  });

  input.addEventListener("input", () => {
    if (input.value.trim()) onTyping();
  });

  return {
    setEnabled(enabled) {
      input.disabled = !enabled;
      for (const button of form.querySelectorAll("button")) button.disabled = !enabled;
    },
    showError,
  };
}
