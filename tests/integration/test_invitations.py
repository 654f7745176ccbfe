"""Invitations: a supporter opens a chat for a customer, who joins it with a one-time link."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import Api, LiveServer


def _invite(api: Api, supporter: dict[str, Any], name: str = "Ida Eingeladen") -> tuple[dict[str, Any], str]:
    response = api.call("POST", "/api/chats", supporter["token"], json={"customer_display_name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    token = parse_qs(urlsplit(body["invite_url"]).query)["invite"][0]
    return body, token


def test_invited_customer_joins_the_chat_once(
    api: Api, supporter: dict[str, Any], live_server: LiveServer
) -> None:
    body, token = _invite(api, supporter)
    assert body["invite_url"].startswith(live_server.url + "/?invite=")
    assert len(token) >= 43  # at least 256 bits, base64url
    chat = body["chat"]
    assert chat["status"] == "assigned" and chat["supporter"]["id"] == supporter["user"]["id"]
    accepted = api.call("POST", f"/api/invitations/{token}/accept")
    assert accepted.status_code == 200, accepted.text
    session = accepted.json()
    assert session["chat"]["id"] == chat["id"]
    assert session["user"]["display_name"] == "Ida Eingeladen" and session["user"]["role"] == "user"
    sent = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        session["token"],
        json={"text": "Hallo!", "client_msg_id": "i1"},
    )
    assert sent.status_code == 201
    again = api.call("POST", f"/api/invitations/{token}/accept")
    assert again.status_code == 410 and again.json()["code"] == "invitation_gone"
    resumed = api.call("POST", "/api/auth/guest/resume", json={"resume_token": session["resume_token"]})
    assert resumed.status_code == 200 and resumed.json()["user"]["id"] == session["user"]["id"]


def test_expired_and_unknown_invitations(
    api: Api, supporter: dict[str, Any], live_server: LiveServer
) -> None:
    _, token = _invite(api, supporter)

    async def expire() -> None:
        async with live_server.ctx.pool.acquire() as conn:
            await conn.execute(
                "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
                hashlib.sha256(token.encode()).digest(),
            )

    live_server.run(expire())
    gone = api.call("POST", f"/api/invitations/{token}/accept")
    assert gone.status_code == 410 and gone.json()["code"] == "invitation_gone"
    unknown = api.call("POST", "/api/invitations/not-a-real-token/accept")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_only_the_hash_of_the_token_is_stored(
    api: Api, supporter: dict[str, Any], live_server: LiveServer
) -> None:
    _, token = _invite(api, supporter)

    async def stored() -> list[bytes]:
        async with live_server.ctx.pool.acquire() as conn:
            return [row["token_hash"] for row in await conn.fetch("SELECT token_hash FROM invitations")]

    hashes = live_server.run(stored())
    assert hashlib.sha256(token.encode()).digest() in hashes
    assert all(token.encode() not in h for h in hashes)


def test_who_may_name_a_customer(api: Api, supporter: dict[str, Any]) -> None:
    customer = api.guest()
    by_customer = api.call("POST", "/api/chats", customer["token"], json={"customer_display_name": "Someone"})
    assert by_customer.status_code == 422 and by_customer.json()["code"] == "validation_error"
    without_name = api.call("POST", "/api/chats", supporter["token"], json={})
    assert without_name.status_code == 422


def test_invited_customer_sees_only_their_chat(api: Api, supporter: dict[str, Any]) -> None:
    body, token = _invite(api, supporter, "Nur Eins")
    other = api.new_chat(api.guest("Andere")["token"])
    session = api.call("POST", f"/api/invitations/{token}/accept").json()
    assert [c["id"] for c in api.call("GET", "/api/chats", session["token"]).json()] == [body["chat"]["id"]]
    assert api.call("GET", f"/api/chats/{other['id']}", session["token"]).status_code == 404
