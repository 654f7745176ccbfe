"""The archive: closed chats move to a second database, exactly once; supporters read them
there; an admin purges a customer from both databases."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

import asyncpg

from backend.archive.repository import ArchiveRepository, ServerRepository, SourceRepository
from backend.archive.schemas import ArchivedChatRead, ArchivedChatSummaryRead, PurgeRead
from backend.auth import service as auth_service
from backend.auth.schemas import UserRead
from backend.auth.service import CurrentUser
from backend.chat.schemas import ChatRead, MessageRead, SourceRead
from backend.chat.views import UNREADABLE_TEXT
from backend.core import audit, db
from backend.core.config import Settings
from backend.core.context import AppContext
from backend.core.crypto import DecryptionError, KeyRing
from backend.core.errors import Forbidden, Invalid, NotFound, Unavailable
from backend.core.pubsub import Broker, Event
from backend.core.timefmt import local

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "backend.archive.migrations"
# The layout of chat_content; readers can tell old documents apart if it ever changes.
DOCUMENT_FORMAT = 1
# The first pass after start runs this soon (or after the interval, if that is shorter).
FIRST_PASS_DELAY_SECONDS = 10.0

Progress = Callable[[int, int], None]


class ArchiveConfigError(RuntimeError):
    """The archive database cannot be reached or created."""


@dataclass
class ArchiveResult:
    """What one archiving pass did."""

    chats: int = 0
    messages: int = 0
    batches: int = 0
    skipped: bool = False
    seconds: float = 0.0


# --------------------------------------------------------------------------- the archive database


def _with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("dbname", "database")
    ]
    return urlunsplit(parts._replace(path=f"/{name}", query=urlencode(query)))


async def archive_database_url(settings: Settings, main_url: str) -> str:
    """ARCHIVE_DATABASE_URL, or `<main database>_archive` on the main server, created if missing."""
    if settings.archive_database_url is not None:
        return settings.archive_database_url.get_secret_value()
    conn = await asyncpg.connect(main_url)
    try:
        server = ServerRepository(conn)
        name = f"{await server.current_database()}_archive"
        if not await server.database_exists(name):
            try:
                await server.create_database(name)
                log.info("created the archive database %s", name)
            except asyncpg.DuplicateDatabaseError:
                pass  # another node created it a moment ago
            except asyncpg.InsufficientPrivilegeError as exc:
                raise ArchiveConfigError(
                    f"the archive database {name!r} does not exist and this database role may not "
                    "create it: create it (CREATE DATABASE) or set ARCHIVE_DATABASE_URL"
                ) from exc
    finally:
        await conn.close()
    return _with_database(main_url, name)


async def open_archive_pool(settings: Settings, main_url: str, *, max_size: int = 4) -> asyncpg.Pool:
    """Find or create the archive database, apply its migrations, and open a pool on it."""
    url = await archive_database_url(settings, main_url)
    try:
        await db.wait_for_database(url, attempts=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ArchiveConfigError(f"the archive database is not reachable: {exc}") from exc
    pool = await db.create_pool(url, min_size=1, max_size=max_size)
    async with pool.acquire() as conn:
        await db.migrate(conn, db.load_migrations(MIGRATIONS_PACKAGE))
    return pool


# --------------------------------------------------------------------------- the document


def _iso(value: datetime | None) -> str | None:
    return None if value is None else local(value).isoformat()


def _person(row: asyncpg.Record, prefix: str, user_id: UUID | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    return {
        "id": str(user_id),
        "username": row[f"{prefix}_username"],
        "display_name": row[f"{prefix}_display_name"],
        "role": row[f"{prefix}_role"],
    }


def _message_document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "seq": row["seq"],
        "sender": _person(row, "u", row["u_id"]),
        "kind": row["kind"],
        "created_at": _iso(row["created_at"]),
        "client_msg_id": row["client_msg_id"],
        "sources": row["sources"],
        "suggestion_id": row["suggestion_id"],
        "suggestion_edited": row["suggestion_edited"],
        # Still encrypted: nonce + ciphertext + tag, bound to (chat id, sender id).
        "content": base64.b64encode(row["content"]).decode("ascii"),
        "key_id": row["key_id"],
    }


def chat_document(chat: asyncpg.Record, messages: list[asyncpg.Record]) -> dict[str, Any]:
    """A chat row with its people and message rows as stored in `chat_content`."""
    return {
        "format": DOCUMENT_FORMAT,
        "id": str(chat["id"]),
        "status": chat["status"],
        "created_at": _iso(chat["created_at"]),
        "assigned_at": _iso(chat["assigned_at"]),
        "closed_at": _iso(chat["closed_at"]),
        "escalation_reason": chat["escalation_reason"],
        "last_seq": chat["last_seq"],
        "customer": _person(chat, "c", chat["customer_id"]),
        "supporter": _person(chat, "s", chat["supporter_id"]),
        "messages": [_message_document(row) for row in messages],
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- the pass


async def _archive_batch(
    main_conn: asyncpg.Connection, archive_conn: asyncpg.Connection, older_than: timedelta, batch_size: int
) -> tuple[int, int]:
    """Move one batch; returns (chats, messages) moved."""
    source = SourceRepository(main_conn)
    async with main_conn.transaction():
        chats = await source.claim_closed_chats(older_than, batch_size)
        if not chats:
            return 0, 0
        ids = [chat["id"] for chat in chats]
        by_chat: dict[UUID, list[asyncpg.Record]] = {chat_id: [] for chat_id in ids}
        messages = await source.messages_of(ids)
        for message in messages:
            by_chat[message["chat_id"]].append(message)
        contents = [_dumps(chat_document(chat, by_chat[chat["id"]])) for chat in chats]
        # One statement, committed on its own before anything is deleted below: a pass that
        # dies after this line leaves the chats in both databases, and the next pass writes
        # nothing new (ON CONFLICT DO NOTHING) and deletes them. Nothing is lost or doubled.
        await ArchiveRepository(archive_conn).insert(
            ids, [chat["customer_id"] for chat in chats], [chat["supporter_id"] for chat in chats], contents
        )
        deleted = await source.delete_chats(ids)
    return deleted, len(messages)


async def archive_pass(
    main_pool: asyncpg.Pool,
    archive_pool: asyncpg.Pool,
    *,
    older_than: timedelta,
    batch_size: int,
    progress: Progress | None = None,
    exclusive: bool = True,
) -> ArchiveResult:
    """Move every chat closed longer ago than `older_than` to the archive, in batches.

    With `exclusive` (the default) a pass runs only when no other holds the archiving lock;
    otherwise it returns at once with `skipped`. Without it several passes share the work:
    each batch's rows are claimed with SKIP LOCKED, so no chat is moved twice either way.
    """
    started = time.perf_counter()
    result = ArchiveResult()
    async with main_pool.acquire() as main_conn, archive_pool.acquire() as archive_conn:
        source = SourceRepository(main_conn)
        if exclusive and not await source.try_lock():
            result.skipped = True
            return result
        try:
            while True:
                chats, messages = await _archive_batch(main_conn, archive_conn, older_than, batch_size)
                if chats == 0:
                    break
                result.chats += chats
                result.messages += messages
                result.batches += 1
                if progress is not None:
                    progress(chats, result.chats)
        finally:
            result.seconds = time.perf_counter() - started
            await _finish_pass(source, result, exclusive)
    return result


async def _finish_pass(source: SourceRepository, result: ArchiveResult, exclusive: bool) -> None:
    """Record the pass in the audit log and release the lock, also after a failed batch."""
    try:
        if result.chats:
            await audit.record(
                source.conn,
                "chats_archived",
                details={"count": result.chats, "messages": result.messages, "batches": result.batches},
            )
        if exclusive:
            await source.unlock()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        # A broken session has lost its lock already; the pool resets or drops the connection.
        log.warning("could not close the archiving pass cleanly", exc_info=True)


async def run_periodically(ctx: AppContext) -> None:
    """Archive shortly after start and then every ARCHIVE_INTERVAL_SECONDS; never raises."""
    settings = ctx.settings
    await asyncio.sleep(min(float(settings.archive_interval_seconds), FIRST_PASS_DELAY_SECONDS))
    while True:
        if ctx.archive_pool is not None:
            try:
                result = await archive_pass(
                    ctx.pool,
                    ctx.archive_pool,
                    older_than=timedelta(days=settings.archive_after_days),
                    batch_size=settings.archive_batch_size,
                )
                if result.chats:
                    log.info(
                        "archived %d chats with %d messages in %.1f s",
                        result.chats,
                        result.messages,
                        result.seconds,
                    )
            except Exception:
                log.exception("archiving pass failed; the next one retries")
        await asyncio.sleep(settings.archive_interval_seconds)


# --------------------------------------------------------------------------- reading


async def key_usage(archive_pool: asyncpg.Pool) -> dict[str, int]:
    """Archived messages per message key id."""
    async with archive_pool.acquire() as conn:
        return await ArchiveRepository(conn).key_usage()


def _archive_pool(ctx: AppContext) -> asyncpg.Pool:
    if ctx.archive_pool is None:
        raise Unavailable("The archive is not available.")
    return ctx.archive_pool


def _user(doc: dict[str, Any] | None) -> UserRead | None:
    return None if doc is None else UserRead.model_validate(doc)


def _chat_read(doc: dict[str, Any]) -> ChatRead:
    customer = _user(doc["customer"])
    assert customer is not None
    return ChatRead(
        id=UUID(doc["id"]),
        status=doc["status"],
        customer=customer,
        supporter=_user(doc["supporter"]),
        created_at=datetime.fromisoformat(doc["created_at"]),
        closed_at=datetime.fromisoformat(doc["closed_at"]) if doc["closed_at"] else None,
        last_seq=doc["last_seq"],
        escalation_reason=doc["escalation_reason"],
    )


def _message_read(keyring: KeyRing, chat_id: UUID, doc: dict[str, Any]) -> MessageRead:
    sender = _user(doc["sender"])
    assert sender is not None
    try:
        text = keyring.decrypt(base64.b64decode(doc["content"]), doc["key_id"], chat_id, sender.id)
    except DecryptionError:
        log.error("archived message %s does not decrypt with key %s", doc["id"], doc["key_id"])
        text = UNREADABLE_TEXT
    sources = doc.get("sources")
    return MessageRead(
        id=doc["id"],
        seq=doc["seq"],
        chat_id=chat_id,
        sender=sender,
        text=text,
        created_at=datetime.fromisoformat(doc["created_at"]),
        client_msg_id=doc["client_msg_id"],
        kind=doc["kind"],
        sources=None if sources is None else [SourceRead.model_validate(item) for item in sources],
    )


def _ensure_staff(user: CurrentUser) -> None:
    if not user.is_staff:
        raise Forbidden("Only supporters can read the archive.")


async def get_archived_chat(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> ArchivedChatRead:
    """An archived chat with its messages decrypted, in seq order (supporters and admins)."""
    _ensure_staff(user)
    async with _archive_pool(ctx).acquire() as conn:
        row = await ArchiveRepository(conn).get(chat_id)
    if row is None:
        raise NotFound("No such archived chat.")
    doc: dict[str, Any] = row["chat_content"]
    messages = sorted(doc["messages"], key=lambda item: item["seq"])
    return ArchivedChatRead(
        chat=_chat_read(doc),
        messages=[_message_read(ctx.keyring, row["id"], item) for item in messages],
        archived_at=local(row["archived_at"]),
    )


async def list_archived_chats(
    ctx: AppContext, user: CurrentUser, customer_id: UUID | None, limit: int
) -> list[ArchivedChatSummaryRead]:
    """Archived chats, newest archived first, optionally of one customer (supporters and admins)."""
    _ensure_staff(user)
    async with _archive_pool(ctx).acquire() as conn:
        rows = await ArchiveRepository(conn).newest(customer_id, limit)
    return [
        ArchivedChatSummaryRead(chat=_chat_read(row["chat_content"]), archived_at=local(row["archived_at"]))
        for row in rows
    ]


# --------------------------------------------------------------------------- purge


async def purge_customer(
    main_pool: asyncpg.Pool,
    archive_pool: asyncpg.Pool,
    broker: Broker | None,
    customer_id: UUID,
    *,
    actor_id: UUID | None = None,
) -> PurgeRead:
    """Erase a customer: their chats and messages in both databases, invitations, tokens and
    the account itself (anonymised instead if other rows still point to it)."""
    async with main_pool.acquire() as conn, conn.transaction():
        source = SourceRepository(conn)
        role = await source.lock_user(customer_id)
        if role is None:
            raise NotFound("No such customer.")
        if role != "user":
            raise Invalid(f"Only customers can be purged; this account is a {role}.")
        # Locked chats cannot be archived meanwhile (a running batch holding one is awaited),
        # and the locked user row keeps new chats out until this transaction ends.
        chat_ids = await source.lock_customer_chats(customer_id)
        messages = await source.count_messages(chat_ids)
        # The archive first: should the main transaction fail after this, the customer still
        # exists and purging again finishes the job.
        async with archive_pool.acquire() as archive_conn:
            archived, archived_messages = await ArchiveRepository(archive_conn).delete_customer(customer_id)
        chats = await source.delete_chats(chat_ids)
        await source.delete_customer_rows(customer_id)
        user_deleted = True
        try:
            async with conn.transaction():
                await source.delete_user(customer_id)
        except asyncpg.ForeignKeyViolationError:
            user_deleted = False
            await source.anonymise_user(customer_id)
        result = PurgeRead(
            chats_deleted=chats,
            archived_chats_deleted=archived,
            messages_deleted=messages + archived_messages,
            user_deleted=user_deleted,
        )
        await audit.record(
            conn, "customer_purged", actor_id=actor_id, target=str(customer_id), details=result.model_dump()
        )
    if broker is not None:
        try:
            await broker.publish(auth_service.user_channel(customer_id), Event(revoke_jti="*"))
        except Exception:
            # The tokens are gone: a socket that misses this closes at its next token check.
            log.exception("could not tell the purged customer's sockets to close")
    return result


async def purge(ctx: AppContext, admin: CurrentUser, customer_id: UUID) -> PurgeRead:
    """An admin erases a customer from both databases and closes their sockets."""
    if admin.role != "admin":
        raise Forbidden("Only admins can purge a customer.")
    return await purge_customer(ctx.pool, _archive_pool(ctx), ctx.broker, customer_id, actor_id=admin.id)
