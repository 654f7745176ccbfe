"""German and English, phone-sized screens, and the keyboard alone."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, ViewportSize, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e

PHONE = ViewportSize(width=375, height=740)


async def no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"page is {widths[0]}px wide on a {widths[1]}px screen"


async def tab_to(page: Page, test_id: str, limit: int = 25) -> None:
    """Press Tab until the element with this test id has the focus."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(id) => document.activeElement?.dataset?.testid === id", test_id):
            return
    raise AssertionError(f"{test_id} cannot be reached with Tab")


async def test_the_browser_language_picks_german_and_the_switch_is_remembered(
    ui: ChatUI, base_url: str
) -> None:
    german = await ui.open_page(f"{base_url}/", locale="de-DE")
    await expect(german.locator("html")).to_have_attribute("lang", "de")
    await expect(german.get_by_test_id("start-chat")).to_have_text("Chat starten")

    page = await ui.start_customer("Jonas")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_test_id("chat-status")).to_have_text("Waiting for supporter")
    await page.get_by_test_id("lang-select").select_option("de")
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    await expect(page.get_by_test_id("chat-status")).to_have_text("Warten auf einen Mitarbeiter")
    await expect(page.get_by_test_id("send")).to_have_text("Senden")
    await expect(page.get_by_test_id("message-input")).to_have_attribute(
        "placeholder", "Nachricht schreiben…"
    )

    await page.reload()
    await expect(page.get_by_test_id("chat-status")).to_have_text("Warten auf einen Mitarbeiter")
    await expect(page.get_by_test_id("lang-select")).to_have_value("de")

    console = await ui.open_page(f"{base_url}/console", locale="de-AT")
    await expect(console.get_by_role("heading", name="Anmeldung für Mitarbeiter")).to_be_visible()
    await console.get_by_test_id("lang-select").select_option("en")
    await expect(console.get_by_role("heading", name="Supporter sign in")).to_be_visible()


async def test_both_pages_work_on_a_phone(ui: ChatUI, supporter_account: tuple[str, str]) -> None:
    customer = await ui.start_customer("Lea Klein", viewport=PHONE)
    chat_id = await ui.chat_id(customer)
    await expect(customer.get_by_test_id("message-input")).to_be_visible()
    await expect(customer.get_by_test_id("send")).to_be_visible()
    long_word = "x" * 300
    await ui.send(customer, f"A very long word: {long_word}")
    await ui.wait_for_message(customer, f"A very long word: {long_word}")
    await no_horizontal_scroll(customer)
    box = await customer.get_by_test_id("message-input").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    console = await ui.open_console(*supporter_account, viewport=PHONE)
    await no_horizontal_scroll(console)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)
    queue = await console.get_by_test_id("queue-list").bounding_box()
    pane = await console.locator("#chat-pane").bounding_box()
    assert queue is not None and pane is not None
    assert queue["y"] + queue["height"] <= pane["y"], "the queue sits above the chat on a phone"
    await console.get_by_test_id("message-input").scroll_into_view_if_needed()
    await expect(console.get_by_test_id("message-input")).to_be_in_viewport()
    await ui.send(console, "Hello Lea, how can I help?")
    await ui.wait_for_message(customer, "Hello Lea, how can I help?")
    await ui.wait_for_message(console, f"A very long word: {long_word}")
    await no_horizontal_scroll(console)
    await no_horizontal_scroll(customer)


async def test_the_keyboard_alone_starts_a_chat_and_sends(
    ui: ChatUI, base_url: str, supporter_account: tuple[str, str]
) -> None:
    page = await ui.open_page(f"{base_url}/")
    await tab_to(page, "guest-name")
    await page.keyboard.type("Karl Tastatur")
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("message-input")).to_be_focused()
    if await page.get_by_test_id("chat-status").get_attribute("data-status") == "bot":
        await page.get_by_test_id("escalate").focus()
        await page.keyboard.press("Enter")
        await page.get_by_test_id("message-input").focus()

    await page.keyboard.type("first line")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("second line")
    await expect(page.get_by_test_id("message-input")).to_have_value("first line\nsecond line")
    await page.keyboard.press("Enter")
    await ui.wait_for_message(page, "first line\nsecond line")
    await expect(page.get_by_test_id("message-input")).to_have_value("")

    await page.keyboard.type("sent with the button")
    await tab_to(page, "send")
    await page.keyboard.press("Enter")
    await ui.wait_for_message(page, "sent with the button")

    # The supporter takes the chat with the keyboard, too.
    chat_id = await ui.chat_id(page)
    console = await ui.open_console(*supporter_account)
    item = console.locator(f"[data-testid=queue-list] [data-chat-id='{chat_id}']")
    await item.focus()
    await console.keyboard.press("Enter")
    await ui.wait_for_message(console, "sent with the button")
    await tab_to(console, "take-over")
    await console.keyboard.press("Enter")
    await expect(console.get_by_test_id("message-input")).to_be_focused()
    await console.keyboard.type("Hello Karl")
    await console.keyboard.press("Enter")
    await ui.wait_for_message(page, "Hello Karl")
