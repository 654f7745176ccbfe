"""Client WebSocket frames: anything a client sends either parses or is a ValidationError."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backend.chat.frames import (
    AuthFrame,
    MessageFrame,
    PingFrame,
    SubscribeFrame,
    SubscribeQueueFrame,
    TypingFrame,
    UnsubscribeFrame,
    client_frame,
)

CHAT = str(uuid.uuid4())
TYPES = ["auth", "subscribe", "unsubscribe", "subscribe_queue", "message", "typing", "ping"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
field_values = st.one_of(
    json_values, st.just(CHAT), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=5000)
)
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from([*TYPES, "Auth", "", "nope"])},
    optional={
        "token": field_values,
        "chat_id": field_values,
        "after": field_values,
        "client_msg_id": field_values,
        "text": field_values,
        "suggestion_id": field_values,
        "extra": field_values,
    },
)


def parse_or_validation_error(raw: str | bytes) -> None:
    """Anything but a ValidationError propagates and fails the test."""
    with contextlib.suppress(ValidationError):
        client_frame.validate_json(raw)


@settings(deadline=None, max_examples=300)
@given(value=json_values)
def test_any_json_value_parses_or_is_a_validation_error(value: Any) -> None:
    parse_or_validation_error(json.dumps(value))


@settings(deadline=None, max_examples=300)
@given(value=frame_like)
def test_frame_shaped_objects_parse_or_are_validation_errors(value: dict[str, Any]) -> None:
    parse_or_validation_error(json.dumps(value))


@settings(deadline=None, max_examples=300)
@given(raw=st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_or_bytes_parses_or_is_a_validation_error(raw: str | bytes) -> None:
    parse_or_validation_error(raw)


@pytest.mark.parametrize(
    ("frame", "cls"),
    [
        ({"type": "auth", "token": "abc"}, AuthFrame),
        ({"type": "subscribe", "chat_id": CHAT, "after": 5}, SubscribeFrame),
        ({"type": "subscribe", "chat_id": CHAT}, SubscribeFrame),
        ({"type": "unsubscribe", "chat_id": CHAT}, UnsubscribeFrame),
        ({"type": "subscribe_queue"}, SubscribeQueueFrame),
        ({"type": "message", "chat_id": CHAT, "client_msg_id": "c1", "text": "Hallo 👋"}, MessageFrame),
        (
            {"type": "message", "chat_id": CHAT, "client_msg_id": "c1", "text": "x", "suggestion_id": 3},
            MessageFrame,
        ),
        ({"type": "typing", "chat_id": CHAT}, TypingFrame),
        ({"type": "ping"}, PingFrame),
    ],
)
def test_valid_frames_parse_to_their_class(frame: dict[str, Any], cls: type) -> None:
    parsed = client_frame.validate_json(json.dumps(frame))
    assert type(parsed) is cls
    assert parsed.type == frame["type"]
    for key, value in frame.items():
        got = getattr(parsed, key)
        assert (str(got) if isinstance(got, uuid.UUID) else got) == value


def test_subscribe_after_defaults_to_zero() -> None:
    parsed = client_frame.validate_json(json.dumps({"type": "subscribe", "chat_id": CHAT}))
    assert isinstance(parsed, SubscribeFrame) and parsed.after == 0


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "auth", "token": "abc", "user_id": "admin"},
        {"type": "ping", "x": 1},
        {"type": "subscribe_queue", "chat_id": CHAT},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "c", "text": "x", "sender_id": CHAT},
        {"type": "typing", "chat_id": CHAT, "user": {"id": CHAT}},
    ],
    ids=["auth", "ping", "subscribe_queue", "message", "typing"],
)
def test_extra_fields_rejected(frame: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        client_frame.validate_json(json.dumps(frame))


@pytest.mark.parametrize(
    "frame",
    [
        {},
        {"type": "unknown"},
        {"type": "auth"},
        {"type": "subscribe", "chat_id": "not-a-uuid"},
        {"type": "subscribe", "chat_id": CHAT, "after": -1},
        {"type": "subscribe", "chat_id": CHAT, "after": 2**31},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "", "text": "x"},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "c" * 101, "text": "x"},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "c", "text": 5},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "c", "text": "x\u0000y"},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "c", "text": "x", "suggestion_id": 0},
        {"type": "message", "chat_id": CHAT, "client_msg_id": "c", "text": "x", "suggestion_id": 2**63},
        {"type": "message", "chat_id": CHAT, "text": "x"},
    ],
)
def test_invalid_frames_rejected(frame: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        client_frame.validate_json(json.dumps(frame))


@pytest.mark.parametrize("raw", ["", "{", "null", "[]", '"auth"', "{'type': 'ping'}", "\x00"])
def test_non_objects_and_broken_json_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        client_frame.validate_json(raw)
