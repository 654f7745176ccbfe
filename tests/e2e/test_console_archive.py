"""The console's archive: archived chats are found (latest, or by customer) and read, read-only."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e


def archive_available(server: Any) -> bool:
    """The archive's endpoints exist (GET /api/archive/chats answers 401, not 404, without a token)."""
    try:
        from backend.archive import service  # noqa: F401
    except ImportError:
        return False
    return httpx.get(f"{server.url}/api/archive/chats", timeout=10).status_code == 401


def make_archived_chat(server: Any, staff: dict[str, Any], customer_name: str) -> tuple[str, dict[str, Any]]:
    """A chat between a new guest and the supporter, closed, made old, and archived."""
    from backend.archive import service as archive_service

    with httpx.Client(base_url=server.url, timeout=30) as http:
        guest = http.post("/api/auth/guest", json={"display_name": customer_name}).json()
        customer = {"Authorization": f"Bearer {guest['token']}"}
        supporter = {"Authorization": f"Bearer {staff['token']}"}
        chat = http.post("/api/chats", json={}, headers=customer).json()
        assert http.post(f"/api/chats/{chat['id']}/assign", headers=supporter).status_code == 200
        for text, headers in [
            ("Mein Paket ist beschädigt angekommen.", customer),
            ("Das tut mir leid! Ich schicke Ihnen ein neues.", supporter),
            ("Danke schön.", customer),
        ]:
            sent = http.post(
                f"/api/chats/{chat['id']}/messages",
                json={"text": text, "client_msg_id": uuid.uuid4().hex},
                headers=headers,
            )
            assert sent.status_code == 201, sent.text
        assert http.post(f"/api/chats/{chat['id']}/close", headers=supporter).status_code == 200

    async def age() -> None:
        async with server.ctx.pool.acquire() as conn:
            await conn.execute(
                "UPDATE chats SET closed_at = now() - interval '8 days',"
                " created_at = now() - interval '8 days 1 hour' WHERE id = $1::uuid",
                chat["id"],
            )

    server.run(age())
    result = server.run(
        archive_service.archive_pass(
            server.ctx.pool, server.ctx.archive_pool, older_than=timedelta(days=7), batch_size=500
        )
    )
    assert result.chats >= 1
    return chat["id"], guest


async def texts(page: Page) -> list[str]:
    shown = await page.locator(
        "[data-testid=archive-transcript] [data-testid=message-text]"
    ).all_text_contents()
    return list(shown)


async def test_an_archived_chat_is_found_and_read_but_not_changed(
    start_server: Callable[..., Any], open_page: Callable[..., Any]
) -> None:
    # Its own server, whose periodic pass leaves the chats alone: the test archives them itself.
    server = start_server(archive_after_days=3650, guest_rate_per_minute=100_000)
    if not archive_available(server):
        pytest.skip("the archive endpoint GET /api/archive/chats does not exist yet")
    username, password = server.make_staff(display_name="Sam Archiv")
    with httpx.Client(base_url=server.url) as http:
        staff = http.post("/api/auth/login", json={"username": username, "password": password}).json()
    chat_id, customer = make_archived_chat(server, staff, "Greta Gestern")
    other_id, _ = make_archived_chat(server, staff, "Olaf Ohnehin")

    ui = ChatUI(server.url, open_page)
    console = await ui.open_console(username, password)
    await console.get_by_test_id("view-archive").click()
    await expect(console.get_by_test_id("archive-view")).to_be_visible()
    await expect(console.get_by_test_id("view-archive")).to_have_attribute("aria-current", "page")
    # The latest archived chats, without a search.
    listed = console.locator("[data-testid=archive-list] [data-testid=archive-item]")
    await expect(listed).to_have_count(2)
    await expect(console.get_by_test_id("archive-summary")).to_have_text("2 archived chats, newest first.")

    await console.locator(f"[data-testid=archive-item][data-chat-id='{chat_id}']").click()
    pane = console.get_by_test_id("archive-chat")
    await expect(console.get_by_test_id("archive-name")).to_have_text("Greta Gestern")
    await expect(console.get_by_test_id("archived-on")).to_contain_text("Archived on ")
    await expect(console.get_by_test_id("archive-meta")).to_contain_text("Supporter: Sam Archiv")
    await expect(console.locator("[data-testid=archive-transcript] [data-testid=message]")).to_have_count(3)
    assert await texts(console) == [
        "Mein Paket ist beschädigt angekommen.",
        "Das tut mir leid! Ich schicke Ihnen ein neues.",
        "Danke schön.",
    ]
    # Names and times on every message.
    senders = await console.locator("[data-testid=archive-transcript] .msg__sender").all_text_contents()
    assert senders == ["Greta Gestern", "You", "Greta Gestern"]
    times = await console.locator("[data-testid=archive-transcript] time").all_text_contents()
    assert len(times) == 3 and all(times)
    # Read-only: nothing to type into, nothing to take over or end.
    await expect(
        pane.locator("textarea, input, [data-testid=take-over], [data-testid=end-chat]")
    ).to_have_count(0)
    await expect(console.get_by_test_id("message-input")).to_be_hidden()
    await expect(console.get_by_test_id("take-over")).to_be_hidden()
    if os.environ.get("CONSOLE_SHOTS"):
        await console.screenshot(path=f"{os.environ['CONSOLE_SHOTS']}/desktop-archive.png")

    # By customer id: only that customer's chats.
    await console.get_by_test_id("archive-customer").fill(customer["user"]["id"])
    await console.get_by_test_id("archive-submit").click()
    await expect(listed).to_have_count(1)
    await expect(listed).to_have_attribute("data-chat-id", chat_id)
    await expect(console.get_by_test_id("archive-summary")).to_contain_text("1 archived chat of customer")
    await console.get_by_test_id("archive-customer").fill("not-an-id")
    await console.get_by_test_id("archive-submit").click()
    await expect(console.get_by_test_id("archive-error")).to_contain_text("Enter a customer ID")
    # Latest N.
    await console.get_by_test_id("archive-customer").fill("")
    await console.get_by_test_id("archive-limit").select_option("10")
    await console.get_by_test_id("archive-submit").click()
    await expect(listed).to_have_count(2)
    await expect(console.locator(f"[data-testid=archive-item][data-chat-id='{other_id}']")).to_be_visible()

    # From a live chat of the same customer: "Archived chats of this customer".
    with httpx.Client(base_url=server.url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {customer['token']}"}
        new_chat = http.post("/api/chats", json={}, headers=auth).json()
        if new_chat["status"] == "bot":
            http.post(f"/api/chats/{new_chat['id']}/escalate", headers=auth)
    await console.get_by_test_id("view-chats").click()
    await ui.open_chat(console, new_chat["id"])
    await console.get_by_test_id("pane-archive").click()
    await expect(console.get_by_test_id("archive-view")).to_be_visible()
    await expect(console.get_by_test_id("archive-customer")).to_have_value(customer["user"]["id"])
    await expect(listed).to_have_count(1)
    await expect(listed).to_have_attribute("data-chat-id", chat_id)
