"""Group commit: concurrent messages are stored in one transaction, each acked after the commit."""

from __future__ import annotations

import asyncio
import functools
import hashlib
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
PIPELINE_DEPTH = 3


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
        in_flight: set[asyncio.Task[None]] = set()
        busy_chats: set[UUID] = set()
        while True:
            batch = self._take_batch(busy_chats) if len(in_flight) < PIPELINE_DEPTH else []
            if not batch:
                if self._closing and not self._pending and not in_flight:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            chats = {m.chat_id for m in batch}
            busy_chats |= chats
            task = asyncio.create_task(self._commit(batch))
            in_flight.add(task)
            task.add_done_callback(
                functools.partial(self._finished, chats=chats, in_flight=in_flight, busy=busy_chats)
            )

    def _take_batch(self, busy_chats: set[UUID]) -> list[PendingMessage]:
        """The next batch: pending messages of chats with no batch in flight, in arrival order.

        Several batches overlap their round trips, but never two for one chat: a chat's
        messages get their seq in the order they arrived.
        """
        batch: list[PendingMessage] = []
        rest: list[PendingMessage] = []
        for message in self._pending:
            if len(batch) < MAX_BATCH and message.chat_id not in busy_chats:
                batch.append(message)
            else:
                rest.append(message)
        self._pending = rest
        return batch

    def _finished(
        self,
        task: asyncio.Task[None],
        *,
        chats: set[UUID],
        in_flight: set[asyncio.Task[None]],
        busy: set[UUID],
    ) -> None:
        in_flight.discard(task)
        busy -= chats
        self._wakeup.set()

    async def _commit(self, batch: list[PendingMessage]) -> None:
        try:
            stored = await self._write(batch)
        except asyncpg.PostgresError as exc:
            if len(batch) > 1 and not isinstance(exc, asyncpg.exceptions.PostgresConnectionError):
                # One message the database refuses must not take its batch-mates down: split and retry.
                half = len(batch) // 2
                await self._commit(batch[:half])
                await self._commit(batch[half:])
                return
            log.error("storing a message failed: %s", type(exc).__name__)
            for message in batch:
                _settle(message, error=Unavailable("The message could not be stored; send it again."))
            return
        except Exception as exc:
            log.exception("group commit of %d messages failed", len(batch))
            error = Unavailable("The message could not be stored; send it again.")
            for message in batch:
                _settle(message, error=error)
            if isinstance(exc, (OSError, asyncpg.InterfaceError)):
                await asyncio.sleep(0.2)  # the database is away: do not spin
            return
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
        """Store a batch in one statement; per-message refusals settle their future only."""
        values = [
            (
                m.chat_id,
                m.sender.id,
                m.sender.role,
                m.kind,
                m.content,
                m.key_id,
                m.client_msg_id,
                m.suggestion_id,
                hashlib.sha256(m.text.encode("utf-8")).digest() if m.suggestion_id is not None else None,
                json.dumps(m.sources) if m.sources is not None else None,
            )
            for m in batch
        ]
        async with self._pool.acquire() as conn:
            rows = await ChatRepository(conn).append_messages(values)
        results: list[StoredMessage] = []
        for row in rows:
            message = batch[row["idx"] - 1]
            outcome = row["outcome"]
            if outcome in ("created", "duplicate"):
                created = outcome == "created"
                if not created:
                    self._metrics.message_duplicates.inc()
                results.append(
                    StoredMessage(
                        row["message_id"],
                        row["message_seq"],
                        message.chat_id,
                        row["message_created_at"],
                        created,
                        message,
                    )
                )
            else:
                _settle(message, error=_REFUSALS[outcome]())
        return results


_REFUSALS: dict[str, Callable[[], AppError]] = {
    "not_found": lambda: NotFound("No such chat."),
    "closed": ChatClosed,
    "bad_suggestion": lambda: Invalid("suggestion_id: no such suggestion in this chat"),
}


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
