"""The base of every input model: unknown fields refused, no NUL characters in text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _bad_text(value: Any) -> bool:
    """A NUL, or a lone surrogate that is no character in UTF-8, anywhere in the value."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_text(item) for item in value.values())
    if isinstance(value, list):
        return any(_bad_text(item) for item in value)
    return False


class InputModel(BaseModel):
    """A request body or frame: extra fields are an error, and so is text that is not UTF-8.

    PostgreSQL cannot store NUL in text, and a lone surrogate cannot be encrypted or stored:
    both are refused here, at the door, with a 422.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_bad_text(cls, data: Any) -> Any:
        if _bad_text(data):
            raise ValueError("text must be valid UTF-8 without NUL characters")
        return data
