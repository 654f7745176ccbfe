"""One WebSocket's outgoing side: a bounded queue and the task that drains it in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from backend.core.pubsub import Event

if TYPE_CHECKING:
    from backend.auth.service import CurrentUser

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 1013
BACKLOG_PAGE = 200

# Returns (seq, frame text) pairs of a chat's messages after a seq, ascending, at most one page.
Backlog = Callable[[str, int, int], Awaitable[list[tuple[int, str]]]]


@dataclass(frozen=True, slots=True)
class Sync:
    """Start delivering a chat's messages after `after`: backlog first, then live."""

    chat_id: str
    after: int


class Connection:
    """The sending half of a socket: everything it is sent goes through one ordered queue.

    Message events carry their chat's seq. Per chat the connection remembers the last seq
    it sent: older or repeated events are dropped, and a gap (an event that overtook one
    still in flight, or a subscription racing the live stream) is filled from the database.
    So the client sees every message once, in seq order.

    The task that drains the queue exists only while there is something to send, so an
    idle socket costs no task.
    """

    __slots__ = (
        "_backlog",
        "_last_chat_frame",
        "_last_seq",
        "_on_close_request",
        "_on_dropped",
        "_queue",
        "_queue_size",
        "_sender",
        "channels",
        "dropped",
        "user",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket,
        user: CurrentUser,
        *,
        queue_size: int,
        backlog: Backlog,
        on_close_request: Callable[[int, str], None],
        on_dropped: Callable[[], None] = lambda: None,
    ) -> None:
        self.websocket = websocket
        self.user = user
        self.channels: set[str] = set()
        self._queue: deque[Event | Sync | str] = deque()
        self._queue_size = queue_size
        self._sender: asyncio.Task[None] | None = None
        self._backlog = backlog
        self._on_close_request = on_close_request
        self._on_dropped = on_dropped
        self._last_seq: dict[str, int] = {}
        self._last_chat_frame: dict[str, str] = {}
        self.dropped = False

    def push(self, item: Event | Sync | str) -> None:
        """Queue something to send; a reader too slow to keep up is dropped, not waited for."""
        if self.dropped:
            return
        if len(self._queue) >= self._queue_size:
            self.dropped = True
            self._on_dropped()
            self._on_close_request(CLOSE_SLOW_CONSUMER, "too slow to read; reconnect")
            return
        self._queue.append(item)
        if self._sender is None:
            self._sender = asyncio.create_task(self._drain())

    def push_close(self, code: int, reason: str = "server shutting down") -> None:
        """Ask the socket's session to close with a code."""
        self._on_close_request(code, reason)

    def stop(self) -> None:
        """Stop sending (the socket is closing)."""
        self.dropped = True
        self._queue.clear()
        if self._sender is not None:
            self._sender.cancel()

    def forget_chat(self, chat_id: str) -> None:
        """Stop tracking a chat after unsubscribing."""
        self._last_seq.pop(chat_id, None)
        self._last_chat_frame.pop(chat_id, None)

    async def _drain(self) -> None:
        try:
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, str):
                    await self.websocket.send_text(item)
                elif isinstance(item, Sync):
                    self._last_seq[item.chat_id] = item.after
                    await self._catch_up(item.chat_id)
                else:
                    await self._send_event(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The peer went away mid-send, or the database failed a catch-up: end this socket;
            # the client resumes by seq when it reconnects.
            log.debug("sending failed: %r", exc)
            self.dropped = True
            self._on_close_request(
                1011 if not isinstance(exc, (OSError, RuntimeError)) else 1006, "send failed"
            )
        finally:
            self._sender = None

    async def _send_event(self, event: Event) -> None:
        if event.revoke_jti is not None:
            jti = str(self.user.jti)
            if event.revoke_jti in ("*", jti) and event.keep_jti != jti:
                self._on_close_request(4401, "session ended")
            return
        if event.frame is None or (
            event.exclude_user is not None and event.exclude_user == str(self.user.id)
        ):
            return
        if event.chat_id is not None and event.seq is None:
            # A chat status frame reaches supporters twice (queue and chat channel): send it once.
            if self._last_chat_frame.get(event.chat_id) == event.frame:
                return
            self._last_chat_frame[event.chat_id] = event.frame
        if event.seq is None or event.chat_id is None:
            await self.websocket.send_text(event.frame)
            return
        last = self._last_seq.get(event.chat_id)
        if last is None or event.seq <= last:
            return  # not synced yet (the backlog will carry it) or already sent
        if event.seq == last + 1:
            self._last_seq[event.chat_id] = event.seq
            await self.websocket.send_text(event.frame)
            return
        await self._catch_up(event.chat_id)

    async def _catch_up(self, chat_id: str) -> None:
        """Send stored messages after the last one sent, page by page."""
        while True:
            after = self._last_seq[chat_id]
            page = await self._backlog(chat_id, after, BACKLOG_PAGE)
            for seq, frame in page:
                if seq > self._last_seq[chat_id]:
                    self._last_seq[chat_id] = seq
                    await self.websocket.send_text(frame)
            if len(page) < BACKLOG_PAGE:
                return
