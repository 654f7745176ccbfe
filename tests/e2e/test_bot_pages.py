"""The bot on the two pages, in Chromium: sourced answers, ratings, streaming, the hand-over panel."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from backend.knowledge.embedder import SentenceTransformerEmbedder
from tests.conftest import LiveServer
from tests.fake_llm import FakeLlm
from tests.knowledge_helpers import (
    BOT_SERVER_OVERRIDES,
    fixture_kb_database,
    start_llm_bot_server,
    wait_for_model,
)

from .conftest import ChatUI

pytestmark = pytest.mark.e2e

REFUND_QUESTION = "How many days do I have to return an item and get my money back?"
REFUND_URL = "https://help.example.com/refunds"
BOT_ANSWER = "[data-testid=transcript] [data-testid=message][data-kind=bot]"
# Records every text the typing line and the transcript's drafts showed (MutationObserver).
WATCH = """() => {
  window.__seen = {typing: [], drafts: []};
  const typing = document.getElementById('typing');
  new MutationObserver(() => {
    if (!typing.hidden && typing.textContent) window.__seen.typing.push(typing.textContent);
  }).observe(typing, {childList: true, characterData: true, subtree: true, attributes: true});
  const list = document.getElementById('transcript');
  new MutationObserver(() => {
    for (const el of list.querySelectorAll('[data-testid=bot-draft-text]')) {
      window.__seen.drafts.push(el.textContent);
    }
  }).observe(list, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture(scope="module")
def kb_database(new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database holding the tiny fixture knowledge base."""
    return fixture_kb_database(new_database, tmp_path_factory, SentenceTransformerEmbedder())


@pytest.fixture(scope="module")
def bot_server(start_server: Callable[..., LiveServer], kb_database: str) -> Iterator[LiveServer]:
    """A server whose bot answers first, without an LLM (extractive answers)."""
    server = wait_for_model(start_server(database_url=kb_database, **BOT_SERVER_OVERRIDES))
    yield server
    server.stop()


def _rating(server: LiveServer, message_id: int) -> str | None:
    async def read() -> Any:
        async with server.ctx.pool.acquire() as conn:
            return await conn.fetchval("SELECT rating FROM bot_feedback WHERE message_id = $1", message_id)

    value = server.run(read())
    return None if value is None else str(value)


async def _start_bot_chat(ui: ChatUI, name: str, **page_options: Any) -> Page:
    """Open the customer page and start a chat that the bot answers."""
    page = await ui.open_page(f"{ui.base_url}/", **page_options)
    await page.get_by_test_id("guest-name").fill(name)
    await page.get_by_test_id("start-chat").click()
    await page.locator("[data-testid=chat-status][data-status=bot]").wait_for()
    await page.locator("[data-testid=connection-status][data-state=online]").wait_for()
    await page.evaluate(WATCH)
    return page


async def _seen(page: Page) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = await page.evaluate("() => window.__seen")
    return seen


async def test_bot_answer_rating_hand_over_and_the_supporters_panel(
    bot_server: LiveServer, open_page: Callable[..., Awaitable[Page]]
) -> None:
    server = bot_server
    ui = ChatUI(server.url, open_page)
    customer = await _start_bot_chat(ui, "Erika Muster")
    await expect(customer.get_by_test_id("chat-status")).to_have_text("Chatting with our assistant")
    chat_id = await ui.chat_id(customer)

    await ui.send(customer, REFUND_QUESTION)
    answer = customer.locator(BOT_ANSWER).first
    await expect(answer).to_be_visible(timeout=30_000)
    await expect(answer.get_by_test_id("message-text")).to_contain_text("30 days")
    link = answer.locator("[data-testid=message-sources] a")
    await expect(link).to_have_text("Refund policy")
    assert await link.get_attribute("href") == REFUND_URL
    assert "Assistant is typing…" in (await _seen(customer))["typing"]
    message_id = int(await answer.get_attribute("data-message-id") or 0)

    helpful = answer.get_by_test_id("rate-helpful")
    not_helpful = answer.get_by_test_id("rate-not-helpful")
    await expect(helpful).to_have_text("Helpful")
    await expect(not_helpful).to_have_text("Not helpful")
    await expect(helpful).to_have_attribute("aria-pressed", "false")
    await expect(not_helpful).to_have_attribute("aria-pressed", "false")

    # The request fails: the page says so and the button is not left pressed.
    await customer.route("**/feedback", lambda route: route.abort())
    await helpful.click()
    notice = customer.get_by_test_id("notice")
    await expect(notice).to_have_text("The server cannot be reached. Please try again.")
    await expect(helpful).to_have_attribute("aria-pressed", "false")
    assert _rating(server, message_id) is None
    await customer.unroute("**/feedback")

    await helpful.click()
    await expect(helpful).to_have_attribute("aria-pressed", "true")
    await expect(not_helpful).to_have_attribute("aria-pressed", "false")
    # The customer changes their mind, by keyboard.
    await not_helpful.focus()
    await customer.keyboard.press("Enter")
    await expect(not_helpful).to_have_attribute("aria-pressed", "true")
    await expect(helpful).to_have_attribute("aria-pressed", "false")
    deadline = time.monotonic() + 10
    while _rating(server, message_id) != "not_helpful":
        assert time.monotonic() < deadline, _rating(server, message_id)
        time.sleep(0.1)

    # A reload renders the transcript anew: the choice is still shown.
    await customer.reload()
    answer = customer.locator(BOT_ANSWER).first
    await expect(answer.get_by_test_id("rate-not-helpful")).to_have_attribute("aria-pressed", "true")
    await expect(answer.get_by_test_id("rate-helpful")).to_have_attribute("aria-pressed", "false")
    assert await customer.locator(BOT_ANSWER).count() == 1

    # Asking for a person hands the chat over: the status line follows the chat frame.
    await customer.locator("[data-testid=connection-status][data-state=online]").wait_for()
    await ui.send(customer, "I want to talk to a person")
    status = customer.get_by_test_id("chat-status")
    await expect(status).to_have_attribute("data-status", "open", timeout=30_000)
    await expect(status).to_have_text("Waiting for supporter")
    await expect(customer.locator(BOT_ANSWER)).to_have_count(2)
    # The hand-over message has no sources, so nothing to rate.
    await expect(customer.locator(f"{BOT_ANSWER} [data-testid=rating]")).to_have_count(1)

    console = await ui.open_console(*server.make_staff(display_name="Sam Berger"))
    await ui.open_chat(console, chat_id)
    panel = console.get_by_test_id("handover")
    await expect(panel).to_be_visible()
    await expect(panel).to_have_attribute("data-state", "loaded")
    await expect(console.get_by_test_id("handover-reason")).to_have_text("The customer asked for a person.")
    await expect(console.get_by_test_id("handover-question").first).to_have_text(REFUND_QUESTION)
    await expect(console.get_by_test_id("handover-summary")).to_contain_text("Refund policy")
    await expect(console.get_by_test_id("handover-not-helpful")).to_have_text(
        "The customer rated 1 answer not helpful."
    )
    source = console.locator("[data-testid=handover-source] a")
    await expect(source).to_have_text("Refund policy")
    assert await source.get_attribute("href") == REFUND_URL
    # The bot's messages are in the transcript too, with their sources.
    used = console.locator(f"{BOT_ANSWER} [data-testid=message-sources] a")
    await expect(used).to_have_text("Refund policy")

    # Collapsed and expanded again by keyboard.
    toggle = console.get_by_test_id("handover-toggle")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await toggle.focus()
    await console.keyboard.press("Enter")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(console.get_by_test_id("handover-body")).to_be_hidden()
    await expect(console.get_by_test_id("handover-reason")).to_be_visible()
    await console.keyboard.press("Space")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(console.get_by_test_id("handover-question").first).to_be_visible()

    await ui.take_over(console)
    await expect(panel).to_be_visible()
    await expect(status).to_have_attribute("data-status", "assigned")
    await expect(status).to_have_text("Chat active with Sam Berger")
    await ui.send(console, "Hello Erika, I'm Sam.")
    await ui.wait_for_message(customer, "Hello Erika, I'm Sam.")

    # A chat that was never handed over by the bot shows no panel.
    other = await _start_bot_chat(ui, "Otto Normal")
    other_id = await ui.chat_id(other)
    await console.locator(f"[data-testid=active-list] [data-chat-id='{other_id}']").wait_for()
    await ui.open_chat(console, other_id)
    await expect(console.get_by_test_id("pane-status")).to_have_attribute("data-status", "bot")
    await expect(panel).to_be_hidden()


async def test_german_rating_buttons_and_the_escalate_button(
    bot_server: LiveServer, open_page: Callable[..., Awaitable[Page]]
) -> None:
    server = bot_server
    ui = ChatUI(server.url, open_page)
    customer = await _start_bot_chat(ui, "Jana Beispiel", locale="de-DE")
    await expect(customer.get_by_test_id("chat-status")).to_have_text("Sie chatten mit unserem Assistenten")
    await ui.send(customer, "Ich habe mein Passwort vergessen. Wie kann ich es zurücksetzen?")
    answer = customer.locator(BOT_ANSWER).first
    await expect(answer).to_be_visible(timeout=30_000)
    await expect(answer.locator("[data-testid=message-sources]")).to_contain_text("Passwort zurücksetzen")
    await expect(answer.get_by_test_id("rate-helpful")).to_have_text("Hilfreich")
    await expect(answer.get_by_test_id("rate-not-helpful")).to_have_text("Nicht hilfreich")
    assert "Der Assistent schreibt…" in (await _seen(customer))["typing"]
    await answer.get_by_test_id("rate-helpful").click()
    await expect(answer.get_by_test_id("rate-helpful")).to_have_attribute("aria-pressed", "true")

    # Switching the language re-renders the transcript: the texts change, the choice stays.
    await customer.get_by_test_id("lang-select").select_option("en")
    answer = customer.locator(BOT_ANSWER).first
    await expect(answer.get_by_test_id("rate-helpful")).to_have_text("Helpful")
    await expect(answer.get_by_test_id("rate-helpful")).to_have_attribute("aria-pressed", "true")
    await customer.get_by_test_id("lang-select").select_option("de")

    await customer.get_by_test_id("escalate").click()
    status = customer.get_by_test_id("chat-status")
    await expect(status).to_have_text("Warten auf einen Mitarbeiter")

    console = await ui.open_console(*server.make_staff(display_name="Kai Huber"), locale="de-DE")
    await ui.open_chat(console, await ui.chat_id(customer))
    await expect(console.get_by_test_id("handover-reason")).to_have_text(
        "Der Kunde möchte mit einem Menschen sprechen."
    )
    await expect(console.get_by_test_id("handover-toggle")).to_have_text("Details ausblenden")
    await expect(console.get_by_test_id("handover-question").first).to_contain_text("Passwort vergessen")


@pytest.fixture(scope="module")
def llm_server(
    start_server: Callable[..., LiveServer], kb_database: str, fake_llm: FakeLlm
) -> Iterator[LiveServer]:
    """A server whose bot writes its answers with an (OpenAI-compatible, fake) LLM, streaming them."""
    server = start_llm_bot_server(start_server, kb_database, fake_llm, llm_timeout_seconds=5.0)
    yield server
    server.stop()


async def test_a_streamed_answer_shows_as_a_draft_that_the_stored_answer_replaces(
    llm_server: LiveServer, fake_llm: FakeLlm, open_page: Callable[..., Awaitable[Page]]
) -> None:
    fake_llm.reset("grounded")
    ui = ChatUI(llm_server.url, open_page)
    customer = await _start_bot_chat(ui, "Lena Strom")
    await ui.send(customer, REFUND_QUESTION)
    answer = customer.locator(BOT_ANSWER).first
    await expect(answer).to_be_visible(timeout=30_000)
    text = (await answer.get_by_test_id("message-text").text_content()) or ""
    assert "[1]" in text
    drafts = (await _seen(customer))["drafts"]
    assert drafts, "no draft bubble was shown while the answer streamed"
    # Built up piece by piece, in order, into the answer that was then stored.
    assert len(drafts[0]) < len(text) and text.startswith(drafts[0])
    assert drafts[-1].strip() == text.strip()
    # The draft is gone and the answer is there once.
    await expect(customer.get_by_test_id("bot-draft")).to_have_count(0)
    shown = await customer.locator("[data-testid=transcript]").text_content() or ""
    assert shown.count(text.strip()) == 1
    await expect(answer.get_by_test_id("rate-helpful")).to_be_visible()
