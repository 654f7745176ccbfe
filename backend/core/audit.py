"""The audit log of security events: written inside the transaction of what it records."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

# The events recorded; the API and the `audit` command filter by these names.
ACTIONS = (
    "login_ok",
    "login_failed",
    "login_locked",
    "logout",
    "logout_all",
    "token_revoked",
    "password_changed",
    "password_change_failed",
    "user_created",
    "user_disabled",
    "user_enabled",
    "chat_assigned",
    "chat_closed",
    "invitation_created",
    "invitation_accepted",
    "keys_rotated",
    "chats_archived",
    "customer_purged",
)


async def record(
    conn: asyncpg.Connection,
    action: str,
    *,
    actor_id: UUID | None = None,
    target: str | None = None,
    address: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event; never message text, tokens or passwords in `details`."""
    assert action in ACTIONS, action
    await conn.execute(
        "INSERT INTO audit_log (action, actor_id, target, address, details) VALUES ($1, $2, $3, $4, $5)",
        action,
        actor_id,
        target,
        address,
        details or {},
    )


async def read(
    conn: asyncpg.Connection,
    *,
    action: str | None = None,
    actor_id: UUID | None = None,
    target: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[asyncpg.Record]:
    """Events newest first, optionally filtered; page with `before_id`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, at, action, actor_id, target, address, details FROM audit_log"
        " WHERE ($1::text IS NULL OR action = $1) AND ($2::uuid IS NULL OR actor_id = $2)"
        " AND ($3::text IS NULL OR target = $3) AND ($4::bigint IS NULL OR id < $4)"
        " ORDER BY id DESC LIMIT $5",
        action,
        actor_id,
        target,
        before_id,
        limit,
    )
    return rows
