"""What crosses the wire for the bot: ratings, the hand-over packet, outcome statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from backend.chat.schemas import SourceRead
from backend.core.schemas import InputModel

Rating = Literal["helpful", "not_helpful"]


class FeedbackCreate(InputModel):
    """A customer's rating of one bot answer."""

    rating: Rating


class FeedbackRead(BaseModel):
    """The stored rating."""

    message_id: int
    rating: Rating


class BotAnswerRead(BaseModel):
    """A bot message as the hand-over packet shows it."""

    message_id: int
    text: str
    sources: list[SourceRead]


class HandoverRead(BaseModel):
    """What the supporter who takes a handed-over chat needs to know."""

    reason: str
    escalated_at: datetime | None
    summary: str
    questions: list[str]
    answers: list[BotAnswerRead]
    sources: list[SourceRead]
    not_helpful: int


class BotOutcomeRead(BaseModel):
    """Bot turns of one outcome and reason, with the ratings of their answers."""

    outcome: str
    reason: str
    turns: int
    helpful: int
    not_helpful: int
