"""Sessions end (logged out elsewhere, expired): people sign in again and the chat goes on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e


async def logout_from_outside(http: httpx.AsyncClient, token: str) -> None:
    response = await http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204, response.text


async def expect_reauth(page: Page) -> None:
    await expect(page.get_by_test_id("reauth-dialog")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "auth")


async def test_guest_and_supporter_sign_in_again_and_the_chat_continues(
    ui: ChatUI, supporter_account: tuple[str, str], http: httpx.AsyncClient
) -> None:
    username, password = supporter_account
    console = await ui.open_console(username, password)
    customer = await ui.start_customer("Gustav Gast")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)
    await ui.send(customer, "hello before the logout")
    await ui.wait_for_message(console, "hello before the logout")

    old_token = await ui.token(customer)
    await logout_from_outside(http, old_token)
    await expect_reauth(customer)
    await ui.send(console, "written while the customer was signed out")
    await ui.wait_for_message(console, "written while the customer was signed out")

    await customer.get_by_test_id("reauth-continue").click()
    await expect(customer.get_by_test_id("reauth-dialog")).to_be_hidden()
    await expect(customer.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    assert await ui.token(customer) != old_token
    assert await ui.chat_id(customer) == chat_id
    await ui.wait_for_message(customer, "written while the customer was signed out")
    await ui.send(customer, "back again")
    await ui.wait_for_message(console, "back again")

    # Now the supporter's session ends; the console asks for the password and goes on.
    await logout_from_outside(http, await ui.token(console))
    await expect_reauth(console)
    await expect(console.get_by_test_id("reauth-username")).to_have_value(username)
    await ui.send(customer, "are you still there?")
    await console.get_by_test_id("reauth-password").fill("wrong password")
    await console.get_by_test_id("reauth-submit").click()
    await expect(console.get_by_test_id("reauth-error")).to_be_visible()
    await console.get_by_test_id("reauth-password").fill(password)
    await console.get_by_test_id("reauth-submit").click()
    await expect(console.get_by_test_id("reauth-dialog")).to_be_hidden()
    await ui.wait_for_message(console, "are you still there?")
    await ui.send(console, "yes, still here")
    await ui.wait_for_message(customer, "yes, still here")
    await expect(console.get_by_test_id("pane-status")).to_have_attribute("data-status", "assigned")
    await expect(console.get_by_test_id("message-input")).to_be_enabled()

    expected = [
        "hello before the logout",
        "written while the customer was signed out",
        "back again",
        "are you still there?",
        "yes, still here",
    ]
    for page in (customer, console):
        shown = [m["text"] for m in await ui.rendered(page) if m["text"] in expected]
        assert shown == expected


async def test_a_registered_customer_signs_in_again_with_the_password(
    ui: ChatUI, base_url: str, supporter_account: tuple[str, str], http: httpx.AsyncClient
) -> None:
    username, password = f"kunde_{uuid.uuid4().hex[:8]}", "a long customer password"
    response = await http.post(
        "/api/auth/register",
        json={"username": username, "password": password, "display_name": "Regina Konto"},
    )
    assert response.status_code == 201, response.text

    customer = await ui.open_page(f"{base_url}/")
    await customer.get_by_test_id("toggle-login").click()
    await customer.get_by_test_id("login-username").fill(username)
    await customer.get_by_test_id("login-password").fill(password)
    await customer.get_by_test_id("login-submit").click()
    await customer.locator("#chat-view:not([hidden]) [data-testid=chat-status][data-status]").wait_for()
    if await customer.get_by_test_id("chat-status").get_attribute("data-status") == "bot":
        await customer.get_by_test_id("escalate").click()
    chat_id = await ui.chat_id(customer)
    console = await ui.open_console(*supporter_account)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)

    await logout_from_outside(http, await ui.token(customer))
    await expect_reauth(customer)
    await expect(customer.get_by_test_id("reauth-username")).to_have_value(username)
    await ui.send(console, "welcome back soon")
    await customer.get_by_test_id("reauth-password").fill(password)
    await customer.get_by_test_id("reauth-submit").click()
    await expect(customer.get_by_test_id("reauth-dialog")).to_be_hidden()
    await ui.wait_for_message(customer, "welcome back soon")
    await ui.send(customer, "thanks, I am back")
    await ui.wait_for_message(console, "thanks, I am back")

    # A reload keeps the account's chat.
    await customer.reload()
    await ui.wait_for_message(customer, "thanks, I am back")
    assert await ui.chat_id(customer) == chat_id


async def test_pages_refresh_their_token_before_it_expires(
    start_server: Callable[..., Any], open_page: Callable[..., Awaitable[Page]]
) -> None:
    # The shortest lifetime the server allows; the pages refresh at 80 % of it (48 s).
    server = start_server(token_ttl_seconds=60, guest_rate_per_minute=100_000)
    ui = ChatUI(server.url, open_page)
    console = await ui.open_console(*server.make_staff())
    customer = await ui.start_customer("Fritz Frisch")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)
    first = {"customer": await ui.token(customer), "console": await ui.token(console)}

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 58
    while loop.time() < deadline:
        if await ui.token(customer) != first["customer"] and await ui.token(console) != first["console"]:
            break
        await asyncio.sleep(1)
    else:
        raise AssertionError("the pages did not refresh their tokens before they expired")

    await expect(customer.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    await expect(console.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    # Past the old tokens' expiry the chat still works, without asking anyone to sign in.
    await asyncio.sleep(max(0.0, deadline + 4 - loop.time()))
    await ui.send(customer, "still connected after the refresh")
    await ui.wait_for_message(console, "still connected after the refresh")
    await ui.send(console, "me too")
    await ui.wait_for_message(customer, "me too")
    await expect(customer.get_by_test_id("reauth-dialog")).to_be_hidden()
    await expect(console.get_by_test_id("reauth-dialog")).to_be_hidden()


async def test_the_console_keeps_its_chat_over_a_reload_and_signs_out(
    ui: ChatUI, supporter_account: tuple[str, str], http: httpx.AsyncClient
) -> None:
    console = await ui.open_console(*supporter_account)
    customer = await ui.start_customer("Ruth Ruhig")
    chat_id = await ui.chat_id(customer)
    await ui.open_chat(console, chat_id)
    await ui.take_over(console)
    await ui.send(customer, "are you there?")
    await ui.wait_for_message(console, "are you there?")

    await console.reload()
    await expect(console.get_by_test_id("pane-customer")).to_have_text("Ruth Ruhig")
    await ui.wait_for_message(console, "are you there?")
    await expect(console.get_by_test_id("message-input")).to_be_enabled()
    assert await console.locator("[data-testid=transcript] [data-testid=message]").count() == 1

    token = await ui.token(console)
    await console.get_by_test_id("logout").click()
    await expect(console.get_by_test_id("login-form")).to_be_visible()
    await expect(console.get_by_test_id("login-username")).to_have_value(supporter_account[0])

    async def revoked() -> bool:
        me = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        return me.status_code == 401

    for _ in range(50):
        if await revoked():
            break
        await asyncio.sleep(0.1)
    assert await revoked(), "signing out revokes the token"
