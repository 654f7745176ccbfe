"""Logs never carry session tokens."""

from __future__ import annotations

import logging

import jwt
import pytest

from backend.core.logging import RedactingFilter

TOKEN = jwt.encode({"user_id": "u", "role": "user", "exp": 1}, b"k" * 32, algorithm="HS256")


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, None)


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("token %s", (TOKEN,)),
        (f"GET /api/me?token={TOKEN} 200", ()),
        ("header %s", (f"Bearer {TOKEN}",)),
    ],
    ids=["jwt-as-arg", "jwt-in-message", "bearer-jwt"],
)
def test_jwt_is_masked(msg: str, args: tuple[object, ...]) -> None:
    rec = record(msg, *args)
    assert RedactingFilter().filter(rec) is True
    out = rec.getMessage()
    assert TOKEN not in out
    assert TOKEN.split(".")[2] not in out
    assert "[redacted]" in out


def test_bearer_value_is_masked() -> None:
    rec = record("Authorization: Bearer xyz and more")
    RedactingFilter().filter(rec)
    out = rec.getMessage()
    assert "xyz" not in out
    assert out == "Authorization: [redacted] and more"


def test_ordinary_lines_pass_unchanged() -> None:
    rec = record("POST %s %d %.1fms", "/api/chats/{chat_id}/messages", 201, 3.25)
    RedactingFilter().filter(rec)
    assert rec.getMessage() == "POST /api/chats/{chat_id}/messages 201 3.2ms"


def test_filter_in_a_logger_masks_the_output(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    redact = RedactingFilter()
    logger.addFilter(redact)
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("login with %s", TOKEN)
    finally:
        logger.removeFilter(redact)
    assert TOKEN not in caplog.text
    assert "[redacted]" in caplog.text
