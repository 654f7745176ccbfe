"""Knowledge gaps: clustering on hand-made vectors, grouping by text, ranking and trimming."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from backend.bot.gaps.cluster import closest_to_centre, leader_clusters, normalise_text, text_clusters
from backend.bot.gaps.service import GapQuestion, build_report, report_lines, trim

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def near(axis: int, wobble: float, dim: int = 4) -> list[float]:
    """A vector close to one axis: cosine to it is about 1 - wobble**2 / 2."""
    vector = [0.0] * dim
    vector[axis] = 1.0
    vector[(axis + 1) % dim] = wobble
    return vector


def question(n: int, text: str, reason: str = "low_confidence", minutes: int = 0, title: str | None = None):
    return GapQuestion(n, text, reason, title, T0 + timedelta(minutes=minutes))


def test_two_clear_topics_give_two_clusters() -> None:
    vectors = [near(0, 0.1), near(1, 0.1), near(0, -0.1), near(0, 0.2), near(1, 0.0)]
    assert leader_clusters(vectors, 0.6) == [[0, 2, 3], [1, 4]]


def test_the_threshold_decides_what_is_similar_enough() -> None:
    # cos(a, b) = 0.6 exactly at 53.13°: a 50° pair joins at 0.6, a 60° pair does not.
    def at(degrees: float) -> list[float]:
        return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]

    assert leader_clusters([at(0), at(50)], 0.6) == [[0, 1]]
    assert leader_clusters([at(0), at(60)], 0.6) == [[0], [1]]
    assert leader_clusters([at(0), at(60)], 0.4) == [[0, 1]]
    assert leader_clusters([at(0), at(10), at(20)], 1.0) == [[0], [1], [2]]
    assert leader_clusters([at(0), at(170)], 0.0) == [[0], [1]]


def test_vectors_need_not_be_unit_length() -> None:
    assert leader_clusters([[3.0, 0.0], [0.0, 5.0], [10.0, 0.5], [0.0, 0.0]], 0.9) == [[0, 2], [1], [3]]


def test_empty_input() -> None:
    assert leader_clusters([], 0.6) == []
    assert text_clusters([]) == []
    assert closest_to_centre([], []) == []
    report = build_report([], [], 0.6, T0)
    assert report.questions == 0 and report.clusters == [] and report.grouping == "similarity"
    assert build_report([], None, 0.6, T0).clusters == []


def test_clustering_is_deterministic() -> None:
    rng = random.Random(7)
    vectors = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(300)]
    first = leader_clusters(vectors, 0.3)
    assert all(leader_clusters(vectors, 0.3) == first for _ in range(3))
    assert sorted(i for group in first for i in group) == list(range(300))


def test_text_grouping_ignores_case_and_whitespace() -> None:
    assert normalise_text("  Wo ist\tmein   PAKET?\n") == "wo ist mein paket?"
    texts = ["Wo ist mein Paket?", "Storno bitte", "wo  ist mein paket?", "STORNO BITTE", "Hallo"]
    assert text_clusters(texts) == [[0, 2], [1, 3], [4]]


def test_examples_are_the_most_central_questions() -> None:
    vectors = [near(0, 0.5), near(0, 0.0), near(0, 0.3), near(0, -0.1)]
    assert closest_to_centre(vectors, [0, 1, 2, 3])[0] in (1, 2)
    assert closest_to_centre(vectors, [0, 1, 2, 3])[-1] == 0


def test_report_sorts_by_size_then_recency() -> None:
    questions = [
        question(1, "Wie kündige ich?", minutes=50, title="Kündigung"),
        question(2, "Rechnung doppelt?", "not_helpful", minutes=40, title="Rechnung"),
        question(3, "Vertrag beenden", "repeated_failure", minutes=30, title="Kündigung"),
        question(4, "Lieferzeit?", minutes=60),
        question(5, "Kündigung wie?", "clarified", minutes=10),
        question(6, "Zweimal abgebucht", minutes=5, title="Rechnung"),
    ]
    vectors = [near(0, 0.1), near(1, 0.1), near(0, 0.2), near(2, 0.0), near(0, 0.0), near(1, 0.0)]
    report = build_report(questions, vectors, 0.6, T0 + timedelta(hours=1))
    assert [c.size for c in report.clusters] == [3, 2, 1]
    cancel, billing, delivery = report.clusters
    assert cancel.reasons == {"clarified": 1, "low_confidence": 1, "repeated_failure": 1}
    assert cancel.top_titles == {"Kündigung": 2}
    assert cancel.examples[0] == "Wie kündige ich?"  # the middle one of the three: nearest the centre
    assert set(cancel.examples) == {"Wie kündige ich?", "Vertrag beenden", "Kündigung wie?"}
    assert billing.reasons == {"low_confidence": 1, "not_helpful": 1}
    assert delivery.examples == ["Lieferzeit?"]
    # Europe/Berlin with its offset, like the rest of the API.
    assert cancel.last_seen_at.isoformat() == "2025-03-01T13:50:00+01:00"
    assert report.generated_at.utcoffset() == timedelta(hours=1)
    # Equal sizes: the most recently seen first.
    tie = build_report(questions[:2] + questions[3:4], [near(0, 0), near(1, 0), near(2, 0)], 0.6, T0)
    assert [c.examples[0] for c in tie.clusters] == ["Lieferzeit?", "Wie kündige ich?", "Rechnung doppelt?"]


def test_report_without_vectors_groups_identical_text() -> None:
    questions = [
        question(1, "Wo ist mein Paket?", minutes=3),
        question(2, "Storno", minutes=2),
        question(3, "wo ist  MEIN paket?", "not_helpful", minutes=1),
    ]
    report = build_report(questions, None, 0.6, T0)
    assert report.grouping == "text"
    assert [c.size for c in report.clusters] == [2, 1]
    # Spellings of the same text are one example, the newest one.
    assert report.clusters[0].examples == ["Wo ist mein Paket?"]
    assert report.clusters[0].reasons == {"low_confidence": 1, "not_helpful": 1}


def test_examples_are_at_most_three_and_trimmed() -> None:
    long = "Warum " + "sehr " * 100 + "lang?"
    questions = [question(i, f"{i}: {long}", minutes=i) for i in range(5)]
    report = build_report(questions, [near(0, 0.01 * i) for i in range(5)], 0.6, T0)
    (cluster,) = report.clusters
    assert cluster.size == 5 and len(cluster.examples) == 3
    assert all(len(e) <= 300 and e.endswith("…") for e in cluster.examples)
    assert trim("kurz  und\n gut") == "kurz und gut"
    assert len(trim("x" * 1000)) == 300


def test_vectors_must_match_the_questions() -> None:
    with pytest.raises(ValueError, match="one vector per question"):
        build_report([question(1, "a")], [], 0.6, T0)


def test_table_lists_groups_most_frequent_first() -> None:
    questions = [question(1, "Storno?", minutes=1), question(2, "storno?"), question(3, "Paket?")]
    lines = report_lines(build_report(questions, None, 0.6, T0), top=1)
    text = "\n".join(lines)
    assert "3 questions in 2 groups" in text and "identical text" in text
    assert "- Storno?" in text and "Paket?" not in text
    assert "1 more groups" in lines[-1]
    assert "no unanswered questions" in "\n".join(report_lines(build_report([], None, 0.6, T0)))
