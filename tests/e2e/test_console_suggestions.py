"""Suggested replies and text modules in the console, in Chromium."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from backend.knowledge.embedder import SentenceTransformerEmbedder
from tests.knowledge_helpers import fixture_kb_database, wait_for_model

from .conftest import ChatUI

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def suggestions_server(
    new_database: Callable[[], str],
    start_server: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """A server with suggestions on, over the tiny fixture knowledge base."""
    url = fixture_kb_database(new_database, tmp_path_factory, SentenceTransformerEmbedder())
    server = wait_for_model(
        start_server(database_url=url, guest_rate_per_minute=100_000, suggestions_enabled=True)
    )
    yield server
    server.stop()  # its pool's connections go back before later tests start their servers


def _stored(server: Any, text: str) -> tuple[int | None, bool | None]:
    async def read() -> Any:
        async with server.ctx.pool.acquire() as conn:
            return await conn.fetchrow(
                "SELECT m.suggestion_id, m.suggestion_edited FROM messages m"
                " JOIN users u ON u.id = m.sender_id WHERE u.role <> 'user' ORDER BY m.id DESC LIMIT 1"
            )

    deadline = time.monotonic() + 10
    while True:
        row = server.run(read())
        if row is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row is not None, text
    return row["suggestion_id"], row["suggestion_edited"]


async def test_suggestions_fill_the_input_and_sending_records_them(
    suggestions_server: Any, open_page: Callable[..., Awaitable[Page]]
) -> None:
    server = suggestions_server
    ui = ChatUI(server.url, open_page)
    console = await ui.open_console(*server.make_staff(display_name="Sam Berger"))
    customer = await ui.start_customer("Erika Muster")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)

    await ui.send(customer, "How do I get a refund of my money?")
    refund = console.locator("[data-testid=suggestion]", has_text="More: https://help.example.com/refunds")
    await expect(refund).to_be_visible(timeout=30_000)
    suggestion_id = int(await refund.get_attribute("data-suggestion-id") or 0)
    text = (await refund.locator(".suggestion__text").text_content()) or ""
    await refund.click()
    box = console.get_by_test_id("message-input")
    await expect(box).to_have_value(text)
    await box.press("Enter")
    await ui.wait_for_message(customer, text)
    assert _stored(server, text) == (suggestion_id, False)

    # Edited before sending: stored as edited.
    first_message = await refund.get_attribute("data-message-id")
    await ui.send(customer, "Can I refund a gift card?")
    newer = console.locator(f"[data-testid=suggestion]:not([data-message-id='{first_message}'])")
    await expect(newer.first).to_be_visible(timeout=30_000)
    first = console.locator("[data-testid=suggestion]").first
    second_id = int(await first.get_attribute("data-suggestion-id") or 0)
    await first.click()
    await box.press("End")
    await box.press_sequentially(" Anything else?")
    edited = await box.input_value()
    await box.press("Enter")
    await ui.wait_for_message(customer, edited.strip())
    assert _stored(server, edited) == (second_id, True)

    # A text module by shortcut: `/gr` lists it, Enter inserts it with the customer's name.
    await box.press_sequentially("/gr")
    option = console.locator("[data-testid=module-option][data-shortcut=greet]")
    await expect(option).to_be_visible(timeout=15_000)
    await box.press("ArrowDown")
    await box.press("ArrowUp")
    await box.press("Enter")
    await expect(box).to_have_value("Hello Erika Muster, how can I help?")
    await expect(console.get_by_test_id("module-list")).to_be_hidden()
    # Escape closes the picker without inserting.
    await box.fill("")
    await box.press_sequentially("::by")
    await expect(console.locator("[data-testid=module-option][data-shortcut=bye]")).to_be_visible()
    await box.press("Escape")
    await expect(console.get_by_test_id("module-list")).to_be_hidden()
    await expect(box).to_have_value("::by")

    # The admins' panel counts them per source.
    admin = await ui.open_console(*server.make_staff(role="admin", display_name="Ada Admin"))
    await admin.get_by_test_id("view-admin").click()
    row = admin.locator("[data-testid=suggestion-stats-row][data-source=knowledge]")
    await expect(row).to_be_visible()
    await expect(row.locator("td").nth(2)).not_to_have_text("0")
