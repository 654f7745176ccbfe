"""SQL of the archive: claiming and deleting closed chats in the main database, and the
archive database's `archived_chats`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import asyncpg

# Any constant works; it only has to be the same for every node and command.
ARCHIVE_LOCK_ID = 7_420_113_002


class SourceRepository:
    """The main database's side: closed chats to move, and a customer's data to purge."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def try_lock(self) -> bool:
        """Take the session-level archiving lock if no other pass holds it."""
        locked: bool = await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", ARCHIVE_LOCK_ID)
        return locked

    async def unlock(self) -> None:
        """Release the archiving lock."""
        await self.conn.execute("SELECT pg_advisory_unlock($1)", ARCHIVE_LOCK_ID)

    async def claim_closed_chats(self, older_than: timedelta, limit: int) -> list[asyncpg.Record]:
        """Lock up to `limit` chats closed before now() - older_than, oldest first, with their people.

        Rows another transaction holds are skipped, so concurrent passes share the work.
        """
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT ch.id, ch.status, ch.customer_id, ch.supporter_id, ch.last_seq,"
            " ch.escalation_reason, ch.created_at, ch.assigned_at, ch.closed_at,"
            " cu.username AS c_username, cu.display_name AS c_display_name, cu.role AS c_role,"
            " su.username AS s_username, su.display_name AS s_display_name, su.role AS s_role"
            " FROM chats ch JOIN users cu ON cu.id = ch.customer_id"
            " LEFT JOIN users su ON su.id = ch.supporter_id"
            " WHERE ch.status = 'closed' AND ch.closed_at < now() - $1::interval"
            " ORDER BY ch.closed_at, ch.id LIMIT $2"
            " FOR UPDATE OF ch SKIP LOCKED",
            older_than,
            limit,
        )
        return rows

    async def messages_of(self, chat_ids: Sequence[UUID]) -> list[asyncpg.Record]:
        """Every message of these chats with its sender, by chat and seq."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT m.id, m.chat_id, m.seq, m.kind, m.content, m.key_id, m.client_msg_id,"
            " m.suggestion_id, m.suggestion_edited, m.sources, m.created_at,"
            " u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, u.role AS u_role"
            " FROM messages m JOIN users u ON u.id = m.sender_id"
            " WHERE m.chat_id = ANY($1::uuid[]) ORDER BY m.chat_id, m.seq",
            list(chat_ids),
        )
        return rows

    async def delete_chats(self, chat_ids: Sequence[UUID]) -> int:
        """Delete chats; their messages, suggested replies and invitations go with them."""
        status: str = await self.conn.execute("DELETE FROM chats WHERE id = ANY($1::uuid[])", list(chat_ids))
        return int(status.rsplit(" ", 1)[1])

    async def lock_user(self, user_id: UUID) -> str | None:
        """Lock a user row against changes and new chats; returns its role."""
        role: str | None = await self.conn.fetchval(
            "SELECT role FROM users WHERE id = $1 FOR UPDATE", user_id
        )
        return role

    async def lock_customer_chats(self, customer_id: UUID) -> list[UUID]:
        """Lock a customer's chats (waits for an archiving batch that holds one to finish)."""
        rows = await self.conn.fetch(
            "SELECT id FROM chats WHERE customer_id = $1 ORDER BY id FOR UPDATE", customer_id
        )
        return [row["id"] for row in rows]

    async def count_messages(self, chat_ids: Sequence[UUID]) -> int:
        """How many messages these chats hold."""
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM messages WHERE chat_id = ANY($1::uuid[])", list(chat_ids)
        )
        return count

    async def delete_customer_rows(self, customer_id: UUID) -> None:
        """Delete a customer's invitations and session tokens."""
        await self.conn.execute("DELETE FROM invitations WHERE customer_id = $1", customer_id)
        await self.conn.execute("DELETE FROM tokens WHERE user_id = $1", customer_id)

    async def delete_user(self, user_id: UUID) -> None:
        """Delete a users row (raises ForeignKeyViolationError when rows still point to it)."""
        await self.conn.execute("DELETE FROM users WHERE id = $1", user_id)

    async def anonymise_user(self, user_id: UUID) -> None:
        """Strip a users row of everything that identifies the person and disable it."""
        await self.conn.execute(
            "UPDATE users SET username = NULL, display_name = 'Deleted customer', email = NULL,"
            " password_hash = NULL, resume_token_hash = NULL, disabled_at = coalesce(disabled_at, now())"
            " WHERE id = $1",
            user_id,
        )


class ArchiveRepository:
    """The archive database's `archived_chats`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert(
        self,
        ids: Sequence[UUID],
        user_ids: Sequence[UUID],
        supporter_ids: Sequence[UUID | None],
        contents: Sequence[str],
    ) -> int:
        """Write archived chats in one statement; a chat already there is left as it is."""
        status: str = await self.conn.execute(
            "INSERT INTO archived_chats (id, user_id, supporter_id, chat_content)"
            " SELECT id, user_id, supporter_id, content::jsonb"
            " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[])"
            " AS t(id, user_id, supporter_id, content)"
            " ON CONFLICT (id) DO NOTHING",
            list(ids),
            list(user_ids),
            list(supporter_ids),
            list(contents),
        )
        return int(status.rsplit(" ", 1)[1])

    async def get(self, chat_id: UUID) -> asyncpg.Record | None:
        """One archived chat with its content."""
        return await self.conn.fetchrow(
            "SELECT id, user_id, supporter_id, chat_content, archived_at FROM archived_chats WHERE id = $1",
            chat_id,
        )

    async def newest(self, customer_id: UUID | None, limit: int) -> list[asyncpg.Record]:
        """Archived chats newest first, without their messages."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT id, user_id, supporter_id, chat_content - 'messages' AS chat_content, archived_at"
            " FROM archived_chats WHERE ($1::uuid IS NULL OR user_id = $1)"
            " ORDER BY archived_at DESC, id LIMIT $2",
            customer_id,
            limit,
        )
        return rows

    async def delete_customer(self, customer_id: UUID) -> tuple[int, int]:
        """Delete a customer's archived chats; returns (chats, messages) removed."""
        row = await self.conn.fetchrow(
            "WITH gone AS (DELETE FROM archived_chats WHERE user_id = $1"
            " RETURNING jsonb_array_length(chat_content -> 'messages') AS n)"
            " SELECT count(*) AS chats, coalesce(sum(n), 0)::bigint AS messages FROM gone",
            customer_id,
        )
        assert row is not None
        return int(row["chats"]), int(row["messages"])

    async def key_usage(self) -> dict[str, int]:
        """Archived messages per key id (their ciphertext is kept as it was)."""
        rows = await self.conn.fetch(
            "SELECT m->>'key_id' AS key_id, count(*) AS n"
            " FROM archived_chats, jsonb_array_elements(chat_content->'messages') AS m GROUP BY 1"
        )
        return {row["key_id"]: row["n"] for row in rows if row["key_id"] is not None}


class ServerRepository:
    """Questions about the server a connection is on, to find or create the archive database."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def current_database(self) -> str:
        """The name of the connection's database."""
        name: str = await self.conn.fetchval("SELECT current_database()")
        return name

    async def database_exists(self, name: str) -> bool:
        """Whether the server has a database of this name."""
        exists: bool = await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name
        )
        return exists

    async def create_database(self, name: str) -> None:
        """CREATE DATABASE (identifiers cannot be parameters: quoted by the server's own rules)."""
        quoted: str = await self.conn.fetchval("SELECT quote_ident($1)", name)
        await self.conn.execute("CREATE DATABASE " + quoted)
