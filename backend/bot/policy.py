"""The bot's decision for one customer message: answer, ask back, small talk, or hand over.

Pure: it sees the intent, the retrieval's calibrated confidences and the chat's recent turns,
and nothing else, so `eval` measures exactly the rule the live bot follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from backend.bot.intent import Intent

Action = Literal["answer", "clarify", "smalltalk", "handover", "rephrase"]

# Asking back: the two best articles together clear the threshold and the second is a real
# contender (a share of the first), so "which of the two?" is a fair question to ask.
TIE_SECOND_SHARE = 0.5
# Below this the best article is noise and asking back about it would only irritate.
TIE_FLOOR = 0.15


@dataclass(frozen=True)
class Decision:
    """What the bot does, why, and with which articles (indexes into the hits)."""

    action: Action
    reason: str | None = None
    articles: tuple[int, ...] = ()


def retrieval_decision(confidences: Sequence[float], threshold: float) -> Decision:
    """Answer, ask back between two close articles, or hand over, from the top confidences."""
    if not confidences:
        return Decision("handover", "no_knowledge")
    first = confidences[0]
    if first >= threshold:
        return Decision("answer", articles=(0,))
    if len(confidences) > 1:
        second = confidences[1]
        if first >= TIE_FLOOR and second >= TIE_SECOND_SHARE * first and first + second >= threshold:
            return Decision("clarify", "tie", articles=(0, 1))
    return Decision("handover", "low_confidence")


def decide(
    intent: Intent,
    confidences: Sequence[float],
    threshold: float,
    *,
    failures_in_a_row: int,
    knowledge_empty: bool,
) -> Decision:
    """The whole policy: intent first, then the knowledge, then the failure streak."""
    if intent == "human":
        return Decision("handover", "customer_request")
    if intent in ("greeting", "thanks", "goodbye"):
        return Decision("smalltalk", intent)
    if intent == "not_helpful":
        # The last answer missed: a second miss in a row goes to a person.
        if failures_in_a_row >= 1:
            return Decision("handover", "repeated_failure")
        return Decision("rephrase", "not_helpful")
    if knowledge_empty:
        return Decision("handover", "no_knowledge")
    decision = retrieval_decision(confidences, threshold)
    if decision.action == "clarify" and failures_in_a_row >= 1:
        return Decision("handover", "repeated_failure")
    return decision
