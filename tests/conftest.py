"""Shared fixtures: one embedded PostgreSQL per run, fresh databases from a migrated template,
and real uvicorn servers on 127.0.0.1 running in a thread of the test process."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import uvicorn

from backend.app import create_app
from backend.auth import service as auth_service
from backend.core import db
from backend.core.config import Settings
from backend.core.context import AppContext
from backend.core.server import uvicorn_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TEMPLATE_DB = "support_chat_template"
TEST_PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo configure_logging() after a test: its handlers would write to pytest's closed capture."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """An embedded PostgreSQL for the whole run, with a migrated template database."""
    # Not under pytest's temp root: pytest keeps that 0700, and PostgreSQL runs as another user.
    data_dir = Path(tempfile.mkdtemp(prefix="support-chat-test-pg-"))
    embedded = db.EmbeddedPostgres(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = embedded.start()

    async def allow_more_connections() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ALTER SYSTEM SET max_connections = 400")
        finally:
            await conn.close()

    # A run starts a few dozen servers, each with its pools: more than the default 100 connections.
    run_coroutine(allow_more_connections())
    embedded.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = embedded.start()

    async def prepare() -> None:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SHOW max_connections") == "400"
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(with_database(url, TEMPLATE_DB))
        try:
            await db.ensure_vector_extension(conn)
            await db.migrate(conn)
        finally:
            await conn.close()

    run_coroutine(prepare())
    yield url
    embedded.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion in a fresh thread (works inside and outside event loops)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def new_database(pg_server: str) -> Callable[[], str]:
    """Create a fresh database from the migrated template; returns its URL."""

    def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"

        async def clone() -> None:
            conn = await asyncpg.connect(pg_server)
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
            finally:
                await conn.close()

        run_coroutine(clone())
        return with_database(pg_server, name)

    return create


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn serving create_app(settings) on 127.0.0.1, in a thread of this process."""

    def __init__(self, settings: Settings, tls: tuple[str, str] | None = None) -> None:
        self.settings = settings
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}/ws"
        self.app = create_app(settings)
        certfile, keyfile = tls if tls else (None, None)
        self.server = uvicorn.Server(
            uvicorn_config(
                self.app,
                settings,
                host="127.0.0.1",
                port=self.port,
                ssl_certfile=certfile,
                ssl_keyfile=keyfile,
            )
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._serve, name=f"uvicorn-{self.port}", daemon=True)

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> LiveServer:
        """Start and wait until /readyz answers 200."""
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(self.url + "/readyz", timeout=2, verify=False).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            if not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        raise RuntimeError("the test server did not become ready")

    def stop(self) -> None:
        """Shut down gracefully."""
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def ctx(self) -> AppContext:
        """The running app's context."""
        ctx: AppContext = self.app.state.ctx
        return ctx

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's event loop and return its result."""
        assert self.loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=60)

    def make_staff(
        self,
        username: str | None = None,
        password: str = TEST_PASSWORD,
        role: str = "supporter",
        display_name: str | None = None,
    ) -> tuple[str, str]:
        """Create a supporter (or admin) account; returns (username, password)."""
        username = username or f"sup_{uuid.uuid4().hex[:8]}"
        self.run(
            auth_service.create_staff_user(
                self.ctx.pool,
                self.ctx.hasher,
                username=username,
                password=password,
                role=role,
                display_name=display_name or username.title(),
            )
        )
        return username, password


def server_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: its own database and data folder, fast bcrypt."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "bcrypt_rounds": 4,
        "db_pool_min": 1,
        "db_pool_max": 10,
        "log_level": "WARNING",
        # Test servers do not load the embedding model unless a test turns suggestions on.
        "suggestions_enabled": False,
        # Nor does the bot answer unless a test turns it on: new chats wait for a supporter.
        "bot_enabled": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def start_server(
    new_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveServer]]:
    """Start a live server with setting overrides; all are stopped at the end of the run."""
    servers: list[LiveServer] = []

    def start(tls: tuple[str, str] | None = None, **overrides: Any) -> LiveServer:
        database_url = overrides.pop("database_url", None) or new_database()
        data_dir = overrides.pop("data_dir", None) or tmp_path_factory.mktemp("data")
        settings = server_settings(database_url, data_dir, **overrides)
        server = LiveServer(settings, tls).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def live_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """The shared live server with default settings (but generous rate limits for the suite)."""
    return start_server(
        guest_rate_per_minute=100_000,
        http_message_rate=1000,
        http_message_burst=1000,
        # Many tests log in wrongly on purpose from 127.0.0.1; login limits have their own tests.
        login_address_failures=100_000,
        login_account_failures=100_000,
        # The shared server does not load the embedding model; suggestion tests start their own.
        suggestions_enabled=False,
    )


@pytest.fixture(scope="session")
def make_supporter(live_server: LiveServer) -> Callable[..., tuple[str, str]]:
    """Create a supporter account on the shared live server."""
    return live_server.make_staff


class Api:
    """A small synchronous client of the HTTP API for tests."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def guest(self, name: str = "Anna Kunde") -> dict[str, Any]:
        """A new guest session."""
        response = self.http.post("/api/auth/guest", json={"display_name": name})
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session

    def login(self, username: str, password: str) -> dict[str, Any]:
        """A staff or customer session."""
        response = self.http.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        session: dict[str, Any] = response.json()
        return session

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """Any request, with a bearer token when given."""
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kwargs)

    def new_chat(self, token: str) -> dict[str, Any]:
        """A new chat of a customer."""
        response = self.call("POST", "/api/chats", token, json={})
        assert response.status_code == 201, response.text
        chat: dict[str, Any] = response.json()
        return chat


@pytest.fixture(scope="session")
def api(live_server: LiveServer) -> Iterator[Api]:
    """An HTTP client of the shared live server."""
    client = Api(live_server.url)
    yield client
    client.http.close()


@pytest.fixture(scope="session")
def supporter(live_server: LiveServer, api: Api) -> dict[str, Any]:
    """A logged-in supporter session on the shared live server."""
    username, password = live_server.make_staff()
    return api.login(username, password)


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[Any]:
    """An OpenAI-compatible fake model server on 127.0.0.1 (tests/fake_llm.py)."""
    from tests.fake_llm import FakeLlm

    llm = FakeLlm().start()
    yield llm
    llm.stop()
