"""An XSS corpus against both pages: as message texts, as guest display names, as names of
invited customers (`POST /api/chats {customer_display_name}` through the console's form) and as
a supporter's display name. Every payload must show as literal text; no dialog may open,
`window.__pwned` stays undefined, no element or inline handler is injected, and the browser
reports no Content-Security-Policy violation (the `open_page` fixture fails the test on any
CSP console message; a listener installed before the page's own scripts records
`securitypolicyviolation` events as well).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Dialog, Page, expect

from .conftest import ChatUI, wait_until

pytestmark = pytest.mark.e2e

PWN = "window.__pwned=1"
CORPUS: list[tuple[str, str]] = [
    ("img-onerror", f'<img src=x onerror="{PWN}">'),
    ("svg-onload", f"<svg onload={PWN}>"),
    ("svg-script", f"<svg><script>{PWN}</script></svg>"),
    ("javascript-url", f"javascript:{PWN}"),
    ("attribute-break", f'"><script>{PWN}</script>'),
    ("single-quote-break", "'><img src=x onerror=alert(1)>"),
    ("textarea-break", f"</textarea><script>{PWN}</script>"),
    ("title-break", "</title><script>alert(document.domain)</script>"),
    ("template-literal", f"${{{PWN}}}`;{PWN};`"),
    ("template-injection", "{{constructor.constructor('alert(1)')()}}"),
    ("css-expression", '<div style="width:expression(alert(1))">css</div>'),
    ("style-url", '<style>*{background:url("javascript:alert(1)")}</style>'),
    ("iframe-srcdoc", f'<iframe srcdoc="<script>parent.{PWN}</script>"></iframe>'),
    ("anchor-javascript", f'<a href="javascript:{PWN}">click me</a>'),
    ("markdown-link", "[click me](javascript:alert(1))"),
    ("markdown-image", '![x](x" onerror="alert(1))'),
    ("unicode-escaped", "\\u003cimg src=x onerror=alert(1)\\u003e"),
    ("html-entities", "&#60;img src=x onerror=alert(1)&#62; &lt;script&gt;alert(1)&lt;/script&gt;"),
    ("url-encoded", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
    ("fullwidth-brackets", "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e"),
    ("mutation-xss", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"),
    ("details-ontoggle", "<details open ontoggle=alert(1)>x</details>"),
    ("nested-script", "<scr<script>ipt>alert(1)</scr</script>ipt>"),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'),
    ("object-data", '<object data="javascript:alert(1)"></object>'),
    ("i18n-placeholder", "{name} $& $` $' {0}"),
]
PAYLOADS = [payload for _, payload in CORPUS]
assert len(PAYLOADS) >= 15 and all(0 < len(p) <= 100 and p == p.strip() for p in PAYLOADS)

# Installed before the pages' own scripts (and outside their CSP).
WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`);
});
"""

# Elements and attributes that the pages never create themselves.
INJECTED = """() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (/^on/i.test(attr.name)) found.push(`${el.tagName} ${attr.name}`);
      if (/^\\s*javascript:/i.test(attr.value)) found.push(`${el.tagName} ${attr.name}=${attr.value}`);
      if (attr.name === 'style' && /expression|url\\(/i.test(attr.value)) found.push(`${el.tagName} style`);
      if (attr.name === 'srcdoc') found.push(`${el.tagName} srcdoc`);
    }
    const tag = el.tagName.toLowerCase();
    const own = el.id !== '';  // the pages' own structural elements have ids; the corpus's do not
    const risky = ['iframe', 'object', 'embed', 'img', 'svg', 'math', 'details', 'base'];
    if (risky.includes(tag) && !own) found.push(tag);
    if (tag === 'meta' && (el.httpEquiv || '').toLowerCase() === 'refresh') found.push('meta refresh');
    if (tag === 'script' && !el.src) found.push('inline script');
    if (tag === 'style') found.push('style element');
  }
  return found;
}"""


class Guard:
    """Dialogs of every page opened through it, and the page-side checks."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.pages: list[Page] = []

    async def setup(self, page: Page) -> None:
        async def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        await page.add_init_script(script=WATCH)
        self.pages.append(page)

    async def check(self) -> None:
        for page in self.pages:
            if page.is_closed():
                continue
            # Give a broken image or a toggled <details> a moment to fire, had one been created.
            await page.wait_for_timeout(200)
            assert await page.evaluate("typeof window.__pwned") == "undefined", page.url
            assert await page.evaluate("window.__cspViolations") == [], page.url
            assert await page.evaluate(INJECTED) == [], page.url
        assert self.dialogs == []


@pytest.fixture
def guard() -> Guard:
    return Guard()


async def texts(page: Page, selector: str) -> list[str]:
    found = await page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map((el) => el.textContent)", selector
    )
    return list(found)


async def wait_for_text(page: Page, selector: str, text: str, timeout: float = 15.0) -> None:
    """Wait until an element matching the selector has exactly this text."""
    await wait_until(
        page,
        "([sel, text]) => [...document.querySelectorAll(sel)].some((el) => el.textContent === text)",
        [selector, text],
        timeout,
        f"{text!r} not shown as text in {selector}",
    )


async def test_payloads_as_message_texts_in_both_pages(
    ui: ChatUI, make_supporter: Callable[..., Any], guard: Guard
) -> None:
    # The supporter's own display name is a payload too: the customer page shows it in the
    # status line, the sender labels and the typing indicator.
    supporter_name = CORPUS[0][1]
    console = await ui.open_console(*make_supporter(display_name=supporter_name), setup=guard.setup)
    customer = await ui.start_customer("Xss Kundin", setup=guard.setup)
    chat_id = await ui.chat_id(customer)
    await console.locator(f"[data-testid=queue-list] [data-chat-id='{chat_id}']").click()
    await ui.take_over(console)
    await wait_for_text(customer, "[data-testid=chat-status]", f"Chat active with {supporter_name}")

    for payload in PAYLOADS:
        await ui.send(customer, payload)
        await ui.wait_for_message(customer, payload)
    for payload in PAYLOADS:
        await ui.send(console, f"Re: {payload}")
    await console.get_by_test_id("message-input").press_sequentially("typing…", delay=20)
    await wait_for_text(customer, "[data-testid=typing]", f"{supporter_name} is typing…")

    for page in (customer, console):
        for payload in PAYLOADS:
            await ui.wait_for_message(page, payload)
            await ui.wait_for_message(page, f"Re: {payload}")
    assert supporter_name in await texts(customer, "[data-testid=message] .msg__sender")
    await guard.check()
    # And once more after a reload, when the transcript comes from the server's history.
    for page in (customer, console):
        await page.reload()
    await ui.wait_for_message(customer, PAYLOADS[-1])
    await console.locator(
        f"[data-testid=active-list] [data-chat-id='{chat_id}'], "
        f"[data-testid=mine-list] [data-chat-id='{chat_id}']"
    ).first.click()
    await ui.wait_for_message(console, f"Re: {PAYLOADS[-1]}")
    shown = await texts(customer, "[data-testid=message] [data-testid=message-text]")
    assert set(PAYLOADS) <= set(shown)
    await guard.check()


async def test_payloads_as_guest_display_names_in_both_pages(
    ui: ChatUI, supporter_account: tuple[str, str], guard: Guard
) -> None:
    console = await ui.open_console(*supporter_account, setup=guard.setup)
    chats: dict[str, str] = {}
    for payload in PAYLOADS:
        customer = await ui.start_customer(payload, setup=guard.setup)
        chats[payload] = await ui.chat_id(customer)
        await ui.send(customer, f"hello from {uuid.uuid4().hex[:6]}")
        # The customer page keeps the name only as data (the form, its session).
        await customer.get_by_test_id("message-input").press_sequentially("typing", delay=10)
        await guard.check()
        await customer.context.close()
    for payload, chat_id in chats.items():
        item = console.locator(f"[data-testid=queue-list] [data-chat-id='{chat_id}']")
        await wait_for_text(console, f"[data-chat-id='{chat_id}'] [data-testid=chat-item-name]", payload)
        await item.click()
        await wait_for_text(console, "[data-testid=pane-customer]", payload)
        await wait_for_text(console, "[data-testid=message] .msg__sender", payload)
    await guard.check()


async def test_payloads_as_invited_customer_names_in_both_pages(
    ui: ChatUI, supporter_account: tuple[str, str], guard: Guard, base_url: str
) -> None:
    console = await ui.open_console(*supporter_account, setup=guard.setup)
    links: dict[str, str] = {}
    url = console.get_by_test_id("invite-url")
    previous = ""
    await console.locator("#invite-box > summary").click()  # the form is folded away at first
    for payload in PAYLOADS:
        await console.get_by_test_id("invite-name").fill(payload)
        await console.get_by_test_id("invite-create").click()
        await expect(url).not_to_have_value(previous)  # the new link, not the last one
        previous = links[payload] = await url.input_value()
        await wait_for_text(console, "[data-testid=mine-list] [data-testid=chat-item-name]", payload)
    await guard.check()
    assert all(link.startswith(f"{base_url}/?invite=") for link in links.values())
    chats: dict[str, str] = {}
    for payload, link in links.items():
        customer = await ui.open_page(link, setup=guard.setup)
        await customer.get_by_test_id("message-input").wait_for()
        chats[payload] = await ui.chat_id(customer)
        await ui.send(customer, f"invited as {payload}")
        await ui.wait_for_message(customer, f"invited as {payload}")
        await guard.check()
        await customer.context.close()
    for payload, chat_id in chats.items():
        # By id: other tests' customers may carry the same names.
        await console.locator(f"[data-testid=mine-list] [data-chat-id='{chat_id}']").click()
        await wait_for_text(console, "[data-testid=pane-customer]", payload)
        await ui.wait_for_message(console, f"invited as {payload}")
        await wait_for_text(console, "[data-testid=message] .msg__sender", payload)
    await guard.check()


async def test_the_api_returns_payloads_as_json_data_only(base_url: str) -> None:
    """What the pages render comes from JSON that carries the payloads verbatim, never as HTML."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        guest = (await http.post("/api/auth/guest", json={"display_name": PAYLOADS[0]})).json()
        auth = {"Authorization": f"Bearer {guest['token']}"}
        chat = (await http.post("/api/chats", json={}, headers=auth)).json()
        for payload in PAYLOADS:
            response = await http.post(
                f"/api/chats/{chat['id']}/messages",
                json={"text": payload, "client_msg_id": uuid.uuid4().hex},
                headers=auth,
            )
            assert response.status_code == 201
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.json()["text"] == payload
        for path in ("/", "/console"):
            page = await http.get(path)
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
            # The pages carry their own policy too (for copies served elsewhere) ...
            assert '<meta http-equiv="Content-Security-Policy"' in page.text
            # ... and no inline script or handler: every script is a module from /static.
            assert "<script>" not in page.text and '<script type="module">' not in page.text
            assert re.search(r"\son[a-z]+\s*=", page.text) is None
