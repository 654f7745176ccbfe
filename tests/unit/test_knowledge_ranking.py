"""Fusion and calibration: probabilities in [0, 1], ECE, parameter files."""

from __future__ import annotations

import random
from pathlib import Path

from backend.knowledge.ranking import (
    FEATURES,
    SCOPE_FEATURES,
    Calibration,
    Logistic,
    RankingParams,
    Weights,
    expected_calibration_error,
    features,
    fit_logistic,
    load_params,
    rank,
    scope_features,
)
from backend.knowledge.repository import centroid, or_query, vector_literal
from backend.knowledge.schemas import ArticleCandidate


def candidate(doc: int, mean: float, mx: float, text: float, lead: float = 0.0) -> ArticleCandidate:
    return ArticleCandidate(doc, f"id{doc}", f"T{doc}", None, None, mean, mx, text, lead)


def test_fusion_modes() -> None:
    a, b = candidate(1, 0.5, 0.6, 0.0), candidate(2, 0.3, 0.4, 0.9)
    weights = Weights(mean=1.0, max=0.5, lead=1.0, fulltext=1.0)
    assert [c.document_id for c, _ in rank([a, b], weights, "vector")] == [1, 2]
    assert [c.document_id for c, _ in rank([a, b], weights, "fulltext")] == [2, 1]
    assert [c.document_id for c, _ in rank([a, b], weights, "hybrid")] == [2, 1]


def test_features_margin_and_agreement() -> None:
    weights = Weights()
    ranked = rank([candidate(1, 0.5, 0.6, 0.2, 0.4), candidate(2, 0.3, 0.4, 0.1, 0.2)], weights, "hybrid")
    rows = features(ranked, weights)
    assert len(rows) == 2 and len(rows[0]) == len(FEATURES)
    assert rows[0][1] > 0 > rows[1][1]  # margin to the best other
    assert rows[0][6:] == [1.0, 1.0, 1.0] and rows[1][6:] == [0.0, 0.0, 0.0]
    assert features([], weights) == []
    top = scope_features(ranked)
    assert len(top) == len(SCOPE_FEATURES) and top[4] == 0.4
    assert scope_features([]) == [0.0] * len(SCOPE_FEATURES)
    neutral = Calibration()
    assert neutral.confidences(ranked, weights, 5) == [0.25, 0.25]
    assert neutral.confidences([], weights, 5) == []


def test_calibration_fits_and_stays_in_unit_interval() -> None:
    rng = random.Random(3)
    rows, labels = [], []
    for _ in range(400):
        label = rng.random() < 0.5
        score = rng.gauss(1.0 if label else 0.0, 0.5)
        rows.append([score, score / 2, 0.5, 0.5, 0.4, 0.0, float(label), 0.0, 1.0])
        labels.append(int(label))
    calibration = fit_logistic(rows, labels)
    probabilities = [calibration.probability(r) for r in rows]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert expected_calibration_error(probabilities, labels) < 0.08
    extreme = [1e9] * len(FEATURES)
    assert 0.0 <= calibration.probability(extreme) <= 1.0
    assert 0.0 <= calibration.probability([-x for x in extreme]) <= 1.0


def test_ece() -> None:
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0
    assert abs(expected_calibration_error([0.9, 0.9], [0, 0]) - 0.9) < 1e-9


def test_params_round_trip_and_shipped_file(tmp_path: Path) -> None:
    calibration = Calibration(scope=Logistic([0.5] * len(SCOPE_FEATURES), -1.0, [0.0] * 6, [1.0] * 6))
    params = RankingParams(weights=Weights(1, 0.25, 0.5, 2.0), calibration=calibration, fitted_on="t")
    path = tmp_path / "p.json"
    path.write_text(params.to_json())
    assert load_params(path) == params
    shipped = load_params()
    assert len(shipped.calibration.answer.coefficients) == len(FEATURES)
    assert len(shipped.calibration.scope.coefficients) == len(SCOPE_FEATURES)
    assert shipped.weights.mean > 0


def test_query_and_vector_helpers() -> None:
    assert or_query("Where's my order #123?! 🙂") == "where | s | my | order | 123"
    assert or_query("🙂 !!") is None
    assert or_query(" ".join(f"w{i}" for i in range(500))).count("|") == 63
    assert vector_literal([0.5, -1.0]) == "[0.5,-1]"
    assert centroid([]) is None
    assert centroid([[1.0, 0.0], [0.0, 1.0]]) == [0.5, 0.5]
