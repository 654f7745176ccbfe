"""Account administration and the audit log, for admins."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from backend.auth.repository import AuthRepository
from backend.auth.schemas import AccountRead, AuditEventRead
from backend.auth.service import CurrentUser, user_channel
from backend.core import audit
from backend.core.context import AppContext
from backend.core.errors import Invalid, NotFound
from backend.core.pubsub import Event
from backend.core.timefmt import local


async def set_disabled(ctx: AppContext, admin: CurrentUser, user_id: UUID, disabled: bool) -> AccountRead:
    """Disable a user (their tokens die, their sockets close) or enable them again."""
    if user_id == admin.id and disabled:
        raise Invalid("You cannot disable your own account.")
    async with ctx.pool.acquire() as conn, conn.transaction():
        repo = AuthRepository(conn)
        row = await repo.set_disabled(user_id, disabled)
        if row is None:
            raise NotFound("No such user.")
        if disabled:
            await repo.revoke_all_tokens(user_id)
        action = "user_disabled" if disabled else "user_enabled"
        await audit.record(conn, action, actor_id=admin.id, target=str(user_id))
    if disabled:
        await ctx.broker.publish(user_channel(user_id), Event(revoke_jti="*"))
    return _account_read(row)


async def list_accounts(ctx: AppContext, role: str | None, limit: int) -> list[AccountRead]:
    """Accounts with a username (supporters, admins, registered customers)."""
    async with ctx.pool.acquire() as conn:
        rows = await AuthRepository(conn).list_users(role, limit)
    return [_account_read(row) for row in rows]


async def read_audit(
    ctx: AppContext,
    *,
    action: str | None = None,
    actor_id: UUID | None = None,
    target: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEventRead]:
    """Security events, newest first."""
    async with ctx.pool.acquire() as conn:
        rows = await audit.read(
            conn, action=action, actor_id=actor_id, target=target, before_id=before_id, limit=limit
        )
    return [
        AuditEventRead(
            id=row["id"],
            at=local(row["at"]),
            action=row["action"],
            actor_id=row["actor_id"],
            target=row["target"],
            address=row["address"],
            details=row["details"],
        )
        for row in rows
    ]


def _account_read(row: asyncpg.Record) -> AccountRead:
    return AccountRead(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        disabled=row["disabled_at"] is not None,
    )
