"""The bot's decision rule and its extractive answers."""

from __future__ import annotations

import pytest

from backend.bot.answer import extract_answer
from backend.bot.evaluation import bot_curve
from backend.bot.policy import decide, retrieval_decision
from backend.bot.service import chosen_article, failures_in_a_row
from backend.bot.texts import handover_text
from backend.knowledge.schemas import ArticleHit, Passage


def test_a_confident_article_is_answered() -> None:
    assert retrieval_decision([0.9, 0.05], 0.6).action == "answer"


def test_two_close_articles_are_asked_back() -> None:
    decision = retrieval_decision([0.4, 0.35, 0.1], 0.6)
    assert (decision.action, decision.articles) == ("clarify", (0, 1))


@pytest.mark.parametrize("confidences", [[0.3, 0.05], [0.1, 0.1], []])
def test_weak_or_no_articles_are_handed_over(confidences: list[float]) -> None:
    assert retrieval_decision(confidences, 0.6).action == "handover"


def test_asking_for_a_person_wins_over_a_confident_answer() -> None:
    decision = decide("human", [0.99], 0.6, failures_in_a_row=0, knowledge_empty=False)
    assert (decision.action, decision.reason) == ("handover", "customer_request")


def test_a_second_miss_in_a_row_hands_over() -> None:
    assert decide("not_helpful", [], 0.6, failures_in_a_row=0, knowledge_empty=False).action == "rephrase"
    assert (
        decide("not_helpful", [], 0.6, failures_in_a_row=1, knowledge_empty=False).reason
        == "repeated_failure"
    )
    tie = decide("question", [0.4, 0.35], 0.6, failures_in_a_row=1, knowledge_empty=False)
    assert tie.reason == "repeated_failure"


def test_small_talk_and_an_empty_knowledge_base() -> None:
    assert decide("thanks", [], 0.6, failures_in_a_row=3, knowledge_empty=True).action == "smalltalk"
    assert decide("question", [], 0.6, failures_in_a_row=0, knowledge_empty=True).reason == "no_knowledge"


def test_failure_streak_counts_asked_back_and_unhelpful_answers() -> None:
    turns = [
        {"outcome": "clarified", "rating": None},
        {"outcome": "answered", "rating": "not_helpful"},
        {"outcome": "answered", "rating": "helpful"},
        {"outcome": "clarified", "rating": None},
    ]
    assert failures_in_a_row(turns) == 2
    assert failures_in_a_row([]) == 0


@pytest.mark.parametrize(
    ("reply", "index"), [("1", 0), ("the second one", 1), ("Zweite", 1), ("refund policy", 0)]
)
def test_the_customer_picks_an_offered_article(reply: str, index: int) -> None:
    offered = [{"title": "Refund policy", "url": None}, {"title": "Get a refund", "url": None}]
    assert chosen_article(reply, offered) == offered[index]
    assert chosen_article("what about shipping?", offered) is None


def _hit(text: str, title: str = "Refund policy") -> ArticleHit:
    return ArticleHit(1, "x", title, None, "en", 1.0, 0.9, (Passage(1, 0, (title,), text, 0.8),))


def test_the_extract_keeps_what_answers_and_drops_the_rest() -> None:
    text = (
        "# Refund policy\n\nYou can return any item within 30 days and get your money back. "
        "Refunds are paid within five business days.\n\n## Exceptions\n\nGift cards cannot be refunded."
    )
    answer = extract_answer("How many days to return an item for my money back?", _hit(text)) or ""
    assert answer.startswith("You can return any item within 30 days")
    assert "Gift cards" not in answer and "#" not in answer


def test_a_list_item_keeps_its_introduction() -> None:
    text = "To book an inspection:\n- call the dealer with your contract number\n- bring the bike"
    answer = extract_answer("dealer contract number", _hit(text, "Inspection")) or ""
    assert answer.startswith("To book an inspection:")


def test_hand_over_texts_say_what_happens_next_in_the_language() -> None:
    assert "No supporter is online" in handover_text("low_confidence", "en", supporters_online=False)
    assert "Mitarbeiter" in handover_text("customer_request", "de", supporters_online=True)
    assert handover_text("something_new", None, supporters_online=True)


def test_the_bot_curve_counts_each_outcome() -> None:
    ranked = [[(0.9, 1)], [(0.9, 0)], [(0.4, 0), (0.35, 1)], [(0.1, 1)], [(0.8, 0)]]
    point = bot_curve(ranked, [True, True, True, True, False], thresholds=(0.6,))[0]
    assert (point.correct, point.wrong, point.asked_back_offered, point.declined) == (0.25, 0.25, 0.25, 0.25)
    assert point.out_of_scope_answered == 1.0
