"""ASGI middleware: body size limit, access log without query strings, HTTP metrics."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.metrics import Metrics

access_log = logging.getLogger("support_chat.access")


class _BodyTooLarge(Exception):
    pass


class RequestGuard:
    """Refuse oversized bodies with 413, and log and count every request by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large(send, self.max_body_bytes)
            self._record(scope, 413, started)
            return
        received = 0
        too_large = False

        async def guarded_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            # A body that outgrew the limit while streaming (no Content-Length) may surface as the
            # framework's own 400: answer the contract's 413 in its place.
            if too_large:
                if message["type"] == "http.response.start" and not status["sent"]:
                    status["sent"] = True
                    status["code"] = 413
                    await _too_large(send, self.max_body_bytes)
                return
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                message = {**message, "headers": [*message.get("headers", []), *security_headers(scope)]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except _BodyTooLarge:
            if not status["sent"]:
                await _too_large(send, self.max_body_bytes)
            status["code"] = 413
        finally:
            self._record(scope, int(status["code"]), started)

    def _record(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        # The route template, never the raw path: paths can carry tokens (invitation links).
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "?")
        self.metrics.http_requests.labels(method, template, str(status)).inc()
        self.metrics.http_latency.labels(method, template).observe(elapsed)
        access_log.info("%s %s %d %.1fms", method, template, status, elapsed * 1000)


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# The interactive API docs load their assets from a CDN; everything else is held to the strict policy.
_DOCS_PATHS = ("/docs", "/redoc")


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """Headers every response carries: CSP, no sniffing, no referrer (invite links carry tokens)."""
    path: str = scope.get("path", "")
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]
    if not path.startswith(_DOCS_PATHS):
        headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    if path == "/" or path == "/console" or path.startswith("/static/"):
        # Revalidate pages and modules (by ETag) so a deploy never mixes old and new files.
        headers.append((b"cache-control", b"no-cache"))
    if scope.get("scheme") == "https":
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send, limit: int) -> None:
    """Answer 413 with the contract's error body."""
    body: dict[str, Any] = {"detail": f"The request body exceeds {limit} bytes.", "code": "too_large"}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
