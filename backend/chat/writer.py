"""Group commit: concurrent messages are stored in one transaction, each acked after the commit."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from backend.chat.repository import ChatRepository
from backend.core.errors import AppError, ChatClosed, Invalid, NotFound, Unavailable
from backend.core.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass(frozen=True, slots=True)
class Sender:
    """Who writes a message, as shown to the others."""

    id: UUID
    role: str
    display_name: str
    username: str | None


@dataclass(slots=True)
class PendingMessage:
    """A message waiting for the next group commit."""

    chat_id: UUID
    sender: Sender
    kind: str
    text: str
    content: bytes
    key_id: str
    client_msg_id: str | None
    suggestion_id: int | None = None
    sources: list[dict[str, Any]] | None = None
    arrived: float = field(default_factory=time.monotonic)
    future: asyncio.Future[StoredMessage] | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A committed message; `created` is False when a resend found the stored one."""

    id: int
    seq: int
    chat_id: UUID
    created_at: datetime
    created: bool
    pending: PendingMessage


OnCommitted = Callable[[list[StoredMessage]], Awaitable[None]]


class MessageWriter:
    """One task that drains the pending messages into batched transactions."""

    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, on_committed: OnCommitted) -> None:
        self._pool = pool
        self._metrics = metrics
        self._on_committed = on_committed
        self._pending: list[PendingMessage] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._run(), name="message-writer")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    def submit(self, message: PendingMessage) -> asyncio.Future[StoredMessage]:
        """Queue a message for the next commit; the future resolves after it."""
        if self._closing:
            raise Unavailable("The server is shutting down; send again in a moment.")
        message.future = asyncio.get_running_loop().create_future()
        self._pending.append(message)
        self._wakeup.set()
        return message.future

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                stored = await self._write(batch)
            except Exception as exc:
                log.exception("group commit of %d messages failed", len(batch))
                error = Unavailable("The message could not be stored; send it again.")
                for message in batch:
                    _settle(message, error=error)
                if isinstance(exc, (OSError, asyncpg.InterfaceError)):
                    await asyncio.sleep(0.2)  # the database is away: do not spin
                continue
            self._metrics.batch_size.observe(len(batch))
            now = time.monotonic()
            for item in stored:
                if item.created:
                    self._metrics.commit_latency.observe(now - item.pending.arrived)
            try:
                await self._on_committed([item for item in stored if item.created])
            except Exception:
                log.exception("publishing committed messages failed")
            for item in stored:
                _settle(item.pending, result=item)

    async def _write(self, batch: list[PendingMessage]) -> list[StoredMessage]:
        """Store a batch in one transaction; per-message errors settle their future only."""
        results: list[StoredMessage] = []
        async with self._pool.acquire() as conn, conn.transaction():
            repo = ChatRepository(conn)
            chat_ids = sorted({m.chat_id for m in batch})
            chats = {row["id"]: row for row in await repo.lock_chats(chat_ids)}
            keyed = [m for m in batch if m.client_msg_id is not None]
            existing: dict[tuple[UUID, UUID, str], asyncpg.Record] = {}
            if keyed:
                rows = await repo.existing_messages(
                    [m.chat_id for m in keyed],
                    [m.sender.id for m in keyed],
                    [str(m.client_msg_id) for m in keyed],
                )
                existing = {(r["chat_id"], r["sender_id"], r["client_msg_id"]): r for r in rows}
            suggestion_ids = [m.suggestion_id for m in batch if m.suggestion_id is not None]
            suggestions = (
                {row["id"]: row for row in await repo.suggestions_of(suggestion_ids)}
                if suggestion_ids
                else {}
            )
            last_seq = {chat_id: row["last_seq"] for chat_id, row in chats.items()}
            to_insert: list[PendingMessage] = []
            first_in_batch: dict[tuple[UUID, UUID, str], PendingMessage] = {}
            duplicates_in_batch: list[tuple[PendingMessage, PendingMessage]] = []
            insert_rows: list[tuple[object, ...]] = []
            for message in batch:
                key = (message.chat_id, message.sender.id, message.client_msg_id or "")
                stored = existing.get(key) if message.client_msg_id is not None else None
                if stored is not None:
                    self._metrics.message_duplicates.inc()
                    results.append(
                        StoredMessage(
                            stored["id"], stored["seq"], message.chat_id, stored["created_at"], False, message
                        )
                    )
                    continue
                if message.client_msg_id is not None and key in first_in_batch:
                    duplicates_in_batch.append((message, first_in_batch[key]))
                    continue
                error = _refusal(message, chats.get(message.chat_id), suggestions)
                if error is not None:
                    _settle(message, error=error)
                    continue
                edited = None
                if message.suggestion_id is not None:
                    edited = message.text != suggestions[message.suggestion_id]["reply"]
                last_seq[message.chat_id] += 1
                if message.client_msg_id is not None:
                    first_in_batch[key] = message
                to_insert.append(message)
                insert_rows.append(
                    (
                        message.chat_id,
                        last_seq[message.chat_id],
                        message.sender.id,
                        message.kind,
                        message.content,
                        message.key_id,
                        message.client_msg_id,
                        message.suggestion_id,
                        edited,
                        json.dumps(message.sources) if message.sources is not None else None,
                    )
                )
            if insert_rows:
                inserted = await repo.insert_messages(insert_rows)
                touched = sorted({m.chat_id for m in to_insert})
                await repo.set_last_seq(touched, [last_seq[c] for c in touched])
                # RETURNING order is not promised; (chat_id, seq) is unique, so match on it.
                by_key = {(row["chat_id"], row["seq"]): row for row in inserted}
                for message, values in zip(to_insert, insert_rows, strict=True):
                    row = by_key[(message.chat_id, values[1])]
                    results.append(
                        StoredMessage(
                            row["id"], row["seq"], message.chat_id, row["created_at"], True, message
                        )
                    )
        stored_by_message = {id(r.pending): r for r in results}
        for duplicate, original in duplicates_in_batch:
            first = stored_by_message.get(id(original))
            if first is None:
                continue
            self._metrics.message_duplicates.inc()
            results.append(
                StoredMessage(first.id, first.seq, first.chat_id, first.created_at, False, duplicate)
            )
        return results


def _refusal(
    message: PendingMessage, chat: asyncpg.Record | None, suggestions: dict[int, asyncpg.Record]
) -> AppError | None:
    """Why a message may not be stored, or None."""
    if chat is None:
        return NotFound("No such chat.")
    if message.sender.role == "user" and chat["customer_id"] != message.sender.id:
        return NotFound("No such chat.")
    if chat["status"] == "closed":
        return ChatClosed()
    if message.suggestion_id is not None:
        suggestion = suggestions.get(message.suggestion_id)
        if suggestion is None or suggestion["chat_id"] != message.chat_id or message.sender.role == "user":
            return Invalid("suggestion_id: no such suggestion in this chat")
    return None


def _settle(
    message: PendingMessage, *, result: StoredMessage | None = None, error: BaseException | None = None
) -> None:
    future = message.future
    if future is None or future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
