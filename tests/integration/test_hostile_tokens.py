"""Hostile session tokens: forged, expired, `alg: none`, other keys, tampered claims, dead jtis.

Every one must be refused the same way everywhere a token is accepted: over HTTP with 401 and
exactly `{"detail", "code"}` (`token_invalid` or `token_expired`), as the first `auth` frame of
a socket (close 4401, the code as the reason), and as a second `auth` frame on an open socket
(close 4401). The victim's real token keeps working afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.conftest import TEST_PASSWORD, Api, LiveServer
from tests.integration.wsclient import WsClient

FOREIGN_KEY = b"an attacker's own 64-byte key, not the server's ......" + b"." * 10


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(header: dict[str, Any], payload: dict[str, Any], key: bytes, digest: Any = hashlib.sha256) -> str:
    """A JWS compact token built by hand (any header, any key, even an empty one)."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def assert_token_refused(response: httpx.Response, code: str, token: str) -> None:
    """401 with exactly the contract's error body, and nothing of the token echoed."""
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    if len(token) > 20:
        assert token not in response.text


@dataclass
class World:
    """A victim with a live session, and a second user whose id an attacker could swap in."""

    victim: dict[str, Any]
    other: dict[str, Any]
    secret: bytes

    @property
    def claims(self) -> dict[str, Any]:
        issued: dict[str, Any] = jwt.decode(self.victim["token"], self.secret, algorithms=["HS256"])
        return issued


def _world(live_server: LiveServer, api: Api) -> World:
    return World(victim=api.guest("Victim"), other=api.guest("Other"), secret=live_server.ctx.tokens._secret)


def _delete_token_row(live_server: LiveServer, jti: str) -> None:
    async def delete() -> None:
        async with live_server.ctx.pool.acquire() as conn:
            await conn.execute("DELETE FROM tokens WHERE jti = $1", uuid.UUID(jti))

    live_server.run(delete())


def _forge(name: str, world: World, live_server: LiveServer, api: Api) -> tuple[str, str]:
    """The hostile token called `name` and the code it must be refused with."""
    secret, claims, now = world.secret, world.claims, int(time.time())
    real = world.victim["token"]
    header, payload, signature = real.split(".")
    hs256 = {"alg": "HS256", "typ": "JWT"}
    other_id = world.other["user"]["id"]
    fresh = {**claims, "jti": str(uuid.uuid4())}
    if name == "expired":
        return sign(hs256, {**claims, "exp": now - 30, "iat": now - 3630}, secret), "token_expired"
    if name == "expired-one-second-ago":
        return sign(hs256, {**claims, "exp": now - 1}, secret), "token_expired"
    if name == "alg-none-unsigned":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.", "token_invalid"
    if name == "alg-none-keeps-signature":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}", "token_invalid"
    if name == "alg-NONE-uppercase":
        return f"{b64({'alg': 'NONE'})}.{b64({**claims, 'role': 'admin'})}.", "token_invalid"
    if name == "alg-missing":
        return f"{b64({'typ': 'JWT'})}.{payload}.{signature}", "token_invalid"
    if name == "hs256-other-key":
        return sign(hs256, claims, FOREIGN_KEY), "token_invalid"
    if name == "hs256-empty-key":
        return sign(hs256, {**claims, "role": "admin"}, b""), "token_invalid"
    if name == "hs384-same-secret":
        return sign({"alg": "HS384", "typ": "JWT"}, claims, secret, hashlib.sha384), "token_invalid"
    if name == "rs256-header-hmac-signature":
        # Algorithm confusion: claim RS256 but sign with HMAC over the (guessable) secret.
        return sign({"alg": "RS256", "typ": "JWT"}, claims, secret), "token_invalid"
    if name == "kid-path-traversal-empty-key":
        return sign(
            {**hs256, "kid": "../../../../dev/null"}, {**claims, "role": "admin"}, b""
        ), "token_invalid"
    if name == "jku-attacker-key":
        jku = {**hs256, "jku": "https://evil.example/jwks.json", "kid": "evil"}
        return sign(jku, {**claims, "role": "admin"}, FOREIGN_KEY), "token_invalid"
    if name == "tampered-role-admin":
        return f"{header}.{b64({**claims, 'role': 'admin'})}.{signature}", "token_invalid"
    if name == "tampered-user-id-swapped":
        return f"{header}.{b64({**claims, 'user_id': other_id})}.{signature}", "token_invalid"
    if name == "tampered-exp-extended":
        return f"{header}.{b64({**claims, 'exp': now + 10 * 365 * 86400})}.{signature}", "token_invalid"
    if name == "tampered-signature-bit":
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        return f"{header}.{payload}.{flipped}", "token_invalid"
    # From here on the server's own key signs: even a leaked key cannot invent what the
    # tokens table does not back.
    if name == "signed-role-raised-to-admin":
        return sign(hs256, {**claims, "role": "admin"}, secret), "token_invalid"
    if name == "signed-role-raised-to-supporter":
        return sign(hs256, {**claims, "role": "supporter"}, secret), "token_invalid"
    if name == "signed-user-id-swapped":
        # The victim's live jti, presented for another user.
        return sign(hs256, {**claims, "user_id": other_id}, secret), "token_invalid"
    if name == "signed-never-issued-jti":
        return sign(hs256, fresh, secret), "token_invalid"
    if name == "signed-unknown-user":
        return sign(hs256, {**fresh, "user_id": str(uuid.uuid4())}, secret), "token_invalid"
    if name == "deleted-jti":
        session = api.call(
            "POST", "/api/auth/guest/resume", json={"resume_token": world.victim["resume_token"]}
        )
        token = session.json()["token"]
        _delete_token_row(live_server, jwt.decode(token, secret, algorithms=["HS256"])["jti"])
        return token, "token_invalid"
    if name == "revoked-jti":
        session = api.call(
            "POST", "/api/auth/guest/resume", json={"resume_token": world.victim["resume_token"]}
        )
        token = session.json()["token"]
        assert api.call("POST", "/api/auth/logout", token).status_code == 204
        return token, "token_invalid"
    if name == "signed-not-before-future":
        return sign(hs256, {**claims, "nbf": now + 3600}, secret), "token_invalid"
    if name == "signed-issued-in-future":
        return sign(hs256, {**claims, "iat": now + 3600}, secret), "token_invalid"
    if name == "signed-missing-exp":
        return sign(hs256, {k: v for k, v in claims.items() if k != "exp"}, secret), "token_invalid"
    if name == "signed-exp-overflow":
        return sign(hs256, {**claims, "exp": 10**20}, secret), "token_invalid"
    if name == "signed-exp-not-a-number":
        return sign(hs256, {**claims, "exp": "soon"}, secret), "token_invalid"
    if name == "signed-user-id-not-uuid":
        return sign(hs256, {**claims, "user_id": "1 OR 1=1"}, secret), "token_invalid"
    if name == "signed-role-unknown":
        return sign(hs256, {**claims, "role": "root"}, secret), "token_invalid"
    if name == "signed-jti-sql":
        return sign(hs256, {**claims, "jti": "' OR '1'='1"}, secret), "token_invalid"
    if name == "payload-not-json":
        return f"{header}.{b64(b'not json at all')}.{signature}", "token_invalid"
    if name == "four-segments":
        return f"{real}.{signature}", "token_invalid"
    if name == "json-serialization":
        return json.dumps({"protected": header, "payload": payload, "signature": signature}), "token_invalid"
    raise AssertionError(name)


FORGED = [
    "expired",
    "expired-one-second-ago",
    "alg-none-unsigned",
    "alg-none-keeps-signature",
    "alg-NONE-uppercase",
    "alg-missing",
    "hs256-other-key",
    "hs256-empty-key",
    "hs384-same-secret",
    "rs256-header-hmac-signature",
    "kid-path-traversal-empty-key",
    "jku-attacker-key",
    "tampered-role-admin",
    "tampered-user-id-swapped",
    "tampered-exp-extended",
    "tampered-signature-bit",
    "signed-role-raised-to-admin",
    "signed-role-raised-to-supporter",
    "signed-user-id-swapped",
    "signed-never-issued-jti",
    "signed-unknown-user",
    "deleted-jti",
    "revoked-jti",
    "signed-not-before-future",
    "signed-issued-in-future",
    "signed-missing-exp",
    "signed-exp-overflow",
    "signed-exp-not-a-number",
    "signed-user-id-not-uuid",
    "signed-role-unknown",
    "signed-jti-sql",
    "payload-not-json",
    "four-segments",
    "json-serialization",
]

# Endpoints behind each kind of guard: any user, staff only, admins only, and the two that
# would let a forged token mint a real one or kill the victim's session.
GUARDED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/me", None),
    ("GET", "/api/chats", None),
    ("POST", "/api/chats", {}),
    ("GET", "/api/admin/users", None),
    ("GET", "/api/admin/audit", None),
    ("POST", "/api/auth/refresh", None),
    ("POST", "/api/auth/logout-all", None),
]


@pytest.mark.parametrize("name", FORGED)
def test_forged_token_over_http(live_server: LiveServer, api: Api, name: str) -> None:
    world = _world(live_server, api)
    chat = api.new_chat(world.victim["token"])
    token, code = _forge(name, world, live_server, api)
    guarded = [
        *GUARDED,
        ("GET", f"/api/chats/{chat['id']}", None),
        ("GET", f"/api/chats/{chat['id']}/messages", None),
        ("POST", f"/api/chats/{chat['id']}/messages", {"text": "forged", "client_msg_id": "f"}),
        ("POST", f"/api/chats/{chat['id']}/close", None),
        ("POST", f"/api/admin/users/{world.other['user']['id']}/disable", None),
    ]
    for method, path, body in guarded:
        # Authentication comes before authorization: a forged admin token gets 401, never 403.
        assert_token_refused(api.call(method, path, token, json=body), code, token)
    # Nothing happened on the victim's behalf, and the real session is untouched.
    assert api.call("GET", "/api/me", world.victim["token"]).json()["id"] == world.victim["user"]["id"]
    messages = api.call("GET", f"/api/chats/{chat['id']}/messages", world.victim["token"]).json()
    assert messages == []
    assert api.call("GET", f"/api/chats/{chat['id']}", world.victim["token"]).json()["status"] != "closed"


async def _close_of(client: WsClient, timeout: float = 5.0) -> tuple[int | None, str]:
    try:
        while True:
            await client.recv(timeout)
    except websockets.ConnectionClosed as closed:
        if closed.rcvd is None:
            return None, ""
        return closed.rcvd.code, closed.rcvd.reason


@pytest.mark.parametrize("name", FORGED)
async def test_forged_token_as_the_first_auth_frame(live_server: LiveServer, api: Api, name: str) -> None:
    world = _world(live_server, api)
    token, code = _forge(name, world, live_server, api)
    client = await WsClient.connect(live_server.ws_url)
    await client.send({"type": "auth", "token": token})
    assert await _close_of(client) == (4401, code)
    # The victim can still connect with the real token.
    real = await WsClient.connect(live_server.ws_url, world.victim["token"])
    await real.close()


@pytest.mark.parametrize("name", FORGED)
async def test_forged_token_as_a_second_auth_frame(live_server: LiveServer, api: Api, name: str) -> None:
    world = _world(live_server, api)
    chat = api.new_chat(world.victim["token"])
    token, code = _forge(name, world, live_server, api)
    client = await WsClient.connect(live_server.ws_url, world.victim["token"])
    await client.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    await client.send({"type": "ping"})
    await client.expect("pong")
    await client.send({"type": "auth", "token": token})
    assert await _close_of(client) == (4401, code)


def test_forged_and_oversized_tokens_in_the_authorization_header(api: Api) -> None:
    """Header shapes an attacker might try; all are the same 401."""
    real = api.guest("Header")["token"]
    for value in [
        f"Bearer {real}x",
        f"Bearer x{real}",
        f"Bearer {real[:-1]}",
        f"Bearer {real.replace('.', '..', 1)}",
        f"Bearer {'A' * 4097}",
        "Bearer " + "a." * 2000 + "a",
        "Bearer null",
        "Bearer undefined",
        f"Basic {base64.b64encode(real.encode()).decode()}",
    ]:
        response = api.call("GET", "/api/me", headers={"Authorization": value})
        assert_token_refused(response, "token_invalid", real)


def test_a_token_in_the_query_string_or_a_cookie_is_not_a_session(api: Api) -> None:
    real = api.guest("Query")["token"]
    for kwargs in [
        {"params": {"token": real}},
        {"params": {"access_token": real}},
        {"headers": {"Cookie": f"token={real}; access_token={real}"}},
        {"headers": {"X-Auth-Token": real, "X-Access-Token": real}},
    ]:
        assert_token_refused(api.call("GET", "/api/me", **kwargs), "token_invalid", real)


async def test_a_token_in_the_socket_url_does_not_authenticate(live_server: LiveServer, api: Api) -> None:
    real = api.guest("Url")["token"]
    client = await WsClient.connect(f"{live_server.ws_url}?token={real}&access_token={real}")
    await client.send({"type": "ping"})  # without an auth frame there is no session
    assert await _close_of(client) == (4401, "the first frame must be auth")


async def test_second_auth_frame_with_the_other_users_live_token_closes(
    live_server: LiveServer, api: Api
) -> None:
    """A live, perfectly valid token of another user must not take over an open socket."""
    victim, attacker = api.guest("Victim"), api.guest("Attacker")
    chat = api.new_chat(victim["token"])
    socket = await WsClient.connect(live_server.ws_url, attacker["token"])
    await socket.send({"type": "auth", "token": victim["token"]})
    assert await _close_of(socket) == (4401, "a socket keeps its user")
    # The attacker's socket never saw the victim's chat.
    assert chat["id"] not in json.dumps(socket.inbox)


async def test_tokens_die_with_disable_and_password_change_also_as_second_auth_frame(
    live_server: LiveServer, api: Api
) -> None:
    """A token that was valid a moment ago and has since been killed cannot re-arm a socket."""
    admin = api.login(*live_server.make_staff(role="admin"))
    username, _ = live_server.make_staff()
    first, second = api.login(username, TEST_PASSWORD), api.login(username, TEST_PASSWORD)
    changed = api.call(
        "POST",
        "/api/auth/password",
        first["token"],
        json={"current_password": TEST_PASSWORD, "new_password": "a brand new password"},
    )
    assert changed.status_code == 204
    socket = await WsClient.connect(live_server.ws_url, first["token"])
    await socket.send({"type": "auth", "token": second["token"]})  # ended by the password change
    assert await _close_of(socket) == (4401, "token_invalid")
    disabled = api.call("POST", f"/api/admin/users/{first['user']['id']}/disable", admin["token"])
    assert disabled.status_code == 200
    assert_token_refused(api.call("GET", "/api/me", first["token"]), "token_invalid", first["token"])
    late = await WsClient.connect(live_server.ws_url)
    await late.send({"type": "auth", "token": first["token"]})
    assert await _close_of(late) == (4401, "token_invalid")


def test_expired_token_cannot_be_refreshed_or_logged_out(live_server: LiveServer, api: Api) -> None:
    world = _world(live_server, api)
    now = int(time.time())
    expired = sign({"alg": "HS256", "typ": "JWT"}, {**world.claims, "exp": now - 5}, world.secret)
    for path in ("/api/auth/refresh", "/api/auth/logout", "/api/auth/logout-all"):
        assert_token_refused(api.call("POST", path, expired), "token_expired", expired)
    # The same jti, still live in its real form, was not revoked by those attempts.
    assert api.call("GET", "/api/me", world.victim["token"]).status_code == 200


def test_forged_tokens_leave_no_session_behind(live_server: LiveServer, api: Api) -> None:
    """Refused tokens are not recorded: the tokens table only holds what the server issued."""
    world = _world(live_server, api)
    before = _token_count(live_server, world.victim["user"]["id"])
    for name in ("signed-never-issued-jti", "signed-role-raised-to-admin", "alg-none-unsigned"):
        token, _ = _forge(name, world, live_server, api)
        api.call("POST", "/api/auth/refresh", token)
    assert _token_count(live_server, world.victim["user"]["id"]) == before


def _token_count(live_server: LiveServer, user_id: str) -> int:
    async def count() -> int:
        async with live_server.ctx.pool.acquire() as conn:
            value: int = await conn.fetchval(
                "SELECT count(*) FROM tokens WHERE user_id = $1", uuid.UUID(user_id)
            )
            return value

    result: int = live_server.run(count())
    return result
