"""Fuse the retrieval signals into one score per article and a calibrated confidence.

The weights and the logistic-regression coefficients live in `ranking.json` beside this file,
fitted on labelled questions by `python -m backend calibrate` (method in docs/evaluation.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from backend.knowledge.schemas import ArticleCandidate

Mode = Literal["hybrid", "vector", "fulltext"]
PARAMS_FILE = "ranking.json"
FEATURES = (
    "score",
    "margin",
    "mean_cosine",
    "max_cosine",
    "lead_cosine",
    "fulltext",
    "vector_top",
    "fulltext_top",
    "first",
)
SCOPE_FEATURES = (
    "top_score",
    "top_margin",
    "top_mean_cosine",
    "top_max_cosine",
    "top_lead_cosine",
    "top_fulltext",
)
# Candidates per question the calibration is fitted on (and confidences are given for).
CALIBRATION_DEPTH = 5


@dataclass
class Weights:
    """score = mean_cosine + max * max_cosine + lead * lead_cosine + fulltext * ts_rank."""

    mean: float = 1.0
    max: float = 0.5
    lead: float = 0.5
    fulltext: float = 0.3

    def score(self, candidate: ArticleCandidate, mode: Mode = "hybrid") -> float:
        """The fused score of one article."""
        if mode == "fulltext":
            return candidate.fulltext
        vector = (
            self.mean * candidate.mean_cosine
            + self.max * candidate.max_cosine
            + self.lead * candidate.lead_cosine
        )
        return vector if mode == "vector" else vector + self.fulltext * candidate.fulltext


@dataclass
class Logistic:
    """A logistic regression over standardised features."""

    coefficients: list[float]
    intercept: float = 0.0
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)

    @classmethod
    def neutral(cls, size: int) -> Logistic:
        """A model that answers 0.5 for everything (before fitting)."""
        return cls([0.0] * size, 0.0, [0.0] * size, [1.0] * size)

    def probability(self, features: Sequence[float]) -> float:
        """The probability for one feature row."""
        z = self.intercept + sum(
            c * (x - m) / s
            for c, x, m, s in zip(self.coefficients, features, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass
class Calibration:
    """P(article answers) = P(the question is in scope) * P(this article is the right one | in scope)."""

    answer: Logistic = field(default_factory=lambda: Logistic.neutral(len(FEATURES)))
    scope: Logistic = field(default_factory=lambda: Logistic.neutral(len(SCOPE_FEATURES)))

    def confidences(
        self, ranked: Sequence[tuple[ArticleCandidate, float]], weights: Weights, depth: int
    ) -> list[float]:
        """Calibrated confidences of the first `depth` ranked articles."""
        if not ranked:
            return []
        in_scope = self.scope.probability(scope_features(ranked))
        return [in_scope * self.answer.probability(row) for row in features(ranked, weights, depth)]


@dataclass
class RankingParams:
    """Everything ranking needs, as stored in ranking.json."""

    weights: Weights = field(default_factory=Weights)
    calibration: Calibration = field(default_factory=Calibration)
    model: str = "all-MiniLM-L6-v2"
    fitted_on: str = ""

    def to_json(self) -> str:
        """The JSON file's text."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RankingParams:
        """Parse the JSON file's text."""
        data = json.loads(text)
        calibration = data["calibration"]
        return cls(
            weights=Weights(**data["weights"]),
            calibration=Calibration(Logistic(**calibration["answer"]), Logistic(**calibration["scope"])),
            model=data.get("model", ""),
            fitted_on=data.get("fitted_on", ""),
        )


def load_params(path: Path | None = None) -> RankingParams:
    """The shipped parameters, or those of another file."""
    if path is not None:
        return RankingParams.from_json(path.read_text("utf-8"))
    return RankingParams.from_json(
        resources.files("backend.knowledge").joinpath(PARAMS_FILE).read_text("utf-8")
    )


def package_params_path() -> Path:
    """Where the shipped parameters live in the source tree (`calibrate` writes there)."""
    return Path(__file__).resolve().parent / PARAMS_FILE


def rank(
    candidates: Sequence[ArticleCandidate], weights: Weights, mode: Mode = "hybrid"
) -> list[tuple[ArticleCandidate, float]]:
    """Candidates with their fused scores, best first."""
    scored = [(candidate, weights.score(candidate, mode)) for candidate in candidates]
    scored.sort(key=lambda pair: (-pair[1], pair[0].title))
    return scored


def features(
    ranked: Sequence[tuple[ArticleCandidate, float]], weights: Weights, depth: int = CALIBRATION_DEPTH
) -> list[list[float]]:
    """Calibration features of the first `depth` ranked articles (see FEATURES)."""
    if not ranked:
        return []
    top_vector = max(ranked, key=lambda pair: weights.score(pair[0], "vector"))[0].document_id
    top_text = max(ranked, key=lambda pair: pair[0].fulltext)[0]
    top_text_id = top_text.document_id if top_text.fulltext > 0 else None
    rows: list[list[float]] = []
    for position, (candidate, score) in enumerate(ranked[:depth]):
        others = [other for index, (_, other) in enumerate(ranked) if index != position]
        margin = score - max(others) if others else score
        rows.append(
            [
                score,
                margin,
                candidate.mean_cosine,
                candidate.max_cosine,
                candidate.lead_cosine,
                candidate.fulltext,
                1.0 if candidate.document_id == top_vector else 0.0,
                1.0 if candidate.document_id == top_text_id else 0.0,
                1.0 if position == 0 else 0.0,
            ]
        )
    return rows


def scope_features(ranked: Sequence[tuple[ArticleCandidate, float]]) -> list[float]:
    """Question-level evidence that any article answers it (see SCOPE_FEATURES)."""
    if not ranked:
        return [0.0] * len(SCOPE_FEATURES)
    top, score = ranked[0]
    margin = score - ranked[1][1] if len(ranked) > 1 else score
    return [score, margin, top.mean_cosine, top.max_cosine, top.lead_cosine, top.fulltext]


def fit_logistic(rows: Sequence[Sequence[float]], labels: Sequence[int], l2: float = 1.0) -> Logistic:
    """Logistic regression by Newton's method, features standardised, a light L2 penalty."""
    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=float)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError("no rows to fit on")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    beta = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -50, 50)))
        gradient = z.T @ (p - y) + penalty @ beta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty + np.eye(z.shape[1]) * 1e-9
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return Logistic(
        coefficients=[round(float(v), 6) for v in beta[1:]],
        intercept=round(float(beta[0]), 6),
        mean=[round(float(v), 6) for v in mean],
        scale=[round(float(v), 6) for v in scale],
    )


def expected_calibration_error(
    confidences: Sequence[float], outcomes: Sequence[int], bins: int = 10
) -> float:
    """ECE: the bin-weighted gap between mean confidence and accuracy over equal-width bins."""
    if not confidences:
        return 0.0
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(outcomes, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += float(mask.sum()) / len(conf) * abs(float(conf[mask].mean()) - float(hit[mask].mean()))
    return total
