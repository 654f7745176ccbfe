// The text-module picker: typing `::` or `/` + letters in the input lists matching modules;
// arrow keys move, Enter (or a click) inserts the module's text, Escape closes.

import { h, show } from "./dom.js";

const TRIGGER = /(?:^|\s)(::|\/)([\p{L}\p{N}_-]{0,40})$/u;

/**
 * Wire the picker to an input. search(q) resolves to [{shortcut, title, text}].
 * Its keydown listener runs in the capture phase, before the composer's Enter-to-send.
 */
export function bindModulePicker({ input, list, search }) {
  let items = [];
  let active = 0;
  let match = null;
  let request = 0;

  function close() {
    items = [];
    match = null;
    list.replaceChildren();
    show(list, false);
    input.removeAttribute("aria-activedescendant");
    input.setAttribute("aria-expanded", "false");
  }

  function render() {
    list.replaceChildren(
      ...items.map((m, i) =>
        h(
          "li",
          {
            id: `module-option-${i}`,
            role: "option",
            class: i === active ? "module-option module-option--active" : "module-option",
            "aria-selected": i === active ? "true" : "false",
            dataset: { testid: "module-option", shortcut: m.shortcut },
            onmousedown: (event) => {
              event.preventDefault();
              insert(i);
            },
          },
          h("strong", { text: `/${m.shortcut}` }),
          h("span", { text: ` ${m.title}` }),
        ),
      ),
    );
    show(list, items.length > 0);
    input.setAttribute("aria-expanded", items.length > 0 ? "true" : "false");
    if (items.length > 0) input.setAttribute("aria-activedescendant", `module-option-${active}`);
  }

  function insert(i) {
    const module = items[i];
    if (!module || !match) return;
    const start = match.index + match[0].length - match[1].length - match[2].length;
    input.value = input.value.slice(0, start) + module.text;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    close();
    input.focus();
  }

  async function lookup() {
    const found = TRIGGER.exec(input.value);
    if (!found || (found[1] === "/" && found[2].length === 0)) {
      close();
      return;
    }
    const mine = ++request;
    let result = [];
    try {
      result = await search(found[2]);
    } catch {
      result = [];
    }
    if (mine !== request) return;
    match = TRIGGER.exec(input.value);
    items = match ? result : [];
    active = 0;
    render();
  }

  input.addEventListener("input", lookup);
  // A pane re-render can take the focus away for a moment: the picker comes back with it.
  input.addEventListener("focus", () => {
    if (items.length === 0 && TRIGGER.test(input.value)) lookup();
  });

  input.addEventListener(
    "keydown",
    (event) => {
      if (items.length === 0) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        active = (active + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        render();
      } else if (event.key === "Enter" || event.key === "Tab") {
        insert(active);
      } else if (event.key === "Escape") {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopImmediatePropagation();
    },
    true,
  );

  input.addEventListener("blur", () =>
    setTimeout(() => {
      if (document.activeElement !== input) close();
    }, 150),
  );
  close();
  return { close };
}
