"""A customer and a supporter talk from start to end, each in their own browser."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from .conftest import SCREENSHOTS, ChatUI

pytestmark = pytest.mark.e2e


async def waiting_customer(base_url: str, name: str) -> None:
    """Another customer who waits in the queue (so the screenshot shows one)."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        guest = (await http.post("/api/auth/guest", json={"display_name": name})).json()
        auth = {"Authorization": f"Bearer {guest['token']}"}
        chat = (await http.post("/api/chats", json={}, headers=auth)).json()
        if chat["status"] == "bot":
            await http.post(f"/api/chats/{chat['id']}/escalate", headers=auth)


async def test_customer_and_supporter_talk_until_the_supporter_ends_the_chat(
    start_server: Callable[..., Any], open_page: Callable[..., Awaitable[Page]]
) -> None:
    # A server of its own, so the screenshots show this conversation and nothing else.
    server = start_server(guest_rate_per_minute=100_000)
    ui = ChatUI(server.url, open_page)
    console = await ui.open_console(*server.make_staff(display_name="Sam Berger"))
    await waiting_customer(server.url, "Jonas Weber")
    customer = await ui.start_customer("Erika Mustermann")
    await expect(customer.get_by_test_id("chat-status")).to_have_text("Waiting for supporter")
    chat_id = await ui.chat_id(customer)

    # The new chat shows up in the queue without a reload.
    queued = console.locator(f"[data-testid=queue-list] [data-chat-id='{chat_id}']")
    await expect(queued).to_be_visible()
    await expect(queued).to_contain_text("Erika Mustermann")

    await ui.send(customer, "Hello, my parcel did not arrive.")
    await queued.click()
    await ui.wait_for_message(console, "Hello, my parcel did not arrive.")
    await expect(console.get_by_test_id("message-input")).to_be_disabled()

    await ui.take_over(console)
    await expect(customer.get_by_test_id("chat-status")).to_contain_text("Chat active")
    await expect(customer.get_by_test_id("escalate")).to_be_hidden()
    await expect(console.locator(f"[data-testid=mine-list] [data-chat-id='{chat_id}']")).to_be_visible()
    await expect(queued).to_be_hidden()

    # Typing shows on the other side.
    await console.get_by_test_id("message-input").press_sequentially("Let me ch", delay=30)
    await expect(customer.get_by_test_id("typing")).to_be_visible()
    await expect(customer.get_by_test_id("typing")).to_contain_text("is typing")
    await console.get_by_test_id("message-input").fill("")
    await customer.get_by_test_id("message-input").press_sequentially("One more th", delay=30)
    await expect(console.get_by_test_id("typing")).to_have_text("Erika Mustermann is typing…")
    await customer.get_by_test_id("message-input").fill("")

    lines = [
        (console, "Hi Erika, let me check that for you."),
        (customer, "Thank you!"),
        (console, "It is on its way and arrives tomorrow."),
        (customer, "Great.\nHave a nice day."),
    ]
    for page, text in lines:
        await ui.send(page, text)
        await ui.wait_for_message(customer, text)
        await ui.wait_for_message(console, text)

    expected = ["Hello, my parcel did not arrive."] + [text for _, text in lines]
    for page in (customer, console):
        shown = await ui.rendered(page)
        texts = [m["text"] for m in shown if m["text"] in expected]
        assert texts == expected
        seqs = [m["seq"] for m in shown]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Own messages sit on the right, the other side's on the left.
    last = customer.locator("[data-testid=message]").last
    await expect(last).to_have_attribute("data-sender", "me")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await customer.screenshot(path=str(SCREENSHOTS / "customer.png"), full_page=True)
    await console.screenshot(path=str(SCREENSHOTS / "console.png"), full_page=True)

    # The supporter ends the chat after confirming.
    await console.get_by_test_id("end-chat").click()
    await console.get_by_test_id("confirm-end-yes").click()
    await expect(console.get_by_test_id("pane-status")).to_have_attribute("data-status", "closed")
    await expect(customer.get_by_test_id("chat-status")).to_have_text("Chat was ended by the supporter")
    await expect(customer.get_by_test_id("message-input")).to_be_disabled()
    await expect(customer.get_by_test_id("new-chat")).to_be_visible()
    await expect(console.locator(f"[data-testid=active-list] [data-chat-id='{chat_id}']")).to_be_hidden()


async def test_a_second_supporter_sees_that_the_chat_is_already_taken(
    ui: ChatUI, make_supporter: Callable[..., Any], supporter_account: tuple[str, str]
) -> None:
    first = await ui.open_console(*supporter_account)
    other = make_supporter()
    if inspect.isawaitable(other):
        other = await other
    second = await ui.open_console(*other)
    customer = await ui.start_customer("Max")
    chat_id = await ui.chat_id(customer)

    await ui.open_chat(first, chat_id)
    await ui.open_chat(second, chat_id)
    # The second console misses the live update (its connection is down), so its button
    # is still there when the first supporter has already taken the chat.
    await second.evaluate("window.__chatSocket.dropForTest(60000)")
    await ui.take_over(first)
    await second.get_by_test_id("take-over").click()
    await expect(second.get_by_test_id("pane-error")).to_have_text(
        "This chat was already taken by someone else."
    )
    await expect(second.get_by_test_id("message-input")).to_be_disabled()
    await expect(second.get_by_test_id("pane-status")).to_contain_text("Assigned to")


async def test_a_closed_chat_offers_a_new_one(ui: ChatUI, supporter_account: tuple[str, str]) -> None:
    console = await ui.open_console(*supporter_account)
    customer = await ui.start_customer("Nina")
    first_chat = await ui.chat_id(customer)
    await ui.open_chat(console, first_chat)
    await ui.take_over(console)
    await console.get_by_test_id("end-chat").click()
    await console.get_by_test_id("confirm-end-yes").click()
    await expect(customer.get_by_test_id("new-chat")).to_be_visible()

    await customer.get_by_test_id("new-chat").click()
    await expect(customer.get_by_test_id("message-input")).to_be_enabled()
    assert await ui.chat_id(customer) != first_chat
    await expect(customer.locator("[data-testid=message]")).to_have_count(0)
    await expect(
        console.locator(f"[data-testid=queue-list] [data-chat-id='{await ui.chat_id(customer)}']")
    ).to_be_visible()


async def test_an_invitation_link_opens_its_chat_and_an_old_one_says_so(
    ui: ChatUI, base_url: str, http: httpx.AsyncClient
) -> None:
    guest = await http.post("/api/auth/guest", json={"display_name": "Ida Invited"})
    assert guest.status_code == 201, guest.text
    session = guest.json()
    created = await http.post("/api/chats", json={}, headers={"Authorization": f"Bearer {session['token']}"})
    assert created.status_code == 201, created.text
    chat = created.json()
    accepted = {**{k: session[k] for k in ("token", "expires_at", "user")}, "chat": chat}

    async def answer_invitations(page: Page) -> None:
        # Stands in for the server's invitation endpoint: one good link, one used one.
        async def fulfill(route: Route) -> None:
            if route.request.url.endswith("/api/invitations/good-link/accept"):
                await route.fulfill(status=200, json=accepted)
            else:
                await route.fulfill(status=410, json={"detail": "used", "code": "invitation_used"})

        await page.route("**/api/invitations/*/accept", fulfill)

    page = await ui.open_page(f"{base_url}/?invite=good-link", setup=answer_invitations)
    await page.locator("#chat-view:not([hidden]) [data-testid=chat-status][data-status]").wait_for()
    assert await ui.chat_id(page) == chat["id"]
    assert "invite" not in page.url
    await ui.send(page, "I got your link")
    await ui.wait_for_message(page, "I got your link")

    used = await ui.open_page(f"{base_url}/?invite=used-link", setup=answer_invitations)
    await expect(used.get_by_test_id("notice")).to_contain_text("expired or was already used")
    await expect(used.get_by_test_id("guest-form")).to_be_visible()
