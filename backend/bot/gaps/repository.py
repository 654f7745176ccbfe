"""SQL of the knowledge-gap report: the customer messages the bot could not help with."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# Hand-overs that say something about the knowledge base. Not customer_request (asking for a
# person is no gap) and not bot_error (the bot broke, whatever the knowledge).
GAP_HANDOVER_REASONS = ("low_confidence", "repeated_failure", "no_knowledge")


class GapRepository:
    """Reads bot_turns, bot_feedback and the questions' encrypted messages; never commits."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def gap_questions(self, since: datetime | None, limit: int) -> list[asyncpg.Record]:
        """Newest first: questions asked back or handed over for a gap, and answers rated not helpful.

        `reason` is the hand-over's reason, "clarified" for a question back, and "not_helpful"
        for an answer the customer rated so; each message has one turn, so it appears once.
        """
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "SELECT t.message_id, t.chat_id, m.sender_id, m.content, m.key_id, t.created_at, t.top_title,"
            " CASE t.outcome WHEN 'answered' THEN 'not_helpful' WHEN 'clarified' THEN 'clarified'"
            "  ELSE t.reason END AS reason"
            " FROM bot_turns t"
            " JOIN messages m ON m.id = t.message_id"
            " LEFT JOIN bot_feedback f ON f.message_id = t.answer_message_id"
            " WHERE m.kind = 'text'"
            " AND ($1::timestamptz IS NULL OR t.created_at >= $1)"
            " AND (t.outcome = 'clarified'"
            "  OR (t.outcome = 'handed_over' AND t.reason = ANY($2::text[]))"
            "  OR (t.outcome = 'answered' AND f.rating = 'not_helpful'))"
            " ORDER BY t.created_at DESC, t.id DESC LIMIT $3",
            since,
            list(GAP_HANDOVER_REASONS),
            limit,
        )
        return rows
