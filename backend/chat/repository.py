"""SQL for chats and messages."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

# One SELECT shape for a chat with its customer and supporter, reused by every chat read.
_CHAT_SELECT = (
    "SELECT ch.id, ch.status, ch.created_at, ch.closed_at, ch.last_seq,"
    " ch.escalation_reason, ch.escalated_at,"
    " cu.id AS c_id, cu.username AS c_username, cu.display_name AS c_display_name, cu.role AS c_role,"
    " su.id AS s_id, su.username AS s_username, su.display_name AS s_display_name, su.role AS s_role"
    " FROM chats ch JOIN users cu ON cu.id = ch.customer_id LEFT JOIN users su ON su.id = ch.supporter_id"
)

_MESSAGE_SELECT = (
    "SELECT m.id, m.chat_id, m.seq, m.kind, m.content, m.key_id, m.client_msg_id, m.sources, m.created_at,"
    " u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, u.role AS u_role"
    " FROM messages m JOIN users u ON u.id = m.sender_id"
)


class ChatRepository:
    """Queries on chats and messages; never commits."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert_chat(self, customer_id: UUID, status: str, supporter_id: UUID | None = None) -> UUID:
        """Create a chat and return its id."""
        chat_id: UUID = await self.conn.fetchval(
            "INSERT INTO chats (customer_id, status, supporter_id, assigned_at)"
            " VALUES ($1, $2, $3, CASE WHEN $3::uuid IS NULL THEN NULL ELSE now() END) RETURNING id",
            customer_id,
            status,
            supporter_id,
        )
        return chat_id

    async def chat(self, chat_id: UUID) -> asyncpg.Record | None:
        """A chat with its people."""
        return await self.conn.fetchrow(_CHAT_SELECT + " WHERE ch.id = $1", chat_id)

    async def chats(
        self, *, status: str | None, customer_id: UUID | None, limit: int
    ) -> list[asyncpg.Record]:
        """Chats, newest first, optionally of one status and one customer."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            _CHAT_SELECT + " WHERE ($1::text IS NULL OR ch.status = $1)"
            " AND ($2::uuid IS NULL OR ch.customer_id = $2)"
            " ORDER BY ch.created_at DESC LIMIT $3",
            status,
            customer_id,
            limit,
        )
        return rows

    async def chat_access(self, chat_id: UUID) -> asyncpg.Record | None:
        """The fields that decide who may see a chat."""
        return await self.conn.fetchrow(
            "SELECT id, status, customer_id, supporter_id FROM chats WHERE id = $1", chat_id
        )

    async def messages_after(self, chat_id: UUID, after: int, limit: int) -> list[asyncpg.Record]:
        """Messages of a chat with seq greater than `after`, ascending."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            _MESSAGE_SELECT + " WHERE m.chat_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
            chat_id,
            after,
            limit,
        )
        return rows

    async def assign(self, chat_id: UUID, supporter_id: UUID) -> bool:
        """Give an unassigned chat to a supporter; False when it was not unassigned."""
        status: str = await self.conn.execute(
            "UPDATE chats SET status = 'assigned', supporter_id = $2, assigned_at = now(), updated_at = now()"
            " WHERE id = $1 AND status IN ('bot', 'open')",
            chat_id,
            supporter_id,
        )
        return status.endswith(" 1")

    async def close(self, chat_id: UUID) -> bool:
        """Close a chat that is not closed yet."""
        status: str = await self.conn.execute(
            "UPDATE chats SET status = 'closed', closed_at = now(), updated_at = now()"
            " WHERE id = $1 AND status <> 'closed'",
            chat_id,
        )
        return status.endswith(" 1")

    async def escalate(self, chat_id: UUID, reason: str) -> bool:
        """Hand a bot chat to the supporters' queue."""
        status: str = await self.conn.execute(
            "UPDATE chats SET status = 'open', escalation_reason = $2, escalated_at = now(),"
            " updated_at = now()"
            " WHERE id = $1 AND status = 'bot'",
            chat_id,
            reason,
        )
        return status.endswith(" 1")

    async def append_messages(self, values: Sequence[tuple[object, ...]]) -> list[asyncpg.Record]:
        """Append a batch in one statement (see migration 0002); one outcome row per input."""
        columns = list(zip(*values, strict=True))
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT idx, outcome, message_id, message_seq, message_created_at FROM append_messages("
            "$1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[],"
            " $8::bigint[], $9::bytea[], $10::text[])",
            *columns,
        )
        return rows

    async def lock_messages_not_on_key(
        self, key_id: str, after_id: int, skip_ids: Sequence[int], limit: int
    ) -> list[asyncpg.Record]:
        """Lock the next messages by id whose key is not `key_id`; rows locked elsewhere are skipped."""
        # NO KEY UPDATE, not UPDATE: foreign-key checks (a suggested reply inserted for a message)
        # take KEY SHARE, which this lock lets through; two rotations still exclude each other.
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT id, chat_id, sender_id, content, key_id FROM messages"
            " WHERE key_id <> $1 AND id > $2 AND NOT (id = ANY ($3::bigint[]))"
            " ORDER BY id LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED",
            key_id,
            after_id,
            list(skip_ids),
            limit,
        )
        return rows

    async def replace_message_contents(
        self,
        ids: Sequence[int],
        contents: Sequence[bytes],
        key_ids: Sequence[str],
        old_key_ids: Sequence[str],
    ) -> int:
        """Store re-encrypted contents in one statement; only rows still under their old key change."""
        status: str = await self.conn.execute(
            "UPDATE messages AS m SET content = v.content, key_id = v.key_id"
            " FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[])"
            " AS v (id, content, key_id, old_key_id)"
            " WHERE m.id = v.id AND m.key_id = v.old_key_id",
            list(ids),
            list(contents),
            list(key_ids),
            list(old_key_ids),
        )
        return int(status.rsplit(" ", 1)[-1])

    async def count_messages_not_on_key(self, key_id: str) -> int:
        """How many messages another key (or an unknown one) encrypted."""
        count: int = await self.conn.fetchval("SELECT count(*) FROM messages WHERE key_id <> $1", key_id)
        return count

    async def key_usage(self) -> dict[str, int]:
        """Messages per key id."""
        rows = await self.conn.fetch("SELECT key_id, count(*) AS n FROM messages GROUP BY key_id")
        return {row["key_id"]: row["n"] for row in rows}

    async def used_key_ids(self) -> list[str]:
        """The distinct key ids of stored messages, one index probe per id (a loose index scan)."""
        rows = await self.conn.fetch(
            "WITH RECURSIVE k (key_id) AS ("
            " SELECT min(key_id) FROM messages"
            " UNION ALL SELECT (SELECT min(m.key_id) FROM messages m WHERE m.key_id > k.key_id)"
            " FROM k WHERE k.key_id IS NOT NULL)"
            " SELECT key_id FROM k WHERE key_id IS NOT NULL"
        )
        return [row["key_id"] for row in rows]
