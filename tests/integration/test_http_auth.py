"""Sessions over HTTP: guests, registration, login, logout, refresh and forged tokens."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Api, LiveServer

OFFSET = re.compile(r"[+-]\d\d:\d\d$")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error body, exactly."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "code"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["code"] == code, body
    return body


def assert_berlin_time(value: str) -> datetime:
    """An ISO 8601 time with the server's (Europe/Berlin) offset."""
    assert OFFSET.search(value), value
    assert value[-6:] in ("+01:00", "+02:00"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None
    return parsed


def assert_session(body: dict[str, Any], role: str = "user") -> None:
    assert isinstance(body["token"], str) and body["token"].count(".") == 2
    expires = assert_berlin_time(body["expires_at"])
    assert 3500 < expires.timestamp() - time.time() <= 3601
    user = body["user"]
    uuid.UUID(user["id"])
    assert user["role"] == role
    assert isinstance(user["display_name"], str)


def username() -> str:
    return f"kunde_{uuid.uuid4().hex[:10]}"


def register(api: Api, name: str, password: str = "sicheres passwort", **extra: Any) -> httpx.Response:
    return api.call("POST", "/api/auth/register", json={"username": name, "password": password, **extra})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# --- guests -------------------------------------------------------------------------------


def test_guest_session(api: Api) -> None:
    response = api.call(
        "POST", "/api/auth/guest", json={"display_name": "Anna Kunde", "email": "anna@example.org"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert_session(body)
    assert body["user"]["display_name"] == "Anna Kunde"
    assert body["user"].get("username") is None
    me = api.call("GET", "/api/me", body["token"])
    assert me.status_code == 200
    assert me.json() == body["user"]


def test_guest_display_name_is_trimmed(api: Api) -> None:
    response = api.call("POST", "/api/auth/guest", json={"display_name": "  Bea  "})
    assert response.status_code == 201
    assert response.json()["user"]["display_name"] == "Bea"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"display_name": ""},
        {"display_name": "   "},
        {"display_name": "x" * 101},
        {"display_name": "A", "email": "not-an-email"},
        {"display_name": "A", "role": "admin"},
        {"display_name": 5},
    ],
    ids=["missing", "empty", "blank", "too-long", "bad-email", "extra-role", "wrong-type"],
)
def test_guest_bad_input(api: Api, body: dict[str, Any]) -> None:
    assert_error(api.call("POST", "/api/auth/guest", json=body), 422, "validation_error")


def test_guest_resume(api: Api) -> None:
    first = api.guest("Carla")
    assert first["resume_token"]
    response = api.call("POST", "/api/auth/guest/resume", json={"resume_token": first["resume_token"]})
    assert response.status_code == 200, response.text
    resumed = response.json()
    assert_session(resumed)
    assert resumed["user"] == first["user"]
    assert resumed["token"] != first["token"]
    assert api.call("GET", "/api/me", resumed["token"]).json()["id"] == first["user"]["id"]


def test_guest_resume_wrong_token(api: Api) -> None:
    api.guest("Dora")
    response = api.call("POST", "/api/auth/guest/resume", json={"resume_token": "definitely-wrong"})
    assert_error(response, 401, "token_invalid")


def test_guest_resume_empty_token(api: Api) -> None:
    assert_error(
        api.call("POST", "/api/auth/guest/resume", json={"resume_token": ""}), 422, "validation_error"
    )


def test_guest_rate_limit(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(guest_rate_per_minute=3)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(3):
            assert http.post("/api/auth/guest", json={"display_name": "NAT"}).status_code == 201
        refused = http.post("/api/auth/guest", json={"display_name": "NAT"})
        assert_error(refused, 429, "rate_limited")
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        # Other endpoints are not affected by the guest limit.
        assert http.get("/healthz").status_code == 200


# --- registration and login ----------------------------------------------------------------


def test_register(api: Api) -> None:
    name = username()
    response = register(api, name, display_name="Erika Muster")
    assert response.status_code == 201, response.text
    body = response.json()
    assert_session(body)
    assert body["user"]["username"] == name
    assert body["user"]["display_name"] == "Erika Muster"
    assert api.call("GET", "/api/me", body["token"]).json() == body["user"]


def test_register_display_name_defaults_to_username(api: Api) -> None:
    name = username()
    assert register(api, name).json()["user"]["display_name"] == name


def test_register_duplicate_username(api: Api) -> None:
    name = username()
    assert register(api, name).status_code == 201
    assert_error(register(api, name), 409, "username_taken")


def test_register_duplicate_username_other_case(api: Api) -> None:
    name = username()
    assert register(api, name).status_code == 201
    assert_error(register(api, name.upper()), 409, "username_taken")
    assert_error(register(api, name.capitalize()), 409, "username_taken")


def test_register_password_too_short(api: Api) -> None:
    assert_error(register(api, username(), "1234567"), 422, "validation_error")


def test_register_password_too_long_mentions_72(api: Api) -> None:
    body = assert_error(register(api, username(), "x" * 73), 422, "validation_error")
    assert "72" in body["detail"]
    # 37 umlauts are 74 bytes though only 37 characters
    body = assert_error(register(api, username(), "ä" * 37), 422, "validation_error")
    assert "72" in body["detail"]


def test_register_72_byte_non_ascii_password(api: Api) -> None:
    name = username()
    assert register(api, name, "ä" * 36).status_code == 201
    assert api.login(name, "ä" * 36)["user"]["username"] == name
    assert_error(
        api.call("POST", "/api/auth/login", json={"username": name, "password": "ä" * 35 + "a"}),
        401,
        "invalid_credentials",
    )


def test_register_non_ascii_password(api: Api) -> None:
    name = username()
    password = "Grüße aus Köln 🚲"
    assert register(api, name, password).status_code == 201
    assert api.login(name, password)["user"]["username"] == name


def test_register_display_name_markup_is_stored_literally(api: Api) -> None:
    markup = "<script>alert(1)</script> & <b>Bob</b>"
    response = register(api, username(), display_name=markup)
    assert response.status_code == 201
    token = response.json()["token"]
    assert response.json()["user"]["display_name"] == markup
    assert api.call("GET", "/api/me", token).json()["display_name"] == markup


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ab", "password": "12345678"},
        {"username": "has space", "password": "12345678"},
        {"username": "x" * 65, "password": "12345678"},
        {"username": "okname", "password": "12345678", "role": "supporter"},
        {"username": "okname"},
        {"password": "12345678"},
        {"username": ["a"], "password": "12345678"},
    ],
    ids=[
        "short-username",
        "space",
        "long-username",
        "extra-role",
        "no-password",
        "no-username",
        "wrong-type",
    ],
)
def test_register_bad_input(api: Api, body: dict[str, Any]) -> None:
    assert_error(api.call("POST", "/api/auth/register", json=body), 422, "validation_error")


def test_register_cannot_become_supporter(api: Api) -> None:
    response = api.call(
        "POST", "/api/auth/register", json={"username": username(), "password": "12345678", "role": "admin"}
    )
    assert_error(response, 422, "validation_error")


def test_login(api: Api) -> None:
    name = username()
    registered = register(api, name, display_name="Lena").json()
    response = api.call("POST", "/api/auth/login", json={"username": name, "password": "sicheres passwort"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_session(body)
    assert body["user"] == registered["user"]
    assert body["token"] != registered["token"]


def test_login_ignores_username_case(api: Api) -> None:
    name = username()
    register(api, name)
    assert api.login(name.upper(), "sicheres passwort")["user"]["username"] == name


def test_login_supporter(live_server: LiveServer, api: Api) -> None:
    name, password = live_server.make_staff()
    session = api.login(name, password)
    assert_session(session, role="supporter")


def test_login_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    name = username()
    register(api, name)
    wrong = api.call("POST", "/api/auth/login", json={"username": name, "password": "falsches passwort"})
    unknown = api.call(
        "POST", "/api/auth/login", json={"username": username(), "password": "falsches passwort"}
    )
    assert_error(wrong, 401, "invalid_credentials")
    assert_error(unknown, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()


def test_login_guest_has_no_password(api: Api) -> None:
    # A guest has no username; nothing to log in with, and an empty password gets nobody in.
    response = api.call("POST", "/api/auth/login", json={"username": "Anna Kunde", "password": "x"})
    assert_error(response, 401, "invalid_credentials")


def test_login_overlong_password_is_wrong_not_an_error(api: Api) -> None:
    name = username()
    register(api, name, "x" * 72)
    response = api.call("POST", "/api/auth/login", json={"username": name, "password": "x" * 73})
    assert_error(response, 401, "invalid_credentials")


# --- me, logout, refresh -------------------------------------------------------------------


def test_me_without_token(api: Api) -> None:
    assert_error(api.call("GET", "/api/me"), 401, "token_invalid")


def test_logout_kills_the_token_everywhere(api: Api) -> None:
    session = api.guest("Olaf")
    token = session["token"]
    chat = api.new_chat(token)
    response = api.call("POST", "/api/auth/logout", token)
    assert response.status_code == 204
    assert response.content == b""
    for method, path, body in [
        ("GET", "/api/me", None),
        ("GET", "/api/chats", None),
        ("POST", "/api/chats", {}),
        ("GET", f"/api/chats/{chat['id']}", None),
        ("GET", f"/api/chats/{chat['id']}/messages", None),
        ("POST", f"/api/chats/{chat['id']}/messages", {"text": "hi", "client_msg_id": "x"}),
        ("POST", "/api/auth/refresh", None),
        ("POST", "/api/auth/logout", None),
    ]:
        assert_error(api.call(method, path, token, json=body), 401, "token_invalid")


def test_logout_leaves_other_sessions_alive(api: Api) -> None:
    name = username()
    first = register(api, name).json()
    second = api.login(name, "sicheres passwort")
    assert api.call("POST", "/api/auth/logout", first["token"]).status_code == 204
    assert api.call("GET", "/api/me", second["token"]).status_code == 200


def test_refresh(api: Api) -> None:
    session = api.guest("Rita")
    response = api.call("POST", "/api/auth/refresh", session["token"])
    assert response.status_code == 200, response.text
    fresh = response.json()
    assert_session(fresh)
    assert fresh["token"] != session["token"]
    assert fresh["user"] == session["user"]
    assert api.call("GET", "/api/me", fresh["token"]).json() == session["user"]
    # Logging out the fresh one does not end the old one (nor the other way round).
    assert api.call("POST", "/api/auth/logout", fresh["token"]).status_code == 204
    assert api.call("GET", "/api/me", session["token"]).status_code == 200


def test_refresh_without_token(api: Api) -> None:
    assert_error(api.call("POST", "/api/auth/refresh"), 401, "token_invalid")


# --- forged and broken tokens --------------------------------------------------------------


def server_claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "user_id": user_id,
        "role": "user",
        "exp": now + 600,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    values.update(overrides)
    return values


def forged_tokens(live_server: LiveServer, session: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Name -> (token, expected code)."""
    secret: bytes = live_server.ctx.tokens._secret
    real = session["token"]
    user_id = session["user"]["id"]
    issued = jwt.decode(real, secret, algorithms=["HS256"])
    now = int(time.time())
    header, payload, signature = real.split(".")
    expired = jwt.encode({**issued, "exp": now - 10, "iat": now - 3700}, secret, algorithm="HS256")
    return {
        "expired": (expired, "token_expired"),
        "other-key": (jwt.encode(issued, b"k" * 64, algorithm="HS256"), "token_invalid"),
        "alg-none": (f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(issued)}.", "token_invalid"),
        "hs512-same-secret": (jwt.encode(issued, secret, algorithm="HS512"), "token_invalid"),
        "tampered-role": (f"{header}.{b64({**issued, 'role': 'supporter'})}.{signature}", "token_invalid"),
        "tampered-signature": (f"{header}.{payload}.{signature[:-4]}AAAA", "token_invalid"),
        "never-issued": (jwt.encode(server_claims(user_id), secret, algorithm="HS256"), "token_invalid"),
        "role-escalated": (
            jwt.encode({**issued, "role": "supporter"}, secret, algorithm="HS256"),
            "token_invalid",
        ),
        "unknown-user": (
            jwt.encode(server_claims(str(uuid.uuid4())), secret, algorithm="HS256"),
            "token_invalid",
        ),
        "missing-jti": (
            jwt.encode({k: v for k, v in issued.items() if k != "jti"}, secret, algorithm="HS256"),
            "token_invalid",
        ),
        "malformed": ("not.a.jwt", "token_invalid"),
        "garbage": ("garbage", "token_invalid"),
        "huge": ("a" * 5000, "token_invalid"),
    }


FORGED = [
    "expired",
    "other-key",
    "alg-none",
    "hs512-same-secret",
    "tampered-role",
    "tampered-signature",
    "never-issued",
    "role-escalated",
    "unknown-user",
    "missing-jti",
    "malformed",
    "garbage",
    "huge",
]


@pytest.mark.parametrize("name", FORGED)
def test_forged_token_rejected(live_server: LiveServer, api: Api, name: str) -> None:
    session = api.guest("Mallory")
    token, code = forged_tokens(live_server, session)[name]
    for method, path in [("GET", "/api/me"), ("GET", "/api/chats"), ("POST", "/api/auth/refresh")]:
        assert_error(api.call(method, path, token), 401, code)
    # The real token still works.
    assert api.call("GET", "/api/me", session["token"]).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Basic dXNlcjpwYXNz", "Token abc", "bearer", "Bearer a b"],
    ids=["empty", "bearer-only", "basic", "token-scheme", "lowercase-only", "two-values"],
)
def test_broken_authorization_header(api: Api, header: str) -> None:
    assert_error(api.call("GET", "/api/me", headers={"Authorization": header}), 401, "token_invalid")


def test_missing_authorization_header(api: Api) -> None:
    for method, path in [("GET", "/api/me"), ("GET", "/api/chats"), ("POST", "/api/chats")]:
        assert_error(api.call(method, path, json={} if method == "POST" else None), 401, "token_invalid")


def test_lowercase_bearer_scheme_accepted(api: Api) -> None:
    token = api.guest("Lower")["token"]
    assert api.call("GET", "/api/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


# --- NUL characters: valid JSON, but PostgreSQL text cannot hold them --------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/guest", {"display_name": "Anna\u0000"}),
        ("/api/auth/guest", {"display_name": "Anna", "email": "a\u0000@example.org"}),
        ("/api/auth/register", {"username": "nul_user", "password": "12345678", "display_name": "N\u0000"}),
        ("/api/auth/register", {"username": "nul\u0000user", "password": "12345678"}),
        ("/api/auth/login", {"username": "anna\u0000", "password": "12345678"}),
        ("/api/auth/guest/resume", {"resume_token": "abc\u0000"}),
    ],
    ids=[
        "guest-name",
        "guest-email",
        "register-display-name",
        "register-username",
        "login-username",
        "resume-token",
    ],
)
def test_nul_character_is_a_client_error(live_server: LiveServer, path: str, body: dict[str, Any]) -> None:
    # A connection of its own: after a 500 the server drops the connection, which would fail the next test.
    response = httpx.post(live_server.url + path, json=body, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/auth/guest", b'{"display_name": "Anna \\ud800"}'),
        ("/api/auth/register", b'{"username": "surrogate_pw", "password": "12345678\\udc00"}'),
        ("/api/auth/login", b'{"username": "anna\\ud800", "password": "12345678"}'),
        ("/api/auth/login", b'{"username": "anna", "password": "12345678\\ud800"}'),
    ],
    ids=["guest-name", "register-password", "login-username", "login-password"],
)
def test_lone_surrogate_is_a_client_error(live_server: LiveServer, path: str, raw: bytes) -> None:
    response = httpx.post(
        live_server.url + path, content=raw, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"detail", "code"}


def test_nul_in_password(api: Api) -> None:
    name = username()
    response = register(api, name, "secret\u0000password")
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        # Whatever is accepted must be what is checked: the part after NUL counts.
        assert api.login(name, "secret\u0000password")["user"]["username"] == name
        wrong = api.call("POST", "/api/auth/login", json={"username": name, "password": "secret\u0000other"})
        assert_error(wrong, 401, "invalid_credentials")
    else:
        assert_error(response, 422, "validation_error")
    login = api.call("POST", "/api/auth/login", json={"username": username(), "password": "x\u0000y"})
    assert_error(login, 422, "validation_error")
