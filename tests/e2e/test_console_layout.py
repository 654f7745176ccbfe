"""The console's new parts in German, on a phone, and with the keyboard alone."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect

from .conftest import ChatUI

pytestmark = pytest.mark.e2e

PHONE = ViewportSize(width=375, height=740)
# Set CONSOLE_SHOTS=/some/dir to keep screenshots of each part for a look by eye.
SHOTS = os.environ.get("CONSOLE_SHOTS")


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def no_horizontal_scroll(page: Page, where: str) -> None:
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{where}: page is {widths[0]}px wide on a {widths[1]}px screen"


async def within_screen(locator: Locator, where: str) -> None:
    box = await locator.bounding_box()
    assert box is not None, f"{where} is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, f"{where} sticks out: {box}"


async def test_the_new_parts_speak_german(ui: ChatUI, make_supporter: Callable[..., Any]) -> None:
    admin = await ui.open_console(*make_supporter(role="admin"), locale="de-DE")
    await expect(admin.locator("html")).to_have_attribute("lang", "de")
    await expect(admin.locator("label[for=filter-name]")).to_have_text("Name des Kunden")
    await expect(admin.get_by_test_id("filter-name")).to_have_attribute("placeholder", "Nach Namen filtern…")
    options = await admin.get_by_test_id("filter-status").locator("option").all_text_contents()
    assert options == ["Alle", "Wartend", "Beim Bot", "Zugewiesen", "Meine"]
    await expect(admin.get_by_test_id("view-chats")).to_have_text("Chats")
    await expect(admin.get_by_test_id("view-archive")).to_have_text("Archiv")
    await expect(admin.get_by_test_id("view-admin")).to_have_text("Verwaltung")

    await admin.locator("#invite-box summary").click()
    await admin.get_by_test_id("invite-name").fill("Kunde Deutsch")
    await admin.get_by_test_id("invite-create").click()
    await expect(admin.get_by_test_id("invite-copy")).to_have_text("Kopieren")
    await expect(admin.get_by_test_id("invite-result")).to_contain_text(
        "Senden Sie diesen Link an den Kunden:"
    )
    # (The invitation made a chat, so the filter has one to hide.)
    await admin.get_by_test_id("filter-name").fill(uuid.uuid4().hex)
    await expect(admin.get_by_test_id("active-list")).to_contain_text("Kein Chat passt zum Filter")
    await expect(admin.get_by_test_id("filter-clear")).to_have_text("Filter zurücksetzen")

    await admin.get_by_test_id("account-menu").click()
    await expect(admin.get_by_test_id("account-menu")).to_have_text("Konto")
    await expect(admin.get_by_test_id("account-password")).to_have_text("Passwort ändern")
    await expect(admin.get_by_test_id("account-logout-all")).to_have_text("Überall abmelden")
    await expect(admin.get_by_test_id("account-admin")).to_have_text("Verwaltung")
    await admin.get_by_test_id("account-password").click()
    dialog = admin.get_by_test_id("password-dialog")
    await expect(dialog.get_by_role("heading")).to_have_text("Passwort ändern")
    await expect(dialog).to_contain_text("8 bis 72 Bytes")
    await expect(dialog.get_by_text("Aktuelles Passwort", exact=True)).to_be_visible()
    await admin.get_by_test_id("password-new").fill("äöü")
    await expect(admin.get_by_test_id("password-bytes")).to_have_text("6 von höchstens 72 Bytes")
    await admin.get_by_test_id("password-cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(admin.get_by_test_id("account-menu")).to_be_focused()

    await admin.get_by_test_id("view-archive").click()
    await expect(admin.get_by_test_id("archive-view").get_by_role("heading", name="Archiv")).to_be_visible()
    await expect(admin.get_by_test_id("archive-submit")).to_have_text("Suchen")
    await expect(admin.get_by_text("Kunden-ID (optional)")).to_be_visible()
    await expect(admin.get_by_test_id("archive-pane-empty")).to_have_text(
        "Wählen Sie einen archivierten Chat aus, um ihn zu lesen."
    )

    await admin.get_by_test_id("view-admin").click()
    await expect(admin.get_by_role("heading", name="Benutzer")).to_be_visible()
    await expect(admin.get_by_role("heading", name="Neueste Sicherheitsereignisse")).to_be_visible()
    await expect(admin.get_by_role("columnheader", name="Benutzername")).to_be_attached()
    await expect(admin.locator("[data-testid=audit-row][data-action=login_ok]").first).to_contain_text(
        "Angemeldet"
    )
    await expect(admin.get_by_test_id("audit-action").locator("option").first).to_have_text("Alle Aktionen")

    # Switching the language re-renders what is already shown.
    await admin.get_by_test_id("lang-select").select_option("en")
    await expect(admin.get_by_role("heading", name="Latest security events")).to_be_visible()
    await expect(admin.locator("[data-testid=audit-row][data-action=login_ok]").first).to_contain_text(
        "Signed in"
    )
    await expect(admin.get_by_test_id("view-admin")).to_have_text("Admin")


async def test_the_new_parts_fit_a_phone(ui: ChatUI, make_supporter: Callable[..., Any]) -> None:
    page = await ui.open_console(*make_supporter(role="admin"), viewport=PHONE)
    await no_horizontal_scroll(page, "chats")
    await within_screen(page.get_by_test_id("filter-name"), "the name filter")
    await within_screen(page.get_by_test_id("filter-status"), "the status filter")
    await page.get_by_test_id("filter-status").select_option("mine")
    await no_horizontal_scroll(page, "filtered chats")

    await page.locator("#invite-box summary").click()
    await page.get_by_test_id("invite-name").fill("Kim Telefon")
    await page.get_by_test_id("invite-create").click()
    await expect(page.get_by_test_id("invite-url")).to_be_visible()
    await within_screen(page.get_by_test_id("invite-url"), "the invitation link")
    await within_screen(page.get_by_test_id("invite-copy"), "the Copy button")
    await no_horizontal_scroll(page, "invitation")
    await shot(page, "phone-chats")

    await page.get_by_test_id("account-menu").click()
    await within_screen(page.get_by_test_id("account-menu-panel"), "the account menu")
    await no_horizontal_scroll(page, "account menu")
    await shot(page, "phone-menu")
    await page.get_by_test_id("account-password").click()
    await within_screen(page.get_by_test_id("password-dialog"), "the password dialog")
    await within_screen(page.get_by_test_id("password-submit"), "the password button")
    await shot(page, "phone-password")
    await page.get_by_test_id("password-cancel").click()

    await page.get_by_test_id("view-archive").click()
    await expect(page.get_by_test_id("archive-list")).to_contain_text("No archived chats found.")
    await within_screen(page.get_by_test_id("archive-customer"), "the archive search")
    await no_horizontal_scroll(page, "archive")
    await shot(page, "phone-archive")

    await page.get_by_test_id("view-admin").click()
    await expect(page.locator("[data-testid=audit-row]").first).to_be_visible()
    await expect(page.locator("[data-testid=admin-user]").first).to_be_visible()
    await within_screen(page.locator("[data-testid=admin-user]").first, "a user row")
    await within_screen(page.locator("[data-testid=audit-row]").first, "an audit row")
    await no_horizontal_scroll(page, "admin")
    await shot(page, "phone-admin")


async def test_the_account_menu_and_filter_work_with_the_keyboard(
    ui: ChatUI, supporter_account: tuple[str, str]
) -> None:
    page = await ui.open_console(*supporter_account)
    await page.get_by_test_id("account-menu").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("account-password")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_test_id("account-logout-all")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("account-menu-panel")).to_be_hidden()
    await expect(page.get_by_test_id("account-menu")).to_be_focused()
    await expect(page.get_by_test_id("account-menu")).to_have_attribute("aria-expanded", "false")

    await page.keyboard.press("Enter")
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("password-dialog")).to_be_visible()
    await expect(page.get_by_test_id("password-current")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("password-dialog")).to_be_hidden()

    await page.get_by_test_id("filter-name").focus()
    await page.keyboard.type("nobody has this name")
    await expect(page.get_by_test_id("filter-clear")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_test_id("filter-name")).to_have_value("")
    await expect(page.get_by_test_id("filter-clear")).to_be_hidden()
    await shot(page, "desktop-chats")
