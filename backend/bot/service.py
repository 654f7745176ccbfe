"""One bot turn: read the chat, decide, answer or hand over, and record what happened."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from backend.bot.answer import extract_answer
from backend.bot.intent import detect_intent, detect_language
from backend.bot.llm import GroundingPassage, LlmClient, LlmDeclined, LlmError, cited_numbers
from backend.bot.policy import Decision, decide
from backend.bot.repository import BotRepository
from backend.bot.texts import Language, handover_text, say
from backend.chat import automation
from backend.chat import service as chat_service
from backend.core.context import AppContext
from backend.knowledge.schemas import ArticleHit
from backend.knowledge.service import Retriever

log = logging.getLogger(__name__)

SEARCH_DEPTH = 5
# The LLM reads the answer's article and close runners-up: enough to combine, not to drift.
LLM_ARTICLES = 3
LLM_PASSAGES_PER_ARTICLE = 2
_CHOICE = {
    0: re.compile(r"^\W*(1|eins|one|first|erste[rsn]?|das erste|the first( one)?)\W*$", re.IGNORECASE),
    1: re.compile(r"^\W*(2|zwei|two|second|zweite[rsn]?|das zweite|the second( one)?)\W*$", re.IGNORECASE),
}


@dataclass(frozen=True)
class Turn:
    """A committed customer message of a chat that may be with the bot."""

    chat_id: UUID
    message_id: int
    text: str
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class Outcome:
    """What a turn did: the stored turn's fields."""

    outcome: str
    reason: str | None = None
    confidence: float | None = None
    top_title: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    via_llm: bool = False
    handed_over: bool = False


def _source(hit: ArticleHit) -> dict[str, Any]:
    return {"title": hit.title, "url": hit.url}


def failures_in_a_row(turns: list[Any]) -> int:
    """Consecutive latest turns that did not help: asked back, or an answer rated not helpful."""
    count = 0
    for turn in turns:
        missed = turn["outcome"] == "clarified" or (
            turn["outcome"] == "answered" and turn["rating"] == "not_helpful"
        )
        if not missed:
            break
        count += 1
    return count


def chosen_article(text: str, offered: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The article a customer picked after being asked "this or that?" (by number or title)."""
    for index, pattern in _CHOICE.items():
        if index < len(offered) and pattern.match(text.strip()):
            return offered[index]
    folded = text.casefold().strip(" .!?")
    for source in offered:
        title = str(source.get("title", "")).casefold()
        if folded and (folded == title or (len(folded) >= 6 and folded in title)):
            return source
    return None


class Bot:
    """Turns a customer message into an answer, a question back, small talk or a hand-over."""

    def __init__(self, ctx: AppContext, llm: LlmClient | None) -> None:
        self.ctx = ctx
        self.llm = llm
        self.threshold = ctx.settings.bot_answer_threshold

    async def search(self, retriever: Retriever | None, text: str) -> list[ArticleHit]:
        """The best articles, or none without a retriever."""
        if retriever is None:
            return []
        return await retriever.search(text, limit=SEARCH_DEPTH)

    async def decide_turn(
        self, retriever: Retriever | None, turn: Turn, recent: list[Any], language: Language | None
    ) -> tuple[Decision, list[ArticleHit]]:
        """The decision and the hits it refers to."""
        intent = detect_intent(turn.text)
        if retriever is None and intent == "question":
            return Decision("handover", "bot_error"), []  # the embedding model could not be loaded
        last = recent[0] if recent else None
        if intent == "question" and last is not None and last["outcome"] == "clarified" and last["sources"]:
            picked = chosen_article(turn.text, list(last["sources"]))
            if picked is not None:
                hits = await self.search(retriever, str(picked["title"]))
                for index, hit in enumerate(hits):
                    if hit.title == picked["title"]:
                        return Decision("answer", "chosen", (index,)), hits
        hits = await self.search(retriever, turn.text) if intent == "question" else []
        knowledge_empty = False
        if intent == "question" and not hits:
            async with self.ctx.pool.acquire() as conn:
                knowledge_empty = await BotRepository(conn).knowledge_is_empty()
        decision = decide(
            intent,
            [hit.confidence for hit in hits],
            self.threshold,
            failures_in_a_row=failures_in_a_row(recent),
            knowledge_empty=knowledge_empty,
        )
        return decision, hits

    async def compose_answer(
        self, turn: Turn, hits: list[ArticleHit], index: int, language: Language | None
    ) -> Outcome:
        """The answer from the chosen article: the LLM's when configured and grounded, else extractive."""
        hit = hits[index]
        base = Outcome("answered", confidence=round(hit.confidence, 4), top_title=hit.title)
        if self.llm is not None:
            try:
                text, sources = await self._llm_answer(turn, hits, index, language)
            except LlmDeclined:
                return Outcome("handed_over", "low_confidence", base.confidence, hit.title)
            except LlmError as exc:
                log.warning("bot: the LLM failed (%s); answering extractively", type(exc).__name__)
            else:
                base.text, base.sources, base.via_llm = text, sources, True
                return base
        extract = extract_answer(turn.text, hit)
        if not extract:
            return Outcome("handed_over", "low_confidence", base.confidence, hit.title)
        base.text = extract
        base.sources = [_source(hit)]
        return base

    async def _llm_answer(
        self, turn: Turn, hits: list[ArticleHit], index: int, language: Language | None
    ) -> tuple[str, list[dict[str, Any]]]:
        """Stream the model's answer to the customer; keep it only if it cites the passages."""
        assert self.llm is not None
        ordered = [hits[index], *[h for i, h in enumerate(hits) if i != index][: LLM_ARTICLES - 1]]
        passages: list[GroundingPassage] = []
        owners: list[ArticleHit] = []
        for hit in ordered:
            for passage in sorted(hit.passages, key=lambda p: -p.cosine)[:LLM_PASSAGES_PER_ARTICLE]:
                passages.append(GroundingPassage(len(passages) + 1, hit.title, hit.url, passage.text))
                owners.append(hit)
        parts: list[str] = []
        async for delta in self.llm.stream_answer(turn.text, passages, language):
            parts.append(delta)
            await automation.bot_delta(self.ctx, turn.chat_id, turn.message_id, len(parts) - 1, delta)
        text = "".join(parts).strip()
        cited = cited_numbers(text, len(passages))
        if not cited:
            raise LlmError("the answer cites no passage")
        sources: list[dict[str, Any]] = []
        for number in cited:
            source = _source(owners[number - 1])
            if source not in sources:
                sources.append(source)
        return text, sources

    async def run(self, retriever: Retriever | None, turn: Turn) -> Outcome | None:
        """Handle one message of a bot chat; None when the chat is not (or no longer) with the bot."""
        started = time.monotonic()
        async with self.ctx.pool.acquire() as conn:
            repo = BotRepository(conn)
            state = await repo.chat_state(turn.chat_id)
            if state is None or state["status"] != "bot":
                return None
            recent = list(await repo.recent_turns(turn.chat_id, 3))
        await automation.bot_typing(self.ctx, turn.chat_id)
        language: Language | None = detect_language(turn.text)
        decision, hits = await self.decide_turn(retriever, turn, recent, language)
        if language is None and hits:
            language = "de" if (hits[0].language or "").startswith("de") else "en"
        outcome = await self.act(turn, decision, hits, language)
        await self.finish(turn, outcome, language, started)
        return outcome

    async def act(
        self, turn: Turn, decision: Decision, hits: list[ArticleHit], language: Language | None
    ) -> Outcome:
        """Carry the decision out up to the text to send (hand-overs happen in `finish`)."""
        if decision.action == "answer":
            return await self.compose_answer(turn, hits, decision.articles[0], language)
        top = hits[0] if hits else None
        confidence = round(top.confidence, 4) if top is not None else None
        title = top.title if top is not None else None
        if decision.action == "clarify":
            first, second = (hits[i] for i in decision.articles[:2])
            text = say("clarify", language, first=first.title, second=second.title)
            return Outcome("clarified", "tie", confidence, title, [_source(first), _source(second)], text)
        if decision.action == "smalltalk":
            return Outcome("smalltalk", decision.reason, text=say(decision.reason or "greeting", language))
        if decision.action == "rephrase":
            return Outcome("clarified", "not_helpful", confidence, title, text=say("rephrase", language))
        return Outcome("handed_over", decision.reason or "low_confidence", confidence, title)

    async def finish(self, turn: Turn, outcome: Outcome, language: Language | None, started: float) -> None:
        """Hand over if so decided, send the bot's message, and record the turn."""
        if outcome.outcome == "handed_over":
            chat = await chat_service.hand_over(self.ctx, turn.chat_id, outcome.reason or "low_confidence")
            if chat is None:
                return  # a supporter or the customer's button was faster: nothing to say
            outcome.handed_over = True
            async with self.ctx.pool.acquire() as conn:
                online = await BotRepository(conn).supporters_signed_in()
            outcome.text = handover_text(outcome.reason or "low_confidence", language, online)
            outcome.sources = []
        stored = await automation.post_bot_message(
            self.ctx, turn.chat_id, outcome.text, outcome.sources, f"bot:{turn.message_id}"
        )
        async with self.ctx.pool.acquire() as conn:
            await BotRepository(conn).insert_turn(
                chat_id=turn.chat_id,
                message_id=turn.message_id,
                answer_message_id=stored.id,
                outcome=outcome.outcome,
                reason=outcome.reason,
                confidence=outcome.confidence,
                top_title=outcome.top_title,
                sources=outcome.sources,
                via_llm=outcome.via_llm,
                latency_ms=int((time.monotonic() - started) * 1000),
            )

    async def fail(self, turn: Turn) -> None:
        """The turn broke or took too long: hand the chat to a person and tell the customer."""
        language: Language | None = detect_language(turn.text)
        await self.finish(turn, Outcome("handed_over", "bot_error"), language, turn.queued_at)
