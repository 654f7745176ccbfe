"""Connections drop in the middle of a conversation: nothing is lost, nothing is shown twice."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e


class SocketTap:
    """Passes a page's WebSocket through to the server and can cut it like the server would."""

    def __init__(self) -> None:
        self.routes: list[WebSocketRoute] = []

    async def install(self, page: Page) -> None:
        await page.route_web_socket(re.compile(r"/ws$"), self._handle)

    def _handle(self, route: WebSocketRoute) -> None:
        route.connect_to_server()
        self.routes.append(route)

    async def cut(self, code: int, reason: str = "") -> None:
        """Close the newest connection with a close code, as the server does for a slow reader."""
        await self.routes[-1].close(code=code, reason=reason)

    @property
    def connections(self) -> int:
        return len(self.routes)


async def stored_messages(http: httpx.AsyncClient, token: str, chat_id: str) -> list[dict[str, object]]:
    response = await http.get(
        f"/api/chats/{chat_id}/messages",
        params={"after": 0, "limit": 200},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def assert_same_as_stored(ui: ChatUI, page: Page, stored: list[dict[str, object]]) -> None:
    await expect(page.get_by_test_id("pending-message")).to_have_count(0)
    await expect(page.locator("[data-testid=transcript] [data-testid=message]")).to_have_count(len(stored))
    shown = await ui.rendered(page)
    assert [m["seq"] for m in shown] == [m["seq"] for m in stored]
    assert [m["text"] for m in shown] == [m["text"] for m in stored]


async def test_dropped_connections_lose_and_double_nothing(
    ui: ChatUI, supporter_account: tuple[str, str], http: httpx.AsyncClient
) -> None:
    tap = SocketTap()
    console = await ui.open_console(*supporter_account, setup=tap.install)
    customer = await ui.start_customer("Paula Pause")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)
    await ui.send(customer, "first from customer")
    await ui.send(console, "first from supporter")
    await ui.wait_for_message(customer, "first from supporter")

    # The customer's connection drops; both sides keep writing meanwhile.
    await customer.evaluate("window.__chatSocket.dropForTest(2500)")
    await expect(customer.get_by_test_id("connection-status")).to_have_attribute("data-state", "reconnecting")
    await ui.send(customer, "customer while offline 1")
    await ui.send(customer, "customer while offline 2")
    await expect(customer.get_by_test_id("pending-message")).to_have_count(2)
    await ui.send(console, "supporter while customer offline")
    await ui.wait_for_message(console, "supporter while customer offline")

    await expect(customer.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    for text in ("customer while offline 1", "customer while offline 2"):
        await ui.wait_for_message(console, text)
    await ui.wait_for_message(customer, "supporter while customer offline")

    # The server cuts the supporter's socket (a slow reader gets 1013); writing goes on.
    before = tap.connections
    await tap.cut(1013, "slow reader")
    await ui.send(console, "supporter right after the cut")
    await ui.send(customer, "customer while supporter reconnects")
    await expect(console.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    assert tap.connections > before
    await ui.wait_for_message(customer, "supporter right after the cut")
    await ui.wait_for_message(console, "customer while supporter reconnects")

    token = await ui.token(customer)
    stored = await stored_messages(http, token, chat_id)
    texts = [m["text"] for m in stored]
    assert len(texts) == len(set(texts)), texts
    for text in (
        "customer while offline 1",
        "customer while offline 2",
        "supporter while customer offline",
        "supporter right after the cut",
    ):
        assert texts.count(text) == 1
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
    await assert_same_as_stored(ui, customer, stored)
    await assert_same_as_stored(ui, console, stored)


async def test_a_message_written_offline_is_sent_after_a_reload(
    ui: ChatUI, supporter_account: tuple[str, str], http: httpx.AsyncClient
) -> None:
    console = await ui.open_console(*supporter_account)
    customer = await ui.start_customer("Rita Reload")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)
    await ui.send(customer, "before the reload")
    await ui.wait_for_message(console, "before the reload")

    await customer.evaluate("window.__chatSocket.dropForTest(600000)")
    await ui.send(customer, "written offline, then reloaded")
    await expect(customer.get_by_test_id("pending-message")).to_have_count(1)
    await customer.reload()

    # The same chat comes back, with the message still on its way, and then delivered once.
    await ui.wait_for_message(customer, "written offline, then reloaded")
    await ui.wait_for_message(console, "written offline, then reloaded")
    await ui.wait_for_message(customer, "before the reload")
    assert await ui.chat_id(customer) == chat_id
    stored = await stored_messages(http, await ui.token(customer), chat_id)
    people = [m["text"] for m in stored if m["kind"] == "text"]  # not bot or system notes
    assert people == ["before the reload", "written offline, then reloaded"]
    await assert_same_as_stored(ui, customer, stored)
    await assert_same_as_stored(ui, console, stored)
    outbox = await customer.evaluate("localStorage.getItem('sc.customer.outbox')")
    assert outbox == "[]"


async def test_a_message_into_a_chat_closed_meanwhile_is_marked_not_sent(
    ui: ChatUI, supporter_account: tuple[str, str]
) -> None:
    console = await ui.open_console(*supporter_account)
    customer = await ui.start_customer("Otto Offline")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)

    await customer.evaluate("window.__chatSocket.dropForTest(2000)")
    await ui.send(customer, "one more question")
    await console.get_by_test_id("end-chat").click()
    await console.get_by_test_id("confirm-end-yes").click()
    await expect(console.get_by_test_id("pane-status")).to_have_attribute("data-status", "closed")

    failed = customer.get_by_test_id("failed-message")
    await expect(failed).to_contain_text("not sent: the chat has ended")
    await expect(failed).to_contain_text("one more question")
    await expect(customer.get_by_test_id("chat-status")).to_have_text("Chat was ended by the supporter")
    await expect(customer.get_by_test_id("message-input")).to_be_disabled()
    assert await customer.evaluate("localStorage.getItem('sc.customer.outbox')") == "[]"
