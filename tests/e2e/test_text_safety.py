"""What people type is shown as text, never run as HTML or script."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e

IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
LINK = '<a href="javascript:window.__pwned=1">click me</a>'


async def assert_not_pwned(page: Page) -> None:
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    transcript = page.get_by_test_id("transcript")
    await expect(transcript.locator("img, script, a[href^='javascript']")).to_have_count(0)


async def test_markup_in_names_and_messages_is_shown_literally(
    ui: ChatUI, supporter_account: tuple[str, str]
) -> None:
    console = await ui.open_console(*supporter_account)
    customer = await ui.start_customer(IMG)
    chat_id = await ui.chat_id(customer)

    item = console.locator(f"[data-testid=queue-list] [data-chat-id='{chat_id}']")
    await expect(item.get_by_test_id("chat-item-name")).to_have_text(IMG)
    await ui.send(customer, SCRIPT)
    await ui.send(customer, IMG)
    await ui.send(customer, LINK)
    await item.click()
    await expect(console.get_by_test_id("pane-customer")).to_have_text(IMG)
    await ui.take_over(console)
    await ui.send(console, f"Re: {SCRIPT}")

    for page in (customer, console):
        for text in (SCRIPT, IMG, LINK, f"Re: {SCRIPT}"):
            await ui.wait_for_message(page, text)
    await expect(console.locator("[data-testid=message] .msg__sender").first).to_have_text(IMG)

    # Give a broken image a moment to fire its onerror, had it been created.
    await customer.wait_for_timeout(300)
    await assert_not_pwned(customer)
    await assert_not_pwned(console)
    assert await console.locator("[data-testid=chat-item] img").count() == 0
