"""Session tokens: only our own HS256 signatures with all claims, unexpired, are accepted."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from backend.auth.tokens import TokenCodec
from backend.core.errors import TokenExpired, TokenInvalid

SECRET = b"s" * 64  # long enough that PyJWT does not warn even for HS512
USER = uuid.UUID("44444444-4444-4444-8444-444444444444")


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "user_id": str(USER),
        "role": "user",
        "exp": now + 600,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(SECRET, ttl_seconds=3600)


def test_round_trip(codec: TokenCodec) -> None:
    token, issued = codec.issue(USER, "supporter")
    decoded = codec.decode(token)
    assert decoded == issued
    assert decoded.user_id == USER and decoded.role == "supporter"
    assert abs((decoded.expires_at - datetime.now(UTC)).total_seconds() - 3600) < 5


def test_token_header_is_hs256_with_contract_claims(codec: TokenCodec) -> None:
    token, _ = codec.issue(USER, "user")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert payload["user_id"] == str(USER)
    assert payload["role"] == "user"
    assert payload["exp"] - payload["iat"] == 3600


def test_each_token_has_its_own_jti(codec: TokenCodec) -> None:
    first, second = codec.issue(USER, "user")[1], codec.issue(USER, "user")[1]
    assert first.jti != second.jti


def test_expired(codec: TokenCodec) -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    with pytest.raises(TokenExpired):
        codec.decode(token)


def test_expired_own_token() -> None:
    short = TokenCodec(SECRET, ttl_seconds=-10)
    token, _ = short.issue(USER, "user")
    with pytest.raises(TokenExpired):
        short.decode(token)


def test_wrong_key(codec: TokenCodec) -> None:
    token = jwt.encode(claims(), b"o" * 64, algorithm="HS256")
    with pytest.raises(TokenInvalid):
        codec.decode(token)


def test_alg_none(codec: TokenCodec) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    with pytest.raises(TokenInvalid):
        codec.decode(token)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_with_same_secret(codec: TokenCodec, alg: str) -> None:
    token = jwt.encode(claims(), SECRET, algorithm=alg)
    with pytest.raises(TokenInvalid):
        codec.decode(token)


def test_tampered_payload(codec: TokenCodec) -> None:
    token, _ = codec.issue(USER, "user")
    header, _, signature = token.split(".")
    forged = f"{header}.{b64(claims(role='admin'))}.{signature}"
    with pytest.raises(TokenInvalid):
        codec.decode(forged)


def test_tampered_signature(codec: TokenCodec) -> None:
    token, _ = codec.issue(USER, "user")
    last = "A" if token[-2] != "A" else "B"
    with pytest.raises(TokenInvalid):
        codec.decode(token[:-2] + last + token[-1])


@pytest.mark.parametrize("missing", ["user_id", "role", "exp", "iat", "jti"])
def test_missing_claim(codec: TokenCodec, missing: str) -> None:
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalid):
        codec.decode(token)


@pytest.mark.parametrize(
    "override",
    [{"role": "root"}, {"user_id": "not-a-uuid"}, {"jti": "x"}, {"user_id": 12}],
    ids=["unknown-role", "bad-user-id", "bad-jti", "numeric-user-id"],
)
def test_bad_claim_values(codec: TokenCodec, override: dict[str, Any]) -> None:
    token = jwt.encode(claims(**override), SECRET, algorithm="HS256")
    with pytest.raises(TokenInvalid):
        codec.decode(token)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "a.b", "....", "eyJ.eyJ.", "x" * 5000, "ü.ö.ä", "Bearer abc"],
    ids=["empty", "word", "three-parts", "two-parts", "dots", "eyj-stubs", "huge", "non-ascii", "bearer"],
)
def test_garbage(codec: TokenCodec, garbage: str) -> None:
    with pytest.raises(TokenInvalid):
        codec.decode(garbage)
