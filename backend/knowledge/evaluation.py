"""Measure retrieval on labelled questions: Recall@k, MRR, calibration, the answer/decline curve, latency.

Hybrid weights and the calibration are fitted inside k-fold cross-validation, so every reported
number comes from questions the fitted parameters never saw.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.knowledge.ranking import (
    CALIBRATION_DEPTH,
    Calibration,
    Mode,
    RankingParams,
    Weights,
    features,
    fit_logistic,
    rank,
    scope_features,
)
from backend.knowledge.schemas import ArticleCandidate
from backend.knowledge.service import Retriever

FOLDS = 5
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MAX_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
LEAD_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
FULLTEXT_GRID = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class Question:
    """A labelled question; expected None means no article answers it."""

    text: str
    expected: str | None


def load_questions(path: Path, sample: int | None = None) -> list[Question]:
    """Questions from JSON lines `{"question", "expected_title"}`; a stable sample when asked."""
    questions: list[Question] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append(Question(str(item["question"]), item.get("expected_title")))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a question line ({exc})") from None
    if sample is not None and sample < len(questions):
        questions = sorted(questions, key=lambda q: _digest(q.text))[:sample]
    return questions


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fold_of(question: Question) -> int:
    """A question's fold, fixed by its text."""
    return int(_digest(question.text)[:8], 16) % FOLDS


@dataclass
class Metrics:
    """Article-level retrieval quality over the in-scope questions."""

    recall: dict[int, float]
    mrr: float
    count: int

    def row(self, name: str) -> str:
        """A Markdown table row."""
        recall = " | ".join(f"{self.recall[k]:.3f}" for k in (1, 3, 5))
        return f"| {name} | {recall} | {self.mrr:.3f} |"


def metrics(found: Sequence[int | None]) -> Metrics:
    """Recall@1/3/5 and MRR from positions."""
    count = max(len(found), 1)
    recall = {k: sum(1 for p in found if p is not None and p <= k) / count for k in (1, 3, 5)}
    mrr = sum(1.0 / p for p in found if p is not None) / count
    return Metrics(recall, mrr, len(found))


class SignalTable:
    """Every question's candidates as padded arrays, for fast weight search."""

    def __init__(self, candidates: Sequence[Sequence[ArticleCandidate]], questions: Sequence[Question]):
        width = max((len(c) for c in candidates), default=0) + 1
        shape = (len(candidates), width)
        self.mean = np.zeros(shape)
        self.max = np.zeros(shape)
        self.lead = np.zeros(shape)
        self.text = np.zeros(shape)
        self.valid = np.zeros(shape, dtype=bool)
        # The expected article's column; a missing one is the padding column, which never wins.
        self.target = np.full(len(candidates), width - 1)
        self.in_scope = np.array([q.expected is not None for q in questions], dtype=bool)
        for i, (cands, question) in enumerate(zip(candidates, questions, strict=True)):
            for j, c in enumerate(cands):
                self.mean[i, j], self.max[i, j] = c.mean_cosine, c.max_cosine
                self.lead[i, j], self.text[i, j] = c.lead_cosine, c.fulltext
                self.valid[i, j] = True
                if c.title == question.expected:
                    self.target[i] = j

    def positions(self, weights: Weights, mode: Mode, rows: np.ndarray) -> np.ndarray:
        """1-based position of the expected article (a large number when absent), in-scope rows only."""
        if mode == "fulltext":
            scores = self.text.copy()
        else:
            scores = weights.mean * self.mean + weights.max * self.max + weights.lead * self.lead
            if mode == "hybrid":
                scores = scores + weights.fulltext * self.text
        scores = np.where(self.valid, scores, -np.inf)
        picked = rows & self.in_scope
        index = np.nonzero(picked)[0]
        target = scores[index, self.target[index]]
        found = self.valid[index, self.target[index]]
        position = (scores[index] > target[:, None]).sum(axis=1) + 1
        return np.where(found, position, 10**6)


def _objective(position: np.ndarray) -> float:
    if len(position) == 0:
        return 0.0
    return float(np.mean(position <= 3) + 0.5 * np.mean(1.0 / position) + 0.1 * np.mean(position <= 1))


def tune_weights(table: SignalTable, rows: np.ndarray, mode: Mode) -> Weights:
    """The grid weights that rank these questions best (Recall@3, then MRR, then Recall@1)."""
    grid = FULLTEXT_GRID if mode == "hybrid" else (0.0,)
    best: tuple[float, Weights] | None = None
    for max_weight, lead, fulltext in itertools.product(MAX_GRID, LEAD_GRID, grid):
        weights = Weights(mean=1.0, max=max_weight, lead=lead, fulltext=fulltext)
        value = _objective(table.positions(weights, mode, rows))
        if best is None or value > best[0] + 1e-12:
            best = (value, weights)
    assert best is not None
    return best[1]


def fit_calibration(
    candidates: Sequence[Sequence[ArticleCandidate]], questions: Sequence[Question], weights: Weights
) -> Calibration:
    """Scope model on every question; answer model on the top candidates of in-scope questions."""
    answer_rows: list[list[float]] = []
    answer_labels: list[int] = []
    scope_rows: list[list[float]] = []
    scope_labels: list[int] = []
    for cands, question in zip(candidates, questions, strict=True):
        ranked = rank(cands, weights, "hybrid")
        scope_rows.append(scope_features(ranked))
        scope_labels.append(1 if question.expected is not None else 0)
        if question.expected is None:
            continue
        for (candidate, _), row in zip(ranked, features(ranked, weights, CALIBRATION_DEPTH), strict=False):
            answer_rows.append(row)
            answer_labels.append(1 if candidate.title == question.expected else 0)
    return Calibration(
        answer=fit_logistic(answer_rows, answer_labels), scope=fit_logistic(scope_rows, scope_labels)
    )


def fit_params(
    candidates: Sequence[Sequence[ArticleCandidate]], questions: Sequence[Question], model: str, note: str
) -> RankingParams:
    """Fit weights and calibration on every given question (what `calibrate` ships)."""
    table = SignalTable(candidates, questions)
    weights = tune_weights(table, np.ones(len(questions), dtype=bool), "hybrid")
    calibration = fit_calibration(candidates, questions, weights)
    return RankingParams(weights=weights, calibration=calibration, model=model, fitted_on=note)


@dataclass
class CrossValidated:
    """Held-out results of one mode."""

    metrics: Metrics
    weights: list[Weights]
    top_confidence: list[float] = field(default_factory=list)
    top_correct: list[int] = field(default_factory=list)
    pair_confidence: list[float] = field(default_factory=list)
    pair_label: list[int] = field(default_factory=list)
    # Per question, its held-out top articles as (confidence, correct), best first.
    ranked: list[list[tuple[float, int]]] = field(default_factory=list)


def cross_validate(
    candidates: Sequence[Sequence[ArticleCandidate]], questions: Sequence[Question], mode: Mode
) -> CrossValidated:
    """Tune (and, for hybrid, calibrate) on k-1 folds, measure on the held-out fold, pooled."""
    table = SignalTable(candidates, questions)
    folds = np.array([fold_of(q) for q in questions])
    found: list[int | None] = []
    result = CrossValidated(metrics=metrics([]), weights=[])
    if mode == "hybrid":
        # Filled by question index, so that the answer curve can tell in-scope from out-of-scope.
        result.top_confidence = [0.0] * len(questions)
        result.top_correct = [0] * len(questions)
        result.ranked = [[] for _ in questions]
    for fold in range(FOLDS):
        train, test = folds != fold, folds == fold
        if not test.any():
            continue
        weights = Weights() if mode == "fulltext" else tune_weights(table, train, mode)
        result.weights.append(weights)
        found.extend(int(p) if p < 10**6 else None for p in table.positions(weights, mode, test))
        if mode != "hybrid":
            continue
        index = [int(i) for i in np.nonzero(train)[0]]
        calibration = fit_calibration([candidates[i] for i in index], [questions[i] for i in index], weights)
        for i in (int(i) for i in np.nonzero(test)[0]):
            ranked = rank(candidates[i], weights, mode)
            confidences = calibration.confidences(ranked, weights, CALIBRATION_DEPTH)
            for position, ((candidate, _), confidence) in enumerate(zip(ranked, confidences, strict=False)):
                correct = 1 if candidate.title == questions[i].expected else 0
                result.pair_confidence.append(confidence)
                result.pair_label.append(correct)
                result.ranked[i].append((confidence, correct))
                if position == 0:
                    result.top_confidence[i] = confidence
                    result.top_correct[i] = correct
    result.metrics = metrics(found)
    return result


@dataclass
class CurvePoint:
    """The bot's behaviour if it answers only above a confidence threshold."""

    threshold: float
    correct: float
    wrong: float
    declined: float
    out_of_scope_answered: float


def answer_curve(
    confidences: Sequence[float], correct: Sequence[int], questions: Sequence[Question]
) -> list[CurvePoint]:
    """Shares of in-scope questions answered correctly/wrongly/declined, and out-of-scope answered."""
    points: list[CurvePoint] = []
    in_scope = [i for i, q in enumerate(questions) if q.expected is not None]
    out_scope = [i for i, q in enumerate(questions) if q.expected is None]
    for threshold in THRESHOLDS:
        answered = [c >= threshold for c in confidences]
        right = sum(1 for i in in_scope if answered[i] and correct[i])
        wrong = sum(1 for i in in_scope if answered[i] and not correct[i])
        out = sum(1 for i in out_scope if answered[i])
        n = max(len(in_scope), 1)
        points.append(
            CurvePoint(
                threshold,
                right / n,
                wrong / n,
                (len(in_scope) - right - wrong) / n,
                out / max(len(out_scope), 1),
            )
        )
    return points


async def gather_candidates(
    retriever: Retriever, questions: Sequence[Question], vectors: Sequence[list[float]], mode: Mode
) -> list[list[ArticleCandidate]]:
    """Every question's candidates in one mode (vectors embedded beforehand, in batches)."""
    found: list[list[ArticleCandidate]] = []
    for question, vector in zip(questions, vectors, strict=True):
        found.append(await retriever.candidates(question.text, mode, vector=vector))
    return found


async def measure_latency(retriever: Retriever, questions: Sequence[Question]) -> tuple[float, float]:
    """p50 and p95 in milliseconds of one full hybrid search (embedding included), one at a time."""
    timings: list[float] = []
    for question in questions:
        start = time.perf_counter()
        await retriever.search(question.text, limit=5)
        timings.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0)
    if not timings:
        return 0.0, 0.0
    if len(timings) == 1:
        return timings[0], timings[0]
    cuts = statistics.quantiles(timings, n=20, method="inclusive")
    return statistics.median(timings), cuts[18]


def write_plot(
    path: Path, curve: Sequence[CurvePoint], confidences: Sequence[float], correct: Sequence[int]
) -> None:
    """Answer/decline curve and reliability diagram as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [p.threshold for p in curve]
    left.plot(xs, [p.correct for p in curve], marker="o", label="in scope, answered correctly")
    left.plot(xs, [p.wrong for p in curve], marker="o", label="in scope, answered wrongly")
    left.plot(xs, [p.declined for p in curve], marker="o", label="in scope, declined")
    left.plot(xs, [p.out_of_scope_answered for p in curve], marker="o", label="out of scope, answered")
    left.set_xlabel("confidence threshold")
    left.set_ylabel("share of questions")
    left.set_title("Answer or decline (hybrid, cross-validated)")
    left.set_ylim(0, 1)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    bins = 10
    centers, accuracy, sizes = [], [], []
    for b in range(bins):
        members = [i for i, c in enumerate(confidences) if min(int(c * bins), bins - 1) == b]
        if members:
            centers.append(sum(confidences[i] for i in members) / len(members))
            accuracy.append(sum(correct[i] for i in members) / len(members))
            sizes.append(len(members))
    right.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    right.scatter(centers, accuracy, s=[20 + 200 * s / max(sizes, default=1) for s in sizes], label="bins")
    right.plot(centers, accuracy, color="C0")
    right.set_xlabel("confidence of the top article")
    right.set_ylabel("share where it is the right article")
    right.set_title("Reliability (top-1, cross-validated)")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


@dataclass
class Report:
    """Everything `eval` prints."""

    questions: int
    in_scope: int
    out_of_scope: int
    articles: int
    chunks: int
    ingest_seconds: float
    modes: dict[str, CrossValidated]
    ece_top: float
    ece_pairs: float
    curve: list[CurvePoint]
    latency_ms: tuple[float, float]
    latency_questions: int
    # The bot's outcomes per threshold (backend/bot/evaluation.py), filled by `eval`.
    bot_curve: list[Any] = field(default_factory=list)
    bot_threshold: float = 0.0
    bot_latency_ms: tuple[float, float] = (0.0, 0.0)

    def lines(self) -> list[str]:
        """The report as Markdown."""
        lines = [
            f"{self.questions} questions ({self.in_scope} in scope, {self.out_of_scope} out of scope), "
            f"{self.articles} articles in {self.chunks} chunks (ingested in {self.ingest_seconds:.1f} s); "
            f"{FOLDS}-fold cross-validation",
            "",
            "| method | Recall@1 | Recall@3 | Recall@5 | MRR |",
            "| --- | --- | --- | --- | --- |",
        ]
        names = {"vector": "vector only", "fulltext": "full text only", "hybrid": "hybrid"}
        for mode, result in self.modes.items():
            lines.append(result.metrics.row(names[mode]))
        hybrid = self.modes.get("hybrid")
        if hybrid is not None:
            chosen = sorted({(w.max, w.lead, w.fulltext) for w in hybrid.weights})
            lines += [
                "",
                "hybrid weights chosen in the folds (mean chunk cosine 1; max chunk cosine, whole-article "
                "cosine, full text): " + ", ".join(f"({m:g}, {ld:g}, {f:g})" for m, ld, f in chosen),
                "",
                f"ECE of the top article's confidence (10 bins, all questions): {self.ece_top:.3f}; "
                f"over the top {CALIBRATION_DEPTH} articles of each question: {self.ece_pairs:.3f}",
                "",
                "| answer if confidence >= | in scope, correct | in scope, wrong | in scope, declined "
                "| out of scope, answered |",
                "| --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| {p.threshold:.1f} | {p.correct:.1%} | {p.wrong:.1%} | {p.declined:.1%} "
                f"| {p.out_of_scope_answered:.1%} |"
                for p in self.curve
            ]
        lines += [
            "",
            f"search latency, hybrid, embedding included, one at a time over {self.latency_questions} "
            f"questions: p50 {self.latency_ms[0]:.1f} ms, p95 {self.latency_ms[1]:.1f} ms",
        ]
        if self.bot_curve:
            from backend.bot.evaluation import curve_lines

            heading = f"bot outcomes (held-out confidences; BOT_ANSWER_THRESHOLD {self.bot_threshold:g}):"
            lines += ["", heading, ""]
            lines += curve_lines(self.bot_curve, self.bot_threshold)
            lines += [
                "",
                f"bot answer latency (search, decision, extractive answer; no storage), one at a time over "
                f"{self.latency_questions} questions: p50 {self.bot_latency_ms[0]:.1f} ms, "
                f"p95 {self.bot_latency_ms[1]:.1f} ms",
            ]
        return lines
