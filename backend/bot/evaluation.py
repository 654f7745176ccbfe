"""The bot's outcomes on labelled questions, per answer threshold, with the live policy's rule."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from backend.bot.answer import extract_answer
from backend.bot.policy import retrieval_decision
from backend.knowledge.service import Retriever

THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)


@dataclass(frozen=True)
class BotPoint:
    """Shares of questions by what the bot does with them at one threshold."""

    threshold: float
    correct: float
    wrong: float
    asked_back_offered: float
    asked_back_missed: float
    declined: float
    out_of_scope_answered: float
    out_of_scope_asked_back: float


def bot_curve(
    ranked: Sequence[Sequence[tuple[float, int]]],
    in_scope: Sequence[bool],
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[BotPoint]:
    """For each threshold: in scope answered right / wrong / asked back / declined; out of scope answered."""
    points: list[BotPoint] = []
    inside = [i for i, flag in enumerate(in_scope) if flag]
    outside = [i for i, flag in enumerate(in_scope) if not flag]
    for threshold in thresholds:
        counts = {"right": 0, "wrong": 0, "offered": 0, "missed": 0, "declined": 0, "out": 0, "out_asked": 0}
        for i, pairs in enumerate(ranked):
            decision = retrieval_decision([c for c, _ in pairs], threshold)
            if in_scope[i]:
                if decision.action == "answer":
                    counts["right" if pairs[0][1] else "wrong"] += 1
                elif decision.action == "clarify":
                    offered = any(pairs[j][1] for j in decision.articles)
                    counts["offered" if offered else "missed"] += 1
                else:
                    counts["declined"] += 1
            elif decision.action == "answer":
                counts["out"] += 1
            elif decision.action == "clarify":
                counts["out_asked"] += 1
        n, m = max(len(inside), 1), max(len(outside), 1)
        points.append(
            BotPoint(
                threshold,
                counts["right"] / n,
                counts["wrong"] / n,
                counts["offered"] / n,
                counts["missed"] / n,
                counts["declined"] / n,
                counts["out"] / m,
                counts["out_asked"] / m,
            )
        )
    return points


def curve_lines(points: Sequence[BotPoint], chosen: float) -> list[str]:
    """The bot's outcome table as Markdown; the configured threshold in bold."""
    lines = [
        "| answer if confidence >= | answered, correct | answered, wrong | asked back, right one offered "
        "| asked back, not offered | handed over | out of scope answered | out of scope asked back |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in points:
        mark = "**" if abs(p.threshold - chosen) < 1e-9 else ""
        lines.append(
            f"| {mark}{p.threshold:g}{mark} | {p.correct:.1%} | {p.wrong:.1%} | {p.asked_back_offered:.1%} "
            f"| {p.asked_back_missed:.1%} | {p.declined:.1%} | {p.out_of_scope_answered:.1%} "
            f"| {p.out_of_scope_asked_back:.1%} |"
        )
    return lines


async def answer_latency(
    retriever: Retriever, questions: Sequence[str], threshold: float
) -> tuple[float, float]:
    """p50 and p95 (ms) of the bot's extractive turn without storage: search, decide, extract."""
    timings: list[float] = []
    for text in questions:
        started = time.perf_counter()
        hits = await retriever.search(text, limit=5)
        decision = retrieval_decision([h.confidence for h in hits], threshold)
        if decision.action == "answer":
            extract_answer(text, hits[decision.articles[0]])
        timings.append((time.perf_counter() - started) * 1000)
    if len(timings) < 2:
        return (timings[0], timings[0]) if timings else (0.0, 0.0)
    return statistics.median(timings), statistics.quantiles(timings, n=20, method="inclusive")[18]
