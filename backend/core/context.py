"""What lives as long as the app: built in the lifespan, hung off app.state.ctx."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from backend.auth.limits import LoginPolicy
from backend.core.config import Settings
from backend.core.crypto import KeyRing
from backend.core.metrics import Metrics
from backend.core.pubsub import Broker
from backend.core.ratelimit import KeyedLimiter

if TYPE_CHECKING:
    from backend.auth.passwords import PasswordHasher
    from backend.auth.tokens import TokenCodec
    from backend.chat.hub import Hub
    from backend.chat.writer import MessageWriter


@dataclass
class AppContext:
    """The app's long-lived parts."""

    settings: Settings
    pool: asyncpg.Pool
    keyring: KeyRing
    metrics: Metrics
    broker: Broker
    hasher: PasswordHasher
    tokens: TokenCodec
    hub: Hub
    writer: MessageWriter
    guest_limiter: KeyedLimiter
    message_limiter: KeyedLimiter
    login_policy: LoginPolicy = field(default_factory=LoginPolicy)
    # The archive database (closed chats moved out of the main one); None until it is opened.
    archive_pool: asyncpg.Pool | None = None
    extras: dict[str, Any] = field(default_factory=dict)
