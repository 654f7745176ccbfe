"""Compute, store and read suggested replies: text modules and knowledge articles."""

from __future__ import annotations

import re
from uuid import UUID

import asyncpg

from backend.core.errors import NotFound
from backend.knowledge.repository import or_query
from backend.knowledge.schemas import ArticleHit
from backend.knowledge.service import Retriever
from backend.suggestions.repository import SuggestionRepository
from backend.suggestions.schemas import SuggestionRead, SuggestionSource, SuggestionStatsRead, TextModuleRead

MAX_SUGGESTIONS = 5
# Text-module confidence: the share of the message's words (3+ letters) found in the module,
# scaled to at most this value, so a perfect word match stays below a very sure article.
MODULE_MAX_CONFIDENCE = 0.8
MAX_WORDS = 30
PASSAGE_SENTENCES = 3
PASSAGE_CHARS = 600
NEUTRAL_SUPPORTER = "our support team"

_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def fill(text: str, customer_name: str | None, supporter_name: str | None) -> str:
    """Fill the placeholders; an unknown customer name leaves a neutral greeting."""
    text = text.replace("{{supporter_name}}", supporter_name or NEUTRAL_SUPPORTER)
    text = text.replace("{{customer_name}}", customer_name or "")
    return re.sub(r" +([,.!?])", r"\1", text).strip()


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3}


def module_confidence(message: str, module_text: str) -> float:
    """Share of the message's words present in the module, mapped into [0, MODULE_MAX_CONFIDENCE]."""
    words = list(dict.fromkeys(w for w in _WORD.findall(message.lower()) if len(w) >= 3))[:MAX_WORDS]
    if not words:
        return 0.0
    present = _words(module_text)
    share = sum(1 for w in words if w in present) / len(words)
    return round(max(0.0, min(1.0, share * MODULE_MAX_CONFIDENCE)), 4)


def knowledge_reply(hit: ArticleHit) -> str | None:
    """The best passage trimmed to a few sentences, then a link to the article."""
    if not hit.passages:
        return None
    passage = " ".join(hit.passages[0].text.split())
    sentences = _SENTENCE_END.split(passage)
    text = " ".join(sentences[:PASSAGE_SENTENCES])
    if len(text) > PASSAGE_CHARS:
        text = text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
    if not text:
        return None
    return f"{text}\n\nMore: {hit.url}" if hit.url else text


async def compute(
    pool: asyncpg.Pool, retriever: Retriever | None, chat_id: UUID, message_id: int, text: str
) -> list[SuggestionRead] | None:
    """Suggestions for one customer message, stored and sorted; None when the chat is gone or closed."""
    async with pool.acquire() as conn:
        people = await SuggestionRepository(conn).chat_people(chat_id)
        # A chat with the bot gets suggestions when the bot hands it over, not before; a message
        # already served (handed over while the first job ran) is not served twice.
        if people is None or people["status"] in ("closed", "bot"):
            return None
        if await SuggestionRepository(conn).has_suggestions(message_id):
            return None
        found: list[tuple[float, str, SuggestionSource, str | None]] = []
        query = or_query(text[:2000])
        if query is not None:
            for row in await SuggestionRepository(conn).matching_modules(query, MAX_SUGGESTIONS):
                haystack = " ".join([row["shortcut"], row["title"], row["text"], *row["tags"]])
                confidence = module_confidence(text, haystack)
                if confidence > 0:
                    reply = fill(row["text"], people["customer_name"], people["supporter_name"])
                    found.append((confidence, reply, "text_module", row["title"]))
    if retriever is not None:
        for hit in await retriever.search(text, limit=MAX_SUGGESTIONS):
            answer = knowledge_reply(hit)
            if answer is not None:
                found.append((round(max(0.0, min(1.0, hit.confidence)), 4), answer, "knowledge", hit.title))
    found.sort(key=lambda item: item[0], reverse=True)
    found = found[:MAX_SUGGESTIONS]
    out: list[SuggestionRead] = []
    async with pool.acquire() as conn, conn.transaction():
        repo = SuggestionRepository(conn)
        for confidence, reply, source, title in found:
            suggestion_id = await repo.insert(message_id, reply, confidence, source, title)
            out.append(
                SuggestionRead(
                    id=suggestion_id,
                    message_id=message_id,
                    text=reply,
                    confidence=confidence,
                    source=source,
                    title=title,
                )
            )
    return out


def _read(row: asyncpg.Record) -> SuggestionRead:
    return SuggestionRead(
        id=row["id"],
        message_id=row["message_id"],
        text=row["reply"],
        confidence=round(float(row["confidence"]), 4),  # stored as real
        source=row["source"],
        title=row["title"],
    )


async def list_suggestions(pool: asyncpg.Pool, chat_id: UUID, message_id: int | None) -> list[SuggestionRead]:
    """A message's stored suggestions (default: the latest customer message's), best first."""
    async with pool.acquire() as conn:
        repo = SuggestionRepository(conn)
        if not await repo.chat_exists(chat_id):
            raise NotFound("No such chat.")
        return [_read(row) for row in await repo.for_message(chat_id, message_id)]


async def search_modules(
    pool: asyncpg.Pool, q: str, chat_id: UUID | None, limit: int
) -> list[TextModuleRead]:
    """Text modules by shortcut prefix (or title), placeholders filled for a chat if given."""
    async with pool.acquire() as conn:
        repo = SuggestionRepository(conn)
        customer = supporter = None
        if chat_id is not None:
            people = await repo.chat_people(chat_id)
            if people is None:
                raise NotFound("No such chat.")
            customer, supporter = people["customer_name"], people["supporter_name"]
        rows = await repo.modules_by_prefix(q.strip().lstrip(":/"), limit)
    return [
        TextModuleRead(
            shortcut=row["shortcut"],
            title=row["title"],
            text=fill(row["text"], customer, supporter) if chat_id is not None else row["text"],
            language=row["language"],
        )
        for row in rows
    ]


async def stats(pool: asyncpg.Pool) -> list[SuggestionStatsRead]:
    """Per source: shown, accepted as is, accepted edited, ignored."""
    async with pool.acquire() as conn:
        rows = await SuggestionRepository(conn).stats()
    return [
        SuggestionStatsRead(
            source=row["source"],
            shown=row["shown"],
            accepted=row["accepted"],
            accepted_edited=row["accepted_edited"],
            ignored=row["shown"] - row["accepted"] - row["accepted_edited"],
        )
        for row in rows
    ]
