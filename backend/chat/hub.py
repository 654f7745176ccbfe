"""The connection hub: which local sockets listen on which channel, and fan-out to them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from backend.core.metrics import Metrics
from backend.core.pubsub import Broker, Event

if TYPE_CHECKING:
    from backend.chat.connection import Connection

log = logging.getLogger(__name__)

QUEUE_CHANNEL = "queue:supporters"


def chat_channel(chat_id: object) -> str:
    """The channel of one chat's events."""
    return f"chat:{chat_id}"


class Hub:
    """Local subscriptions on top of a broker that spans the nodes."""

    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self.broker = broker
        self.metrics = metrics
        self._channels: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()

    def register(self, conn: Connection) -> None:
        """Track an open connection."""
        self.connections.add(conn)
        self.metrics.ws_connections.set(len(self.connections))

    def attach(self, conn: Connection, channel: str) -> None:
        """Deliver a channel's events to a connection."""
        members = self._channels.get(channel)
        if members is None:
            members = self._channels[channel] = set()
            self.broker.listen(channel)
        members.add(conn)
        conn.channels.add(channel)

    def detach(self, conn: Connection, channel: str) -> None:
        """Stop delivering a channel's events to a connection."""
        members = self._channels.get(channel)
        conn.channels.discard(channel)
        if members is None:
            return
        members.discard(conn)
        if not members:
            del self._channels[channel]
            self.broker.unlisten(channel)

    def unregister(self, conn: Connection) -> None:
        """Forget a closed connection and all its channels."""
        for channel in list(conn.channels):
            self.detach(conn, channel)
        self.connections.discard(conn)
        self.metrics.ws_connections.set(len(self.connections))

    def deliver(self, channel: str, event: Event) -> None:
        """Hand an event to every local connection on the channel (never blocks)."""
        for conn in tuple(self._channels.get(channel, ())):
            conn.push(event)

    async def publish(self, channel: str, event: Event) -> None:
        """Publish an event to every node."""
        self.metrics.events_published.inc()
        await self.broker.publish(channel, event)
