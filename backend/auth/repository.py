"""SQL for users and session tokens."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


class AuthRepository:
    """Queries on users and tokens; never commits."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def create_user(
        self,
        *,
        username: str | None,
        display_name: str,
        role: str,
        password_hash: str | None,
        email: str | None = None,
        is_guest: bool = False,
        resume_token_hash: bytes | None = None,
    ) -> asyncpg.Record:
        """Insert a user; raises UniqueViolationError on a taken username."""
        return await self.conn.fetchrow(
            "INSERT INTO users"
            " (username, display_name, role, password_hash, email, is_guest, resume_token_hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " RETURNING id, username, display_name, role, password_hash, disabled_at",
            username,
            display_name,
            role,
            password_hash,
            email,
            is_guest,
            resume_token_hash,
        )

    async def user_by_username(self, username: str) -> asyncpg.Record | None:
        """Find a user by username, ignoring case."""
        return await self.conn.fetchrow(
            "SELECT id, username, display_name, role, password_hash, disabled_at FROM users"
            " WHERE lower(username) = lower($1)",
            username,
        )

    async def user_by_resume_hash(self, token_hash: bytes) -> asyncpg.Record | None:
        """Find a guest by the hash of their resume token."""
        return await self.conn.fetchrow(
            "SELECT id, username, display_name, role, password_hash, disabled_at FROM users"
            " WHERE resume_token_hash = $1",
            token_hash,
        )

    async def session_user(self, user_id: UUID, jti: UUID) -> asyncpg.Record | None:
        """The user of a live (issued, not revoked) token."""
        return await self.conn.fetchrow(
            "SELECT u.id, u.username, u.display_name, u.role, u.disabled_at, t.revoked_at"
            " FROM tokens t JOIN users u ON u.id = t.user_id"
            " WHERE t.jti = $1 AND t.user_id = $2",
            jti,
            user_id,
        )

    async def record_token(self, jti: UUID, user_id: UUID, expires_at: datetime) -> None:
        """Remember an issued token so it can be revoked."""
        await self.conn.execute(
            "INSERT INTO tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)", jti, user_id, expires_at
        )

    async def revoke_token(self, jti: UUID) -> None:
        """Kill one token."""
        await self.conn.execute(
            "UPDATE tokens SET revoked_at = now() WHERE jti = $1 AND revoked_at IS NULL", jti
        )

    async def delete_expired_tokens(self) -> int:
        """Forget tokens that expired over a day ago."""
        status: str = await self.conn.execute(
            "DELETE FROM tokens WHERE expires_at < now() - interval '1 day'"
        )
        return int(status.split()[-1])

    async def user_by_id(self, user_id: UUID) -> asyncpg.Record | None:
        """Find a user by id."""
        return await self.conn.fetchrow(
            "SELECT id, username, display_name, role, password_hash, disabled_at FROM users WHERE id = $1",
            user_id,
        )

    async def insert_invitation(
        self, token_hash: bytes, chat_id: UUID, customer_id: UUID, created_by: UUID, expires_at: datetime
    ) -> None:
        """Store an invitation by the hash of its token."""
        await self.conn.execute(
            "INSERT INTO invitations (token_hash, chat_id, customer_id, created_by, expires_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            token_hash,
            chat_id,
            customer_id,
            created_by,
            expires_at,
        )

    async def use_invitation(self, token_hash: bytes) -> asyncpg.Record | None:
        """Mark a live invitation used (exactly once, also under concurrency) and return it."""
        return await self.conn.fetchrow(
            "UPDATE invitations SET used_at = now()"
            " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()"
            " RETURNING customer_id, chat_id",
            token_hash,
        )

    async def invitation_exists(self, token_hash: bytes) -> bool:
        """Whether a token was ever issued (to tell 'gone' from 'unknown')."""
        found: bool = await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM invitations WHERE token_hash = $1)", token_hash
        )
        return found

    async def clear_resume_hash(self, user_id: UUID) -> None:
        """Retire a guest's resume token."""
        await self.conn.execute("UPDATE users SET resume_token_hash = NULL WHERE id = $1", user_id)

    async def set_resume_hash(self, user_id: UUID, token_hash: bytes) -> None:
        """Give a guest a new resume token."""
        await self.conn.execute("UPDATE users SET resume_token_hash = $2 WHERE id = $1", user_id, token_hash)

    async def locked_until(self, keys: list[str]) -> datetime | None:
        """The latest lock end among these throttle keys that is still in the future."""
        until: datetime | None = await self.conn.fetchval(
            "SELECT max(locked_until) FROM login_throttle"
            " WHERE key = ANY($1::text[]) AND locked_until > now()",
            keys,
        )
        return until

    async def count_failure(
        self, key: str, *, limit: int, lock_seconds: float, max_lock_seconds: float, memory_seconds: float
    ) -> None:
        """Add a failure; from `limit` on, lock for lock_seconds doubled per extra failure, capped."""
        await self.conn.execute(
            "INSERT INTO login_throttle AS t (key, failures, last_failure) VALUES ($1, 1, now())"
            " ON CONFLICT (key) DO UPDATE SET"
            " failures = CASE WHEN t.last_failure < now() - make_interval(secs => $2::float8) THEN 1"
            " ELSE t.failures + 1 END,"
            " last_failure = now()",
            key,
            memory_seconds,
        )
        await self.conn.execute(
            "UPDATE login_throttle SET locked_until = now() + make_interval(secs =>"
            " least($4::float8, $3::float8 * power(2, least(failures - $2, 20))))"
            " WHERE key = $1 AND failures >= $2",
            key,
            limit,
            lock_seconds,
            max_lock_seconds,
        )

    async def clear_failures(self, key: str) -> None:
        """Forget a key's failures and lock."""
        await self.conn.execute("DELETE FROM login_throttle WHERE key = $1", key)

    async def revoke_all_tokens(self, user_id: UUID, except_jti: UUID | None = None) -> int:
        """Kill every live token of a user, but one."""
        status: str = await self.conn.execute(
            "UPDATE tokens SET revoked_at = now()"
            " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()"
            " AND ($2::uuid IS NULL OR jti <> $2)",
            user_id,
            except_jti,
        )
        return int(status.split()[-1])

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        """Store a new password hash."""
        await self.conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)

    async def set_disabled(self, user_id: UUID, disabled: bool) -> asyncpg.Record | None:
        """Disable or enable a user; returns the user, None when unknown."""
        return await self.conn.fetchrow(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END"
            " WHERE id = $1 RETURNING id, username, display_name, role, disabled_at",
            user_id,
            disabled,
        )

    async def list_users(self, role: str | None, limit: int) -> list[asyncpg.Record]:
        """Accounts with a username (not guests), optionally of one role."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT id, username, display_name, role, disabled_at, created_at FROM users"
            " WHERE username IS NOT NULL AND ($1::text IS NULL OR role = $1)"
            " ORDER BY lower(username) LIMIT $2",
            role,
            limit,
        )
        return rows

    async def live_jtis(self, jtis: list[UUID]) -> set[UUID]:
        """Which of these tokens are still live (issued, not revoked, account enabled)."""
        rows = await self.conn.fetch(
            "SELECT t.jti FROM tokens t JOIN users u ON u.id = t.user_id"
            " WHERE t.jti = ANY($1::uuid[]) AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
            jtis,
        )
        return {row["jti"] for row in rows}
