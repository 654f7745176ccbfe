"""The console's lists: the filter over all active chats, taking a chat over from "All active",
and chats opened with an invitation link, end to end in two browsers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e


async def waiting_chat(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """A guest's chat in the queue (status open), made over HTTP."""
    guest = await http.post("/api/auth/guest", json={"display_name": name})
    assert guest.status_code == 201, guest.text
    auth = {"Authorization": f"Bearer {guest.json()['token']}"}
    created = await http.post("/api/chats", json={}, headers=auth)
    assert created.status_code == 201, created.text
    chat: dict[str, Any] = created.json()
    if chat["status"] == "bot":
        escalated = await http.post(f"/api/chats/{chat['id']}/escalate", headers=auth)
        assert escalated.status_code == 200, escalated.text
        chat = escalated.json()
    return chat


def items(page: Page, list_id: str) -> Any:
    return page.locator(f"[data-testid={list_id}] [data-testid=chat-item]")


async def names(page: Page, list_id: str) -> list[str]:
    texts = await page.locator(f"[data-testid={list_id}] [data-testid=chat-item-name]").all_text_contents()
    return sorted(texts)


async def test_the_filter_narrows_the_lists_and_the_chosen_chat_is_taken_over(
    ui: ChatUI,
    make_supporter: Callable[..., Any],
    supporter_account: tuple[str, str],
    http: httpx.AsyncClient,
) -> None:
    tag = uuid.uuid4().hex[:6]
    zoe_name, bernd_name = f"Zoë Lindner {tag}", f"Bernd Kraus {tag}"
    console = await ui.open_console(*supporter_account)
    await waiting_chat(http, f"Otto Anders {uuid.uuid4().hex[:6]}")
    zoe = await waiting_chat(http, zoe_name)
    bernd = await waiting_chat(http, bernd_name)
    for chat in (zoe, bernd):
        await expect(
            console.locator(f"[data-testid=active-list] [data-chat-id='{chat['id']}']")
        ).to_be_visible()

    # By name: the tag leaves exactly these two, in every list they belong to.
    await console.get_by_test_id("filter-name").fill(tag)
    await expect(items(console, "active-list")).to_have_count(2)
    assert await names(console, "active-list") == sorted([zoe_name, bernd_name])
    assert await names(console, "queue-list") == sorted([zoe_name, bernd_name])
    await expect(items(console, "mine-list")).to_have_count(0)
    # Any case, no accents needed.
    await console.get_by_test_id("filter-name").fill(f"ZOE lindner {tag}")
    await expect(items(console, "active-list")).to_have_count(1)
    await expect(items(console, "active-list")).to_have_attribute("data-chat-id", zoe["id"])
    await expect(items(console, "queue-list")).to_have_count(1)

    # By status: nobody has these two yet.
    await console.get_by_test_id("filter-name").fill(tag)
    await console.get_by_test_id("filter-status").select_option("assigned")
    await expect(items(console, "active-list")).to_have_count(0)
    await expect(console.get_by_test_id("active-list")).to_contain_text("No chat matches the filter")
    await console.get_by_test_id("filter-status").select_option("waiting")
    await expect(items(console, "active-list")).to_have_count(2)
    await expect(console.get_by_test_id("active-count")).to_contain_text("2 of")

    # A chat that arrives while the filter is on shows up live when it matches.
    late_name = f"Carla Neu {tag}"
    late = await waiting_chat(http, late_name)
    await expect(console.locator(f"[data-testid=active-list] [data-chat-id='{late['id']}']")).to_be_visible()
    await expect(items(console, "active-list")).to_have_count(3)
    await waiting_chat(http, f"Someone Else {uuid.uuid4().hex[:6]}")
    await expect(items(console, "active-list")).to_have_count(3)

    # Pick Zoë from "All active" and take her chat over.
    await console.locator(f"[data-testid=active-list] [data-chat-id='{zoe['id']}']").click()
    await expect(console.get_by_test_id("pane-customer")).to_have_text(zoe_name)
    await ui.take_over(console)
    # Live: she left "waiting" (the filter's status) and is in "mine".
    await expect(console.locator(f"[data-testid=active-list] [data-chat-id='{zoe['id']}']")).to_be_hidden()
    await console.get_by_test_id("filter-status").select_option("mine")
    await expect(items(console, "active-list")).to_have_count(1)
    await expect(items(console, "mine-list")).to_have_attribute("data-chat-id", zoe["id"])
    await expect(items(console, "queue-list")).to_have_count(0)

    # Someone else takes Bernd while this console misses the news: 409, said plainly.
    await console.get_by_test_id("filter-status").select_option("all")
    await console.locator(f"[data-testid=active-list] [data-chat-id='{bernd['id']}']").click()
    await expect(console.get_by_test_id("pane-customer")).to_have_text(bernd_name)
    await expect(console.get_by_test_id("take-over")).to_be_visible()
    await console.evaluate("window.__chatSocket.dropForTest(60000)")
    other = make_supporter()
    login = await http.post("/api/auth/login", json={"username": other[0], "password": other[1]})
    taken = await http.post(
        f"/api/chats/{bernd['id']}/assign", headers={"Authorization": f"Bearer {login.json()['token']}"}
    )
    assert taken.status_code == 200, taken.text
    await console.get_by_test_id("take-over").click()
    await expect(console.get_by_test_id("pane-error")).to_have_text(
        "This chat was already taken by someone else."
    )
    await expect(console.get_by_test_id("pane-status")).to_contain_text("Assigned to")
    await expect(console.get_by_test_id("message-input")).to_be_disabled()

    # Clearing the filter shows everything again.
    await console.get_by_test_id("filter-clear").click()
    await expect(console.get_by_test_id("filter-name")).to_have_value("")
    await expect(console.get_by_test_id("filter-status")).to_have_value("all")
    await expect(console.get_by_test_id("filter-clear")).to_be_hidden()
    assert await items(console, "active-list").count() >= 3


async def test_an_invitation_link_brings_the_customer_into_the_supporters_chat_once(
    ui: ChatUI, make_supporter: Callable[..., Any], base_url: str
) -> None:
    username, password = make_supporter(display_name="Ines Einlader")
    console = await ui.open_console(username, password)
    await console.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    customer_name = f"Paul Eingeladen {uuid.uuid4().hex[:6]}"

    await console.locator("#invite-box summary").click()
    await console.get_by_test_id("invite-name").fill(customer_name)
    await console.get_by_test_id("invite-create").click()
    link = console.get_by_test_id("invite-url")
    await expect(link).to_be_visible()
    url = await link.input_value()
    assert url.startswith(f"{base_url}/?invite="), url
    await expect(console.get_by_test_id("invite-copy")).to_be_focused()
    await console.get_by_test_id("invite-copy").click()
    await expect(console.get_by_test_id("invite-copied")).to_have_text("Link copied.")
    assert await console.evaluate("navigator.clipboard.readText()") == url

    # The new chat is the supporter's own from the start.
    mine = console.locator("[data-testid=mine-list] [data-testid=chat-item]", has_text=customer_name)
    await expect(mine).to_be_visible()
    await expect(mine).to_have_attribute("data-status", "assigned")
    chat_id = await mine.get_attribute("data-chat-id")

    # The customer opens the copied link in their own browser.
    customer = await ui.open_page(url)
    await expect(customer.locator("#chat-view:not([hidden]) [data-testid=chat-status]")).to_have_attribute(
        "data-status", "assigned"
    )
    await expect(customer.get_by_test_id("chat-status")).to_contain_text("Chat active")
    assert "invite" not in customer.url
    assert await ui.chat_id(customer) == chat_id

    await mine.click()
    await expect(console.get_by_test_id("pane-customer")).to_have_text(customer_name)
    await expect(console.get_by_test_id("message-input")).to_be_enabled()
    await ui.send(console, "Hello Paul, thanks for opening the link.")
    await ui.wait_for_message(customer, "Hello Paul, thanks for opening the link.")
    await ui.send(customer, "Hi Ines, I am here.")
    await ui.wait_for_message(console, "Hi Ines, I am here.")

    # The link works once: another browser (or the same one later) is told so.
    again = await ui.open_page(url)
    await expect(again.get_by_test_id("notice")).to_contain_text("expired or was already used")
    await expect(again.get_by_test_id("guest-form")).to_be_visible()
    # The invited customer who opens it again is simply back in their chat.
    await customer.goto(url)
    await ui.wait_for_message(customer, "Hello Paul, thanks for opening the link.")
    await expect(customer.get_by_test_id("chat-status")).to_have_attribute("data-status", "assigned")
    assert await ui.chat_id(customer) == chat_id


async def test_without_a_clipboard_the_copy_button_selects_the_link(
    ui: ChatUI, supporter_account: tuple[str, str], base_url: str
) -> None:
    async def no_clipboard(page: Page) -> None:
        await page.add_init_script("Object.defineProperty(navigator, 'clipboard', { value: undefined })")

    console = await ui.open_page(f"{base_url}/console", setup=no_clipboard)
    await ui.console_login(console, *supporter_account)
    await console.locator("#invite-box summary").click()
    await console.get_by_test_id("invite-name").fill("Lena Ohne Zwischenablage")
    await console.get_by_test_id("invite-name").press("Enter")
    await expect(console.get_by_test_id("invite-copy")).to_be_focused()
    url = await console.get_by_test_id("invite-url").input_value()
    assert "/?invite=" in url
    await console.get_by_test_id("invite-copy").press("Enter")
    await expect(console.get_by_test_id("invite-copied")).to_contain_text("The link is selected")
    await expect(console.get_by_test_id("invite-url")).to_be_focused()
    selected = await console.evaluate(
        "() => { const el = document.activeElement;"
        " return el.value.slice(el.selectionStart, el.selectionEnd); }"
    )
    assert selected == url
