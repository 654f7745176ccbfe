"""Invitation tokens: random, stored only as a hash, single use, time-bound."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from backend.auth.repository import AuthRepository
from backend.core.errors import AppError, NotFound

TOKEN_BYTES = 32  # 256 bits


class InvitationGone(AppError):
    status, code, detail = 410, "invitation_gone", "This invitation link was already used or has expired."


def hash_token(token: str) -> bytes:
    """What is stored of an invitation token."""
    return hashlib.sha256(token.encode("utf-8")).digest()


async def create(
    conn: asyncpg.Connection, *, chat_id: UUID, customer_id: UUID, created_by: UUID, ttl_hours: float
) -> str:
    """Store a new invitation for a chat and return its token (shown once, never stored)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = datetime.now(UTC) + timedelta(hours=ttl_hours)
    await AuthRepository(conn).insert_invitation(
        hash_token(token), chat_id, customer_id, created_by, expires_at
    )
    return token


async def consume(conn: asyncpg.Connection, token: str) -> tuple[UUID, UUID]:
    """Use an invitation once; returns (customer id, chat id). 404 unknown, 410 used or expired."""
    repo = AuthRepository(conn)
    row = await repo.use_invitation(hash_token(token))
    if row is not None:
        return row["customer_id"], row["chat_id"]
    if await repo.invitation_exists(hash_token(token)):
        raise InvitationGone()
    raise NotFound("No such invitation.")
