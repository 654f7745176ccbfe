"""The uvicorn configuration shared by `serve`, the tests and the benchmark."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from backend.core.config import Settings


def uvicorn_config(
    app: FastAPI,
    settings: Settings,
    *,
    host: str,
    port: int,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> uvicorn.Config:
    """Server settings: frame size cap (1009 above it), keep-alive pings, no access log of its own."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws_max_size=settings.ws_max_frame_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        # Compression would cost each socket a zlib state (hundreds of KiB with browsers' window
        # sizes) to shrink messages of a few hundred bytes: off.
        ws_per_message_deflate=False,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
