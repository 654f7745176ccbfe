"""Prometheus metrics, one registry per app so tests can build several apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's counters, gauges and latency histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ws_connections = Gauge("ws_connections", "Open WebSocket connections", registry=r)
        self.ws_closed = Counter(
            "ws_closed_total", "WebSocket connections closed, by close code", ["code"], registry=r
        )
        self.ws_frames = Counter(
            "ws_frames_total", "WebSocket frames received, by type", ["type"], registry=r
        )
        self.messages = Counter("messages_total", "Messages stored, by kind", ["kind"], registry=r)
        self.message_duplicates = Counter(
            "message_duplicates_total", "Messages resent with a known client_msg_id", registry=r
        )
        self.commit_latency = Histogram(
            "message_commit_seconds",
            "From a message's arrival to its commit",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "message_batch_size",
            "Messages per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.slow_consumers = Counter(
            "ws_slow_consumers_total", "Sockets dropped because they did not read fast enough", registry=r
        )
        self.events_published = Counter("hub_events_total", "Events published to the hub", registry=r)
        self.publish_failures = Counter(
            "hub_publish_failures_total", "Events the broker could not publish", registry=r
        )
