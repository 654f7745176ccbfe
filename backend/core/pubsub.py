"""Publish/subscribe between the nodes: in-process now, Redis when REDIS_URL is set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """Something to deliver to the sockets listening on a channel.

    `frame` is the JSON text sent as is; `chat_id`/`seq` let a socket order and de-duplicate
    messages; `revoke_jti` asks the sockets of a token to close (`"*"`: all of the user's,
    but those of `keep_jti`).
    """

    frame: str | None = None
    chat_id: str | None = None
    seq: int | None = None
    revoke_jti: str | None = None
    keep_jti: str | None = None
    exclude_user: str | None = None


Deliver = Callable[[str, Event], None]


class Broker(Protocol):
    """Carries events to every node that listens on a channel."""

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering events for listened channels to `deliver`."""

    async def stop(self) -> None:
        """Stop delivering and release connections."""

    async def listen(self, channel: str) -> None:
        """This node wants the channel's events; returns once they are flowing."""

    def unlisten(self, channel: str) -> None:
        """This node no longer wants the channel's events."""

    async def publish(self, channel: str, event: Event) -> None:
        """Send an event to every node listening on the channel, this one included."""


class LocalBroker:
    """A single node: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        """Remember where to deliver."""
        self._deliver = deliver

    async def stop(self) -> None:
        """Forget the delivery target."""
        self._deliver = None

    async def listen(self, channel: str) -> None:
        """Nothing to do on one node."""

    def unlisten(self, channel: str) -> None:
        """Nothing to do on one node."""

    async def publish(self, channel: str, event: Event) -> None:
        """Deliver right away."""
        if self._deliver is not None:
            self._deliver(channel, event)
