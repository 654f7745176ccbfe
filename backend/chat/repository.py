"""SQL for chats and messages."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

# One SELECT shape for a chat with its customer and supporter, reused by every chat read.
_CHAT_SELECT = (
    "SELECT ch.id, ch.status, ch.created_at, ch.closed_at, ch.last_seq, ch.escalation_reason,"
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

    async def insert_chat(self, customer_id: UUID, status: str) -> UUID:
        """Create a chat and return its id."""
        chat_id: UUID = await self.conn.fetchval(
            "INSERT INTO chats (customer_id, status) VALUES ($1, $2) RETURNING id", customer_id, status
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
            "UPDATE chats SET status = 'open', escalation_reason = $2, updated_at = now()"
            " WHERE id = $1 AND status = 'bot'",
            chat_id,
            reason,
        )
        return status.endswith(" 1")

    # --- group commit -------------------------------------------------------------------

    async def lock_chats(self, chat_ids: Sequence[UUID]) -> list[asyncpg.Record]:
        """Lock the chats of a batch in id order (no deadlocks) and read their state."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT id, status, customer_id, supporter_id, last_seq FROM chats"
            " WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
            chat_ids,
        )
        return rows

    async def existing_messages(
        self, chat_ids: Sequence[UUID], sender_ids: Sequence[UUID], client_msg_ids: Sequence[str]
    ) -> list[asyncpg.Record]:
        """Messages already stored under these (chat, sender, client_msg_id) keys."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT m.id, m.chat_id, m.seq, m.sender_id, m.client_msg_id, m.created_at"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS k(chat_id, sender_id, client_msg_id)"
            " JOIN messages m ON m.chat_id = k.chat_id AND m.sender_id = k.sender_id"
            " AND m.client_msg_id = k.client_msg_id",
            chat_ids,
            sender_ids,
            client_msg_ids,
        )
        return rows

    async def suggestions_of(self, suggestion_ids: Sequence[int]) -> list[asyncpg.Record]:
        """Suggested replies by id, with the chat they were made for."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT sr.id, sr.reply, m.chat_id FROM suggested_replies sr"
            " JOIN messages m ON m.id = sr.message_id WHERE sr.id = ANY($1::bigint[])",
            suggestion_ids,
        )
        return rows

    async def insert_messages(self, values: Sequence[tuple[object, ...]]) -> list[asyncpg.Record]:
        """Insert a batch of messages in one statement; returns id, chat_id, seq, created_at."""
        columns = list(zip(*values, strict=True))
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "INSERT INTO messages (chat_id, seq, sender_id, kind, content, key_id, client_msg_id,"
            " suggestion_id, suggestion_edited, sources)"
            " SELECT c, s, u, k, b, kid, cm, sg, se, src::jsonb FROM unnest("
            "$1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::bytea[], $6::text[], $7::text[],"
            " $8::bigint[], $9::bool[], $10::text[]) AS t(c, s, u, k, b, kid, cm, sg, se, src)"
            " RETURNING id, chat_id, seq, created_at",
            *columns,
        )
        return rows

    async def set_last_seq(self, chat_ids: Sequence[UUID], last_seqs: Sequence[int]) -> None:
        """Record the highest seq handed out per chat."""
        await self.conn.execute(
            "UPDATE chats c SET last_seq = v.last_seq, updated_at = now()"
            " FROM unnest($1::uuid[], $2::int[]) AS v(id, last_seq) WHERE c.id = v.id",
            chat_ids,
            last_seqs,
        )
