"""SQL of the suggestions: the chat's names, matching text modules, stored suggestions."""

from __future__ import annotations

from uuid import UUID

import asyncpg


class SuggestionRepository:
    """Queries over chats, text_modules and suggested_replies; never commits."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def chat_people(self, chat_id: UUID) -> asyncpg.Record | None:
        """The chat's status and the display names of its customer and supporter."""
        return await self.conn.fetchrow(
            "SELECT c.status, cu.display_name AS customer_name, su.display_name AS supporter_name"
            " FROM chats c JOIN users cu ON cu.id = c.customer_id"
            " LEFT JOIN users su ON su.id = c.supporter_id WHERE c.id = $1",
            chat_id,
        )

    async def chat_exists(self, chat_id: UUID) -> bool:
        """Whether the chat exists."""
        return bool(await self.conn.fetchval("SELECT EXISTS (SELECT 1 FROM chats WHERE id = $1)", chat_id))

    async def matching_modules(self, query: str, limit: int) -> list[asyncpg.Record]:
        """Text modules whose title, text, tags or shortcut share words with an OR tsquery."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT shortcut, title, text, language, tags FROM ("
            " SELECT shortcut, title, text, language, tags,"
            "  to_tsvector('simple', shortcut || ' ' || title || ' ' || text || ' '"
            "   || array_to_string(tags, ' ')) AS doc FROM text_modules) m"
            " WHERE doc @@ to_tsquery('simple', $1)"
            " ORDER BY ts_rank(doc, to_tsquery('simple', $1)) DESC, shortcut LIMIT $2",
            query,
            limit,
        )
        return rows

    async def modules_by_prefix(self, prefix: str, limit: int) -> list[asyncpg.Record]:
        """Text modules whose shortcut starts with the prefix (or whose title contains it)."""
        pattern = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT shortcut, title, text, language FROM text_modules"
            " WHERE lower(shortcut) LIKE $1 || '%' OR lower(title) LIKE '%' || $1 || '%'"
            " ORDER BY (lower(shortcut) LIKE $1 || '%') DESC, shortcut LIMIT $2",
            pattern,
            limit,
        )
        return rows

    async def has_suggestions(self, message_id: int) -> bool:
        """Whether suggestions were stored for the message already."""
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM suggested_replies WHERE message_id = $1)", message_id
            )
        )

    async def insert(
        self, message_id: int, reply: str, confidence: float, source: str, title: str | None
    ) -> int:
        """Store one suggestion; returns its id."""
        value = await self.conn.fetchval(
            "INSERT INTO suggested_replies (message_id, reply, confidence, source, title)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            message_id,
            reply,
            confidence,
            source,
            title,
        )
        return int(value)

    async def for_message(self, chat_id: UUID, message_id: int | None) -> list[asyncpg.Record]:
        """A message's suggestions (default: the chat's latest customer message with any), best first."""
        if message_id is None:
            message_id = await self.conn.fetchval(
                "SELECT max(sr.message_id) FROM suggested_replies sr"
                " JOIN messages m ON m.id = sr.message_id WHERE m.chat_id = $1",
                chat_id,
            )
            if message_id is None:
                return []
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT sr.id, sr.message_id, sr.reply, sr.confidence, sr.source, sr.title"
            " FROM suggested_replies sr JOIN messages m ON m.id = sr.message_id"
            " WHERE m.chat_id = $1 AND sr.message_id = $2 ORDER BY sr.confidence DESC, sr.id",
            chat_id,
            message_id,
        )
        return rows

    async def stats(self) -> list[asyncpg.Record]:
        """Per source: suggestions shown, sent as they were, sent edited (ignored is the rest)."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT sr.source, count(*) AS shown,"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM messages m"
            "  WHERE m.suggestion_id = sr.id AND NOT m.suggestion_edited)) AS accepted,"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM messages m"
            "  WHERE m.suggestion_id = sr.id AND m.suggestion_edited)"
            "  AND NOT EXISTS (SELECT 1 FROM messages m"
            "  WHERE m.suggestion_id = sr.id AND NOT m.suggestion_edited)) AS accepted_edited"
            " FROM suggested_replies sr GROUP BY sr.source ORDER BY sr.source"
        )
        return rows
