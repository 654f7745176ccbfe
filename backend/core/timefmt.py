"""Times in the server's zone, as the API speaks them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from backend.core.config import SERVER_TIMEZONE

SERVER_ZONE = ZoneInfo(SERVER_TIMEZONE)


def local(value: datetime) -> datetime:
    """Express an aware datetime in the server's time zone."""
    return value.astimezone(SERVER_ZONE)


def local_or_none(value: datetime | None) -> datetime | None:
    """Like local(), passing None through."""
    return None if value is None else value.astimezone(SERVER_ZONE)
