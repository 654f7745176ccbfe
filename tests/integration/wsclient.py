"""A small WebSocket client for tests, speaking the contract's frames."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


class WsClient:
    """One socket: send frames, wait for frames of a type."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.inbox: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, token: str | None = None, **kwargs: Any) -> WsClient:
        """Open a socket and, with a token, authenticate it."""
        client = cls(await websockets.connect(url, max_size=None, **kwargs))
        if token is not None:
            await client.send({"type": "auth", "token": token})
            ready = await client.expect("ready")
            assert ready["user"]["id"]
        return client

    async def send(self, frame: dict[str, Any] | str) -> None:
        """Send a frame (a dict as JSON, a string as is)."""
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame."""
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def expect(self, frame_type: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """Wait for a frame of a type (and matching fields), keeping others in the inbox."""
        for i, frame in enumerate(self.inbox):
            if frame.get("type") == frame_type and all(frame.get(k) == v for k, v in match.items()):
                return self.inbox.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if frame.get("type") == frame_type and all(frame.get(k) == v for k, v in match.items()):
                return frame
            self.inbox.append(frame)

    async def send_message(self, chat_id: str, text: str, client_msg_id: str | None = None) -> dict[str, Any]:
        """Send a message and wait for its ack."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send({"type": "message", "chat_id": chat_id, "client_msg_id": client_msg_id, "text": text})
        return await self.expect("ack", client_msg_id=client_msg_id)

    async def messages(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` message events' messages."""
        return [(await self.expect("message", timeout))["message"] for _ in range(count)]

    async def closed_with(self, timeout: float = 5.0) -> int | None:
        """Wait until the server closes the socket; return the close code."""
        try:
            while True:
                await asyncio.wait_for(self.conn.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None

    async def close(self) -> None:
        """Close from our side."""
        await self.conn.close()
