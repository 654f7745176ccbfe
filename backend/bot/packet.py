"""The hand-over packet and customers' ratings of bot answers."""

from __future__ import annotations

from uuid import UUID

from backend.auth.service import CurrentUser
from backend.bot.repository import BotRepository
from backend.bot.schemas import BotAnswerRead, BotOutcomeRead, FeedbackRead, HandoverRead, Rating
from backend.chat import service as chat_service
from backend.chat.schemas import MessageRead, SourceRead
from backend.core.context import AppContext
from backend.core.errors import Forbidden, NotFound
from backend.core.timefmt import local_or_none

QUESTION_CHARS = 300
ANSWER_CHARS = 400
PACKET_MESSAGES = 200
PACKET_QUESTIONS = 3

REASON_WORDS = {
    "customer_request": "the customer asked for a person",
    "low_confidence": "the bot was not confident enough to answer",
    "repeated_failure": "the bot could not help twice in a row",
    "bot_error": "the bot failed or took too long",
    "no_knowledge": "the knowledge base is empty",
}


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def summarize(reason: str, questions: list[str], answers: list[BotAnswerRead], not_helpful: int) -> str:
    """One paragraph for the supporter: what was asked, what the bot did, why it handed over."""
    parts: list[str] = []
    if questions:
        asked = "; ".join(f"“{_trim(q, 120)}”" for q in questions)
        parts.append(f"The customer asked: {asked}.")
    answered = [a for a in answers if a.sources]
    if answered:
        titles = ", ".join(dict.fromkeys(f"“{s.title}”" for a in answered for s in a.sources))
        parts.append(f"The bot answered {len(answered)} time(s) from {titles}.")
    else:
        parts.append("The bot gave no answer from the knowledge base.")
    if not_helpful:
        parts.append(f"The customer rated {not_helpful} answer(s) not helpful.")
    parts.append(f"Handed over because {REASON_WORDS.get(reason, reason)}.")
    return " ".join(parts)


async def handover(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> HandoverRead:
    """The packet of a handed-over chat (staff only); 404 when it was never handed over."""
    if not user.is_staff:
        raise Forbidden("Only supporters see the hand-over.")
    async with ctx.pool.acquire() as conn:
        repo = BotRepository(conn)
        row = await repo.handover(chat_id)
        if row is None:
            raise NotFound("This chat was not handed over by the bot.")
        ratings = {r["message_id"]: r["rating"] for r in await repo.feedback_of_chat(chat_id)}
    messages = await chat_service.list_messages(ctx, user, chat_id, 0, PACKET_MESSAGES)
    before = [m for m in messages if row["escalated_at"] is None or m.created_at <= row["escalated_at"]]
    questions = [
        _trim(m.text, QUESTION_CHARS) for m in before if m.kind == "text" and m.sender.role == "user"
    ]
    answers = [_answer(m) for m in before if m.kind == "bot"]
    sources: list[SourceRead] = []
    for answer in answers:
        for source in answer.sources:
            if source not in sources:
                sources.append(source)
    not_helpful = sum(1 for rating in ratings.values() if rating == "not_helpful")
    recent = questions[-PACKET_QUESTIONS:]
    reason = row["escalation_reason"]
    return HandoverRead(
        reason=reason,
        escalated_at=local_or_none(row["escalated_at"]),
        summary=summarize(reason, recent, answers, not_helpful),
        questions=recent,
        answers=answers,
        sources=sources,
        not_helpful=not_helpful,
    )


def _answer(message: MessageRead) -> BotAnswerRead:
    return BotAnswerRead(
        message_id=message.id, text=_trim(message.text, ANSWER_CHARS), sources=message.sources or []
    )


async def rate(
    ctx: AppContext, user: CurrentUser, chat_id: UUID, message_id: int, rating: Rating
) -> FeedbackRead:
    """The chat's customer rates a bot answer; the latest rating counts."""
    await chat_service.ensure_can_read(ctx, user, chat_id)
    if user.is_staff:
        raise Forbidden("Only the chat's customer rates the bot's answers.")
    async with ctx.pool.acquire() as conn, conn.transaction():
        repo = BotRepository(conn)
        if not await repo.bot_message_of_chat(chat_id, message_id):
            raise NotFound("No such bot answer in this chat.")
        await repo.upsert_feedback(chat_id, message_id, rating)
    return FeedbackRead(message_id=message_id, rating=rating)


async def outcomes(ctx: AppContext) -> list[BotOutcomeRead]:
    """Admins: turns per outcome and reason, with their ratings."""
    async with ctx.pool.acquire() as conn:
        rows = await BotRepository(conn).outcome_counts()
    return [
        BotOutcomeRead(
            outcome=r["outcome"],
            reason=r["reason"],
            turns=r["turns"],
            helpful=r["helpful"],
            not_helpful=r["not_helpful"],
        )
        for r in rows
    ]
