"""The knowledge-gap report: read the questions the bot could not help with, decrypt, group, rank."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np

from backend.bot.gaps.cluster import closest_to_centre, leader_clusters, normalise_text, text_clusters
from backend.bot.gaps.repository import GapRepository
from backend.bot.gaps.schemas import GapClusterRead, GapReportRead, Grouping
from backend.core.context import AppContext
from backend.core.crypto import DecryptionError, KeyRing
from backend.core.timefmt import SERVER_ZONE, local
from backend.knowledge.embedder import Embedder, in_model_thread

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 5000
MAX_LIMIT = 10_000
EXAMPLES = 3
EXAMPLE_CHARS = 300


@dataclass(frozen=True, slots=True)
class GapQuestion:
    """One decrypted question and what the bot made of it."""

    message_id: int
    text: str
    reason: str
    top_title: str | None
    asked_at: datetime


def current_embedder(ctx: AppContext) -> Embedder | None:
    """The app's embedding model, or None while it loads (or when it is off or failed to load)."""
    engine = ctx.extras.get("suggestions")
    retriever = getattr(engine, "retriever", None)
    embedder: Embedder | None = getattr(retriever, "embedder", None)
    return embedder


def trim(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """The text with whitespace runs as one space, cut at a word to at most `limit` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def _counts(values: Iterable[str | None]) -> dict[str, int]:
    """Counts per value, most first (ties by name), None left out."""
    counted = Counter(value for value in values if value)
    return dict(sorted(counted.items(), key=lambda item: (-item[1], item[0])))


def _examples(questions: Sequence[GapQuestion], ordered: Sequence[int]) -> list[str]:
    """The first EXAMPLES questions of `ordered` that differ as shown (trimmed, normalised)."""
    seen: set[str] = set()
    examples: list[str] = []
    for index in ordered:
        shown = trim(questions[index].text)
        key = normalise_text(shown)
        if key in seen:
            continue
        seen.add(key)
        examples.append(shown)
        if len(examples) == EXAMPLES:
            break
    return examples


def build_report(
    questions: Sequence[GapQuestion],
    vectors: Sequence[Sequence[float]] | None,
    threshold: float,
    generated_at: datetime,
) -> GapReportRead:
    """Group the questions (by vectors, or by normalised text without them) and rank the groups.

    Most frequent first; equal sizes: the most recently seen first. CPU work: run it in a thread.
    """
    grouping: Grouping = "text" if vectors is None else "similarity"
    matrix = None if vectors is None else np.asarray(vectors, dtype=np.float64)
    if matrix is not None and len(matrix) != len(questions):
        raise ValueError("one vector per question is needed")
    if matrix is None:
        groups = text_clusters([q.text for q in questions])
    else:
        groups = leader_clusters(matrix, threshold)
    ranked: list[tuple[int, datetime, int, GapClusterRead]] = []
    for first, members in enumerate(groups):
        if matrix is None:
            ordered = sorted(members, key=lambda i: (-questions[i].asked_at.timestamp(), i))
        else:
            ordered = closest_to_centre(matrix, members)
        last_seen = max(questions[i].asked_at for i in members)
        cluster = GapClusterRead(
            size=len(members),
            examples=_examples(questions, ordered),
            reasons=_counts(questions[i].reason for i in members),
            last_seen_at=local(last_seen),
            top_titles=_counts(questions[i].top_title for i in members),
        )
        ranked.append((len(members), last_seen, first, cluster))
    ranked.sort(key=lambda item: (-item[0], -item[1].timestamp(), item[2]))
    return GapReportRead(
        generated_at=local(generated_at),
        questions=len(questions),
        grouping=grouping,
        clusters=[item[3] for item in ranked],
    )


def decrypt_questions(keyring: KeyRing, rows: Sequence[Any]) -> list[GapQuestion]:
    """The rows' questions in the clear; one that does not decrypt is left out (and logged)."""
    questions: list[GapQuestion] = []
    unreadable = 0
    for row in rows:
        try:
            text = keyring.decrypt(row["content"], row["key_id"], row["chat_id"], row["sender_id"])
        except DecryptionError:
            unreadable += 1
            continue
        questions.append(
            GapQuestion(
                message_id=row["message_id"],
                text=text,
                reason=row["reason"] or "unknown",
                top_title=row["top_title"],
                asked_at=row["created_at"],
            )
        )
    if unreadable:
        log.warning("knowledge gaps: %d questions do not decrypt with the configured keys", unreadable)
    return questions


def as_aware(since: datetime | None) -> datetime | None:
    """A time without offset read as the server's local time (Europe/Berlin), like the API speaks."""
    if since is None or since.tzinfo is not None:
        return since
    return since.replace(tzinfo=SERVER_ZONE)


async def report(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    embedder: Embedder | None,
    threshold: float,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> GapReportRead:
    """The knowledge-gap report over the newest `limit` gap questions since `since`."""
    async with pool.acquire() as conn:
        rows = await GapRepository(conn).gap_questions(as_aware(since), limit)
    questions = await asyncio.to_thread(decrypt_questions, keyring, rows)
    vectors: list[list[float]] | None = None if embedder is None else []
    if embedder is not None and questions:
        try:
            vectors = await in_model_thread(embedder.embed, [q.text for q in questions])
        except Exception:
            log.exception("knowledge gaps: embedding failed; grouping by identical text instead")
            vectors = None
    return await asyncio.to_thread(build_report, questions, vectors, threshold, datetime.now(UTC))


async def knowledge_gaps(ctx: AppContext, since: datetime | None, limit: int) -> GapReportRead:
    """The report with the app's keys and (when loaded) its embedding model."""
    return await report(
        ctx.pool, ctx.keyring, current_embedder(ctx), ctx.settings.gaps_similarity, since, limit
    )


def report_lines(report: GapReportRead, top: int | None = None) -> list[str]:
    """The report as a readable table for a terminal: most frequent first, with examples."""
    how = "by similarity" if report.grouping == "similarity" else "by identical text (no embedding model)"
    lines = [
        f"knowledge gaps at {report.generated_at.isoformat(timespec='seconds')}: {report.questions} "
        f"questions in {len(report.clusters)} groups, grouped {how}"
    ]
    if not report.clusters:
        lines.append("no unanswered questions")
        return lines
    shown = report.clusters if top is None else report.clusters[:top]
    lines.append(f"{'#':>4}  {'size':>5}  {'last seen':<16}  reasons")
    for number, cluster in enumerate(shown, start=1):
        reasons = ", ".join(f"{name} {count}" for name, count in cluster.reasons.items())
        seen = cluster.last_seen_at.strftime("%Y-%m-%d %H:%M")
        lines.append(f"{number:>4}  {cluster.size:>5}  {seen:<16}  {reasons}")
        for example in cluster.examples:
            lines.append(f"{'':>13}- {example}")
        if cluster.top_titles:
            titles = ", ".join(f"{title} ({count})" for title, count in cluster.top_titles.items())
            lines.append(f"{'':>13}articles: {titles}")
    if len(shown) < len(report.clusters):
        lines.append(f"... and {len(report.clusters) - len(shown)} more groups (--top 0 shows all)")
    return lines
