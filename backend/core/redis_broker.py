"""Redis pub/sub between app nodes: each node listens on the channels its sockets need."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from typing import Any

import redis.asyncio as redis

from backend.core.pubsub import Deliver, Event

log = logging.getLogger(__name__)

PREFIX = "support-chat:"
SUBSCRIBE_TIMEOUT = 10.0


def encode_event(event: Event) -> str:
    """Serialize an event for the wire."""
    return json.dumps(
        {k: v for k, v in dataclasses.asdict(event).items() if v is not None}, ensure_ascii=False
    )


def decode_event(data: str | bytes) -> Event:
    """Read an event from the wire."""
    fields: dict[str, Any] = json.loads(data)
    return Event(**fields)


class RedisBroker:
    """Publishes through Redis; delivers what arrives for the channels this node listens on."""

    def __init__(self, url: str) -> None:
        self._client = redis.from_url(url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=False)
        self._deliver: Deliver | None = None
        self._reader: asyncio.Task[None] | None = None
        self._wanted: set[str] = set()
        self._changes: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._manager: asyncio.Task[None] | None = None

    async def start(self, deliver: Deliver) -> None:
        """Connect, and start reading and (un)subscribing."""
        self._deliver = deliver
        await self._client.ping()
        # A placeholder subscription so the reader has a connection from the start.
        await self._pubsub.subscribe(PREFIX + "_")
        self._reader = asyncio.create_task(self._read(), name="redis-reader")
        self._manager = asyncio.create_task(self._manage(), name="redis-subscriptions")

    async def stop(self) -> None:
        """Stop reading and close the connections."""
        for task in (self._reader, self._manager):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
        await self._client.aclose()

    async def listen(self, channel: str) -> None:
        """Subscribe this node to a channel; returns when Redis confirmed the subscription."""
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._changes.put_nowait((True, channel))
        if channel in self._confirmed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        await asyncio.wait_for(waiter, SUBSCRIBE_TIMEOUT)

    def unlisten(self, channel: str) -> None:
        """Unsubscribe this node from a channel."""
        if channel in self._wanted:
            self._wanted.discard(channel)
            self._confirmed.discard(channel)
            self._changes.put_nowait((False, channel))

    async def publish(self, channel: str, event: Event) -> None:
        """Send an event to every node listening on the channel."""
        await self._client.publish(PREFIX + channel, encode_event(event))

    def _confirm(self, channel: str) -> None:
        if channel in self._wanted:
            self._confirmed.add(channel)
        for waiter in self._waiters.pop(channel, []):
            if not waiter.done():
                waiter.set_result(None)

    async def _manage(self) -> None:
        while True:
            subscribe, channel = await self._changes.get()
            try:
                if subscribe:
                    await self._pubsub.subscribe(PREFIX + channel)
                else:
                    await self._pubsub.unsubscribe(PREFIX + channel)
            except Exception:
                log.exception("redis (un)subscribe of %s failed", channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except Exception:
                log.exception("redis read failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if message is None:
                continue
            channel = message["channel"]
            name = (channel.decode() if isinstance(channel, bytes) else str(channel)).removeprefix(PREFIX)
            if message.get("type") == "subscribe":
                self._confirm(name)
                continue
            if message.get("type") != "message":
                continue
            if self._deliver is not None:
                try:
                    self._deliver(name, decode_event(message["data"]))
                except Exception:
                    log.exception("bad event on %s", name)
