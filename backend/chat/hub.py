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

    async def attach(self, conn: Connection, channel: str) -> None:
        """Deliver a channel's events to a connection; returns once they flow to this node."""
        members = self._channels.get(channel)
        if members is None:
            members = self._channels[channel] = set()
        members.add(conn)
        conn.channels.add(channel)
        # Awaited even when the channel existed: a first attach may still be subscribing.
        await self.broker.listen(channel)

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
        """Publish an event to every node; a broker outage loses live events, never stored data."""
        self.metrics.events_published.inc()
        try:
            await self.broker.publish(channel, event)
        except Exception:
            # Clients resync from the database (subscribe with `after`) when they reconnect.
            self.metrics.publish_failures.inc()
            log.exception("publishing to %s failed", channel)
