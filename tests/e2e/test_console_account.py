"""The console's account menu: change password, sign out everywhere, and the admin panel."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e


async def open_menu_item(page: Page, test_id: str) -> None:
    await page.get_by_test_id("account-menu").click()
    await expect(page.get_by_test_id("account-menu")).to_have_attribute("aria-expanded", "true")
    await page.get_by_test_id(test_id).click()


async def expect_sign_in_prompt(page: Page) -> None:
    await expect(page.get_by_test_id("reauth-dialog")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "auth")


async def change_password(page: Page, current: str, new: str, repeat: str | None = None) -> None:
    await page.get_by_test_id("password-current").fill(current)
    await page.get_by_test_id("password-new").fill(new)
    await page.get_by_test_id("password-repeat").fill(new if repeat is None else repeat)
    await page.get_by_test_id("password-submit").click()


async def test_changing_the_password_ends_the_other_session_and_the_new_one_works(
    ui: ChatUI, supporter_account: tuple[str, str], http: httpx.AsyncClient
) -> None:
    username, password = supporter_account
    new_password = "neues Passwort ✓ 2"
    here = await ui.open_console(username, password)
    elsewhere = await ui.open_console(username, password)

    await open_menu_item(here, "account-password")
    dialog = here.get_by_test_id("password-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("8 to 72 bytes")
    await expect(here.get_by_test_id("password-current")).to_be_focused()

    # A wrong current password: the server's 403 detail, and no sign-in prompt for it.
    await change_password(here, "not my password", new_password)
    await expect(here.get_by_test_id("password-error")).to_have_text(
        "Not changed: The current password is wrong."
    )
    await expect(here.get_by_test_id("reauth-dialog")).to_be_hidden()
    # Too short: the server's 422 detail.
    await change_password(here, password, "short")
    await expect(here.get_by_test_id("password-error")).to_contain_text(
        "Not changed: password: must be at least 8"
    )
    # Too long in bytes (30 characters, 90 bytes): refused, with the byte count shown while typing.
    await here.get_by_test_id("password-new").fill("€" * 30)
    await expect(here.get_by_test_id("password-bytes")).to_have_text("90 of at most 72 bytes")
    await change_password(here, password, "€" * 30)
    await expect(here.get_by_test_id("password-error")).to_contain_text("at most 72 bytes")
    # The two new ones differ: said before anything is sent.
    await change_password(here, password, new_password, repeat=new_password + "x")
    await expect(here.get_by_test_id("password-error")).to_have_text(
        "The two new passwords are not the same."
    )

    await change_password(here, password, new_password)
    await expect(dialog).to_be_hidden()
    await expect(here.get_by_test_id("account-notice")).to_contain_text("Your password was changed")

    # The other browser of the same supporter is asked to sign in again ...
    await expect_sign_in_prompt(elsewhere)
    # ... and only the new password lets it in.
    await elsewhere.get_by_test_id("reauth-password").fill(password)
    await elsewhere.get_by_test_id("reauth-submit").click()
    await expect(elsewhere.get_by_test_id("reauth-error")).to_be_visible()
    await elsewhere.get_by_test_id("reauth-password").fill(new_password)
    await elsewhere.get_by_test_id("reauth-submit").click()
    await expect(elsewhere.get_by_test_id("reauth-dialog")).to_be_hidden()
    await expect(elsewhere.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")

    # This browser stayed signed in all along.
    await expect(here.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    await expect(here.get_by_test_id("reauth-dialog")).to_be_hidden()
    old = await http.post("/api/auth/login", json={"username": username, "password": password})
    assert old.status_code == 401, old.text
    new = await http.post("/api/auth/login", json={"username": username, "password": new_password})
    assert new.status_code == 200, new.text


async def test_signing_out_everywhere_ends_every_session(
    ui: ChatUI, supporter_account: tuple[str, str]
) -> None:
    here = await ui.open_console(*supporter_account)
    elsewhere = await ui.open_console(*supporter_account)

    await open_menu_item(here, "account-logout-all")
    await expect(here.get_by_test_id("confirm-logout-all")).to_be_visible()
    await here.get_by_test_id("confirm-logout-all-yes").click()
    await expect(here.get_by_test_id("login-form")).to_be_visible()
    await expect(here.get_by_test_id("account-notice")).to_have_text("You were signed out on every device.")
    # Signing out here is no "session ended" prompt here, but it is one everywhere else.
    await expect(here.get_by_test_id("reauth-dialog")).to_be_hidden()
    await expect_sign_in_prompt(elsewhere)


async def test_an_admin_disables_a_supporter_whose_console_then_asks_to_sign_in(
    ui: ChatUI, make_supporter: Callable[..., Any], http: httpx.AsyncClient
) -> None:
    admin_name, admin_password = make_supporter(role="admin", display_name="Ada Admin")
    victim_name, victim_password = make_supporter(display_name="Sven Sperre")
    supporter = await ui.open_console(victim_name, victim_password)
    # Supporters have no admin panel.
    await expect(supporter.get_by_test_id("view-admin")).to_be_hidden()
    await supporter.get_by_test_id("account-menu").click()
    await expect(supporter.get_by_test_id("account-admin")).to_be_hidden()
    await expect(supporter.get_by_test_id("account-logout-all")).to_be_visible()
    await supporter.keyboard.press("Escape")
    await expect(supporter.get_by_test_id("account-menu-panel")).to_be_hidden()

    admin = await ui.open_console(admin_name, admin_password)
    await open_menu_item(admin, "account-admin")
    await expect(admin.get_by_test_id("admin-view")).to_be_visible()
    await expect(admin.get_by_test_id("view-admin")).to_have_attribute("aria-current", "page")
    row = admin.locator(f"[data-testid=admin-user][data-username='{victim_name}']")
    await expect(row).to_contain_text("Sven Sperre")
    await expect(row.get_by_test_id("admin-user-state")).to_have_text("Active")
    # Admins cannot disable themselves: no button in their own row.
    own = admin.locator(f"[data-testid=admin-user][data-username='{admin_name}']")
    await expect(own).to_contain_text("(you)")
    await expect(own.locator("button")).to_have_count(0)

    await row.get_by_test_id("admin-disable").click()
    await expect(row.get_by_test_id("admin-user-state")).to_have_text("Disabled")
    await expect(row.get_by_test_id("admin-enable")).to_be_visible()

    # The supporter's console loses its session at once and cannot sign in while disabled.
    await expect_sign_in_prompt(supporter)
    await supporter.get_by_test_id("reauth-password").fill(victim_password)
    await supporter.get_by_test_id("reauth-submit").click()
    await expect(supporter.get_by_test_id("reauth-error")).to_be_visible()

    # The audit shows who did it to whom, when, from where.
    event = admin.locator("[data-testid=audit-row][data-action=user_disabled]").first
    await expect(event).to_contain_text("User disabled")
    await expect(event).to_contain_text(admin_name)
    await expect(event).to_contain_text(victim_name)

    # Enabled again, the supporter signs in and goes on.
    await row.get_by_test_id("admin-enable").click()
    await expect(row.get_by_test_id("admin-user-state")).to_have_text("Active")
    await expect(admin.locator("[data-testid=audit-row][data-action=user_enabled]").first).to_be_visible()
    await supporter.get_by_test_id("reauth-password").fill(victim_password)
    await supporter.get_by_test_id("reauth-submit").click()
    await expect(supporter.get_by_test_id("reauth-dialog")).to_be_hidden()
    await expect(supporter.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")


async def test_the_audit_pages_back_with_load_older(
    ui: ChatUI, make_supporter: Callable[..., Any], http: httpx.AsyncClient
) -> None:
    admin_name, admin_password = make_supporter(role="admin")
    # More failed sign-ins than one page holds (50).
    for _ in range(60):
        response = await http.post(
            "/api/auth/login",
            json={"username": f"nobody_{uuid.uuid4().hex[:6]}", "password": "wrong password"},
        )
        assert response.status_code == 401, response.text
    admin = await ui.open_console(admin_name, admin_password)
    await admin.get_by_test_id("view-admin").click()
    rows = admin.locator("[data-testid=audit-row]")
    await expect(rows.first).to_be_visible()
    await admin.get_by_test_id("audit-action").select_option("login_failed")
    await expect(rows).to_have_count(50)
    await expect(admin.locator("[data-testid=audit-row]:not([data-action=login_failed])")).to_have_count(0)
    await expect(rows.first).to_contain_text("127.0.0.1")
    first_page = [int(i) for i in await rows.evaluate_all("(rows) => rows.map((r) => r.dataset.id)")]

    await admin.get_by_test_id("audit-older").click()
    await expect(rows).not_to_have_count(50)
    ids = [int(i) for i in await rows.evaluate_all("(rows) => rows.map((r) => r.dataset.id)")]
    assert ids[:50] == first_page
    assert len(ids) > 50 and ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
