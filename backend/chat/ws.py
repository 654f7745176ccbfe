"""The WebSocket endpoint: authenticate, a receive loop of validated frames, cleanup with a close code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from backend.auth import service as auth_service
from backend.auth.service import CurrentUser, user_channel
from backend.chat import service as chat_service
from backend.chat.connection import Connection, Sync
from backend.chat.frames import (
    AuthFrame,
    MessageFrame,
    PingFrame,
    SubscribeFrame,
    SubscribeQueueFrame,
    TypingFrame,
    UnsubscribeFrame,
    client_frame,
)
from backend.chat.hub import QUEUE_CHANNEL, chat_channel
from backend.chat.writer import StoredMessage
from backend.core.config import Settings
from backend.core.context import AppContext
from backend.core.errors import AppError
from backend.core.ratelimit import TokenBucket

log = logging.getLogger(__name__)

router = APIRouter()

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_LARGE = 1009
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_FLOOD = 4429
MAX_IN_FLIGHT = 512


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Same origin, an allowed origin, or a non-browser client (no Origin header)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    allow = settings.origin_allowlist
    if "*" in allow or origin.rstrip("/") in allow:
        return True
    host = websocket.headers.get("host", "")
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def _error(code: str, detail: str, client_msg_id: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    return json.dumps(frame, ensure_ascii=False)


class _Closing(Exception):
    """Leave the receive loop and close with this code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SocketSession:
    """One client's socket from handshake to close."""

    def __init__(self, ctx: AppContext, websocket: WebSocket) -> None:
        self.ctx = ctx
        self.websocket = websocket
        self.conn: Connection | None = None
        self.close_code = CLOSE_NORMAL
        self.close_reason = ""
        self._closing = False
        self._main: asyncio.Task[Any] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._bucket = TokenBucket(ctx.settings.ws_frame_rate, ctx.settings.ws_frame_burst)

    def request_close(self, code: int, reason: str = "") -> None:
        """Close with a code (from the hub, a timer or the sender): ends the receive loop."""
        if self._closing:
            return
        self._closing = True
        self.close_code, self.close_reason = code, reason
        if self._main is not None and self._main is not asyncio.current_task():
            self._main.cancel()

    async def run(self) -> None:
        """Serve the socket until the client leaves or the server closes it."""
        self._main = asyncio.current_task()
        try:
            user = await self._authenticate()
            self.conn = Connection(
                self.websocket,
                user,
                queue_size=self.ctx.settings.ws_send_queue,
                backlog=lambda chat_id, after, limit: chat_service.backlog_frames(
                    self.ctx, chat_id, after, limit
                ),
                on_close_request=self.request_close,
                on_dropped=self.ctx.metrics.slow_consumers.inc,
            )
            self.ctx.hub.register(self.conn)
            await self.ctx.hub.attach(self.conn, user_channel(user.id))
            await self.websocket.send_text(
                json.dumps({"type": "ready", "user": user.read().model_dump(mode="json")}, ensure_ascii=False)
            )
            self._schedule_expiry()
            # The receive loop runs in this task itself; request_close() cancels it.
            await self._receive_loop()
        except _Closing as closing:
            self.request_close(closing.code, closing.reason)
        except asyncio.CancelledError:
            if not self._closing:
                raise  # the server itself is stopping this task
        except Exception as exc:
            log.error("socket failed: %r", exc)
            self.request_close(1011, "internal error")
        finally:
            if self._expiry is not None:
                self._expiry.cancel()
            for task in list(self._in_flight):
                task.cancel()
            if self.conn is not None:
                self.conn.stop()
                self.ctx.hub.unregister(self.conn)
            self.ctx.metrics.ws_closed.labels(str(self.close_code)).inc()
            if self.websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.websocket.close(self.close_code, self.close_reason)

    def _schedule_expiry(self) -> None:
        """Close with 4401 the moment the socket's token expires (re-armed by a new auth frame)."""
        assert self.conn is not None
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        remaining = (self.conn.user.expires_at - datetime.now(UTC)).total_seconds()
        self._expiry = loop.call_at(
            loop.time() + max(0.0, remaining), self.request_close, 4401, "token_expired"
        )

    async def _receive_text(self) -> str:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise _Closing(int(message.get("code") or CLOSE_NORMAL))
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            if len(data) > self.ctx.settings.ws_max_frame_bytes:
                raise _Closing(CLOSE_TOO_LARGE, "frame too large")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return ""
        limit = self.ctx.settings.ws_max_frame_bytes
        if len(text) * 4 > limit and len(text.encode("utf-8")) > limit:
            raise _Closing(CLOSE_TOO_LARGE, "frame too large")
        return str(text)

    async def _authenticate(self) -> CurrentUser:
        try:
            text = await asyncio.wait_for(self._receive_text(), self.ctx.settings.ws_auth_timeout_seconds)
        except TimeoutError:
            raise _Closing(CLOSE_AUTH_TIMEOUT, "no auth frame in time") from None
        try:
            frame = client_frame.validate_json(text)
        except ValidationError:
            raise _Closing(CLOSE_UNAUTHORIZED, "the first frame must be auth") from None
        if not isinstance(frame, AuthFrame):
            raise _Closing(CLOSE_UNAUTHORIZED, "the first frame must be auth")
        try:
            return await auth_service.authenticate(self.ctx, frame.token)
        except AppError as exc:
            raise _Closing(CLOSE_UNAUTHORIZED, exc.code) from None

    async def _receive_loop(self) -> None:
        assert self.conn is not None
        while True:
            text = await self._receive_text()
            if self._bucket.take(time.monotonic()):
                raise _Closing(CLOSE_FLOOD, "too many frames")
            try:
                frame = client_frame.validate_json(text)
            except ValidationError as exc:
                code = (
                    "invalid_json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "bad_frame"
                )
                self.ctx.metrics.ws_frames.labels("invalid").inc()
                self.conn.push(_error(code, _frame_problem(exc)))
                continue
            self.ctx.metrics.ws_frames.labels(frame.type).inc()
            try:
                await self._dispatch(frame)
            except AppError as exc:
                client_msg_id = frame.client_msg_id if isinstance(frame, MessageFrame) else None
                self.conn.push(_error(exc.code, exc.detail, client_msg_id))

    async def _dispatch(self, frame: Any) -> None:
        conn = self.conn
        assert conn is not None
        user = conn.user
        if isinstance(frame, MessageFrame):
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                raise _Closing(CLOSE_FLOOD, "too many messages in flight")
            future = chat_service.submit_message(
                self.ctx, user, frame.chat_id, frame.text, frame.client_msg_id, frame.suggestion_id
            )
            task = asyncio.create_task(self._ack(future, frame.client_msg_id))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        elif isinstance(frame, SubscribeFrame):
            await chat_service.ensure_can_read(self.ctx, user, frame.chat_id)
            await self.ctx.hub.attach(conn, chat_channel(frame.chat_id))
            if user.is_staff:  # suggested replies are for supporters only, never the customer
                await self.ctx.hub.attach(conn, f"suggestions:{frame.chat_id}")
            conn.push(Sync(str(frame.chat_id), frame.after))
        elif isinstance(frame, UnsubscribeFrame):
            self.ctx.hub.detach(conn, chat_channel(frame.chat_id))
            self.ctx.hub.detach(conn, f"suggestions:{frame.chat_id}")
            conn.forget_chat(str(frame.chat_id))
        elif isinstance(frame, SubscribeQueueFrame):
            if not user.is_staff:
                raise _Closing(CLOSE_FORBIDDEN, "only supporters see the queue")
            await self.ctx.hub.attach(conn, QUEUE_CHANNEL)
        elif isinstance(frame, TypingFrame):
            if chat_channel(frame.chat_id) in conn.channels:
                await chat_service.typing(self.ctx, user, frame.chat_id)
            else:
                conn.push(_error("not_found", "Subscribe to the chat first."))
        elif isinstance(frame, AuthFrame):
            await self._reauthenticate(frame.token)
        elif isinstance(frame, PingFrame):
            conn.push('{"type":"pong"}')

    async def _reauthenticate(self, token: str) -> None:
        """Switch an open socket to a fresh token of the same user (after /api/auth/refresh)."""
        assert self.conn is not None
        try:
            user = await auth_service.authenticate(self.ctx, token)
        except AppError as exc:
            raise _Closing(CLOSE_UNAUTHORIZED, exc.code) from None
        if user.id != self.conn.user.id:
            raise _Closing(CLOSE_UNAUTHORIZED, "a socket keeps its user")
        self.conn.user = user
        self._schedule_expiry()
        self.conn.push(json.dumps({"type": "ready", "user": user.read().model_dump(mode="json")}))

    async def _ack(self, future: asyncio.Future[StoredMessage], client_msg_id: str) -> None:
        assert self.conn is not None
        try:
            stored = await future
        except AppError as exc:
            self.conn.push(_error(exc.code, exc.detail, client_msg_id))
            return
        self.conn.push(
            json.dumps(
                {"type": "ack", "client_msg_id": client_msg_id, "message_id": stored.id, "seq": stored.seq},
                ensure_ascii=False,
            )
        )


def _frame_problem(exc: ValidationError) -> str:
    errors = exc.errors()[:3]
    parts = []
    for err in errors:
        where = ".".join(str(item) for item in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid frame"


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    """The real-time channel of both pages and of any client."""
    ctx: AppContext = websocket.app.state.ctx
    if not origin_allowed(websocket, ctx.settings):
        # Closing before accept refuses the handshake (HTTP 403): the page's origin is not allowed.
        ctx.metrics.ws_closed.labels("origin").inc()
        await websocket.close(CLOSE_FORBIDDEN)
        return
    await websocket.accept()
    await SocketSession(ctx, websocket).run()
