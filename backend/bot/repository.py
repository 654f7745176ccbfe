"""SQL of the bot: its turns, customers' ratings, and what a hand-over shows the supporter."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg


class BotRepository:
    """Queries over bot_turns, bot_feedback and the chat they belong to; never commits."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def chat_state(self, chat_id: UUID) -> asyncpg.Record | None:
        """The chat's status and customer (None when it is gone)."""
        return await self.conn.fetchrow(
            "SELECT ch.status, ch.customer_id, u.display_name AS customer_name"
            " FROM chats ch JOIN users u ON u.id = ch.customer_id WHERE ch.id = $1",
            chat_id,
        )

    async def recent_turns(self, chat_id: UUID, limit: int) -> list[asyncpg.Record]:
        """The chat's latest turns, newest first, each with the rating of its answer."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT t.outcome, t.reason, t.sources, t.message_id, f.rating"
            " FROM bot_turns t LEFT JOIN bot_feedback f ON f.message_id = t.answer_message_id"
            " WHERE t.chat_id = $1 ORDER BY t.id DESC LIMIT $2",
            chat_id,
            limit,
        )
        return rows

    async def insert_turn(
        self,
        *,
        chat_id: UUID,
        message_id: int,
        answer_message_id: int | None,
        outcome: str,
        reason: str | None,
        confidence: float | None,
        top_title: str | None,
        sources: list[dict[str, Any]] | None,
        via_llm: bool,
        latency_ms: int,
    ) -> None:
        """Record what the bot did with a message (once per message)."""
        await self.conn.execute(
            "INSERT INTO bot_turns (chat_id, message_id, answer_message_id, outcome, reason, confidence,"
            " top_title, sources, via_llm, latency_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (message_id) DO NOTHING",
            chat_id,
            message_id,
            answer_message_id,
            outcome,
            reason,
            confidence,
            top_title,
            json.dumps(sources) if sources is not None else None,
            via_llm,
            latency_ms,
        )

    async def knowledge_is_empty(self) -> bool:
        """Whether no article is ingested at all."""
        return not await self.conn.fetchval("SELECT EXISTS (SELECT 1 FROM knowledge_documents)")

    async def supporters_signed_in(self) -> bool:
        """Whether some enabled supporter or admin holds a live session."""
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM tokens t JOIN users u ON u.id = t.user_id"
                " WHERE u.role IN ('supporter', 'admin') AND u.disabled_at IS NULL"
                " AND t.revoked_at IS NULL AND t.expires_at > now())"
            )
        )

    async def bot_message_of_chat(self, chat_id: UUID, message_id: int) -> bool:
        """Whether the message is a bot answer from the knowledge in this chat (not small talk)."""
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM bot_turns"
                " WHERE answer_message_id = $1 AND chat_id = $2 AND outcome = 'answered')",
                message_id,
                chat_id,
            )
        )

    async def upsert_feedback(self, chat_id: UUID, message_id: int, rating: str) -> None:
        """Store a rating; a new one replaces the customer's earlier one."""
        await self.conn.execute(
            "INSERT INTO bot_feedback (message_id, chat_id, rating) VALUES ($1, $2, $3)"
            " ON CONFLICT (message_id) DO UPDATE SET rating = EXCLUDED.rating, updated_at = now()",
            message_id,
            chat_id,
            rating,
        )

    async def feedback_of_chat(self, chat_id: UUID) -> list[asyncpg.Record]:
        """Every rating in a chat."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT message_id, rating FROM bot_feedback WHERE chat_id = $1 ORDER BY message_id", chat_id
        )
        return rows

    async def handover(self, chat_id: UUID) -> asyncpg.Record | None:
        """The chat's hand-over: reason and time (None before any)."""
        return await self.conn.fetchrow(
            "SELECT escalation_reason, escalated_at FROM chats"
            " WHERE id = $1 AND escalation_reason IS NOT NULL",
            chat_id,
        )

    async def turns_of_chat(self, chat_id: UUID) -> list[asyncpg.Record]:
        """Every turn of a chat, oldest first."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT message_id, answer_message_id, outcome, reason, confidence, top_title, sources"
            " FROM bot_turns WHERE chat_id = $1 ORDER BY id",
            chat_id,
        )
        return rows

    async def outcome_counts(self) -> list[asyncpg.Record]:
        """Turns per outcome and reason, and ratings per answer, over everything stored."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT t.outcome, coalesce(t.reason, '') AS reason, count(*) AS turns,"
            " count(f.rating) FILTER (WHERE f.rating = 'helpful') AS helpful,"
            " count(f.rating) FILTER (WHERE f.rating = 'not_helpful') AS not_helpful"
            " FROM bot_turns t LEFT JOIN bot_feedback f ON f.message_id = t.answer_message_id"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return rows
