"""What crosses the wire for the knowledge-gap report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Grouping = Literal["similarity", "text"]


class GapClusterRead(BaseModel):
    """Questions the bot could not help with that ask about the same thing."""

    size: int = Field(description="How many questions the group holds")
    examples: list[str] = Field(
        description="Up to 3 questions nearest the group's centre, at most 300 characters"
    )
    reasons: dict[str, int] = Field(
        description="Questions per reason: the hand-over's reason, clarified, or not_helpful; most first"
    )
    last_seen_at: datetime = Field(description="When the newest question of the group was asked")
    top_titles: dict[str, int] = Field(
        description="The articles the bot considered best, with counts; most first"
    )


class GapReportRead(BaseModel):
    """The knowledge gaps: unanswered questions grouped by similarity, most frequent first."""

    generated_at: datetime
    questions: int = Field(description="The questions read (newest first, up to the limit)")
    grouping: Grouping = Field(
        description="similarity: by the embedding model; text: by identical text (no model loaded)"
    )
    clusters: list[GapClusterRead]
