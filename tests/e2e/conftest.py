"""Chromium for the end-to-end tests: one browser per session, fresh contexts per test.

The server itself (`live_server`, `make_supporter`) comes from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests cleanly where Debian's chromium is not installed."""
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return
    skip = pytest.mark.skip(reason="chromium not installed (make browser)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole run."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageProblems:
    """What a page did wrong: uncaught exceptions and Content-Security-Policy violations."""

    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.errors.append(f"CSP: {text}")

    def exception(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """Open a page in its own context (own storage, like another person's browser)."""
    contexts: list[BrowserContext] = []
    problems = PageProblems()

    async def _open(
        url: str,
        *,
        locale: str = "en-US",
        viewport: ViewportSize | None = None,
        setup: Callable[[Page], Awaitable[None]] | None = None,
    ) -> Page:
        context = await browser.new_context(
            locale=locale,
            viewport=viewport or ViewportSize(width=1200, height=860),
            timezone_id="Europe/Berlin",
        )
        context.set_default_timeout(15000)
        contexts.append(context)
        page = await context.new_page()
        page.on("console", problems.console)
        page.on("pageerror", problems.exception)
        if setup is not None:
            await setup(page)
        await page.goto(url)
        return page

    yield _open
    for context in contexts:
        await context.close()
    assert not problems.errors, problems.errors


@pytest.fixture
def base_url(live_server: Any) -> str:
    """The running server, without a trailing slash."""
    return str(live_server.url).rstrip("/")


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client against the server (for checks from outside the pages)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        yield client


@pytest.fixture
async def supporter_account(make_supporter: Callable[..., Any]) -> tuple[str, str]:
    """A fresh supporter account: (username, password)."""
    result = make_supporter()
    if inspect.isawaitable(result):
        result = await result
    username, password = result
    return username, password


async def wait_until(page: Page, predicate: str, arg: Any, timeout: float, failure: str) -> None:
    """Poll a JS predicate. (page.wait_for_function compiles its code with eval, which the
    pages' Content-Security-Policy forbids.)"""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await page.evaluate(predicate, arg):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(failure)
        await asyncio.sleep(0.05)


class ChatUI:
    """Steps a person takes on the two pages, and what they can read there."""

    def __init__(self, base_url: str, open_page: Callable[..., Awaitable[Page]]) -> None:
        self.base_url = base_url
        self.open_page = open_page

    async def start_customer(self, name: str, **page_options: Any) -> Page:
        """Open the customer page, start a chat and wait until it waits for a supporter."""
        page = await self.open_page(f"{self.base_url}/", **page_options)
        await page.get_by_test_id("guest-name").fill(name)
        await page.get_by_test_id("start-chat").click()
        status = page.get_by_test_id("chat-status")
        await status.and_(page.locator("[data-status]")).wait_for()
        if await status.get_attribute("data-status") == "bot":
            await page.get_by_test_id("escalate").click()
        await page.locator("[data-testid=chat-status][data-status=open]").wait_for()
        return page

    async def open_console(self, username: str, password: str, **page_options: Any) -> Page:
        """Open the console and sign in."""
        page = await self.open_page(f"{self.base_url}/console", **page_options)
        await self.console_login(page, username, password)
        return page

    @staticmethod
    async def console_login(page: Page, username: str, password: str) -> None:
        await page.get_by_test_id("login-username").fill(username)
        await page.get_by_test_id("login-password").fill(password)
        await page.get_by_test_id("login-submit").click()
        await page.locator("#console-view:not([hidden])").wait_for()
        await page.locator("[data-testid=connection-status][data-state=online]").wait_for()

    @staticmethod
    async def chat_id(page: Page) -> str:
        """The chat the customer page is in (it remembers it for reloads)."""
        return str(await page.evaluate("JSON.parse(localStorage.getItem('sc.customer')).chat_id"))

    @staticmethod
    async def token(page: Page) -> str:
        """The page's current session token."""
        key = "sc.console" if page.url.rstrip("/").endswith("/console") else "sc.customer"
        return str(await page.evaluate(f"JSON.parse(localStorage.getItem('{key}')).token"))

    @staticmethod
    async def open_chat(console: Page, chat_id: str) -> None:
        """Select a chat in the console (it has to be listed)."""
        item = console.locator(f"[data-testid=active-list] [data-chat-id='{chat_id}']")
        await item.click()
        await console.locator("#pane-chat:not([hidden])").wait_for()

    @staticmethod
    async def take_over(console: Page) -> None:
        await console.get_by_test_id("take-over").click()
        await console.locator("[data-testid=pane-status][data-status=assigned]").wait_for()
        await console.locator("[data-testid=message-input]:enabled").wait_for()

    @staticmethod
    async def send(page: Page, text: str) -> None:
        """Type a message and press Enter."""
        box = page.get_by_test_id("message-input")
        await box.fill(text)
        await box.press("Enter")

    @staticmethod
    async def wait_for_message(page: Page, text: str, timeout: float = 15.0) -> None:
        """Wait until a stored (not pending) message with exactly this text is shown."""
        await wait_until(
            page,
            """(text) => [...document.querySelectorAll('[data-testid=message] [data-testid=message-text]')]
                .some((el) => el.textContent === text)""",
            text,
            timeout,
            f"message {text!r} not shown",
        )

    @staticmethod
    async def rendered(page: Page) -> list[dict[str, Any]]:
        """The stored messages shown, in screen order: [{seq, text}]."""
        result = await page.evaluate(
            """() => [...document.querySelectorAll('[data-testid=transcript] [data-testid=message]')]
                .map((el) => ({seq: Number(el.dataset.seq),
                               text: el.querySelector('[data-testid=message-text]').textContent}))"""
        )
        return list(result)

    @staticmethod
    async def pending_count(page: Page) -> int:
        return int(await page.locator("[data-testid=pending-message]").count())


@pytest.fixture
def ui(base_url: str, open_page: Callable[..., Awaitable[Page]]) -> ChatUI:
    """Helpers to drive the customer page and the console."""
    return ChatUI(base_url, open_page)
