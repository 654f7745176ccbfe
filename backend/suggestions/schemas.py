"""Suggested replies as the API and the `suggestions` frame show them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

SuggestionSource = Literal["text_module", "knowledge", "llm"]


class SuggestionRead(BaseModel):
    """One reply a supporter could send, with how sure we are (0..1)."""

    id: int
    message_id: int
    text: str
    confidence: float
    source: SuggestionSource
    title: str | None


class TextModuleRead(BaseModel):
    """A text module with its placeholders filled for a chat (when one was given)."""

    shortcut: str
    title: str
    text: str
    language: str | None


class SuggestionStatsRead(BaseModel):
    """How supporters used one source's suggestions (each suggestion counts once)."""

    source: str
    shown: int
    accepted: int
    accepted_edited: int
    ignored: int
