"""The archive: old closed chats move to the archive database exactly once, supporters read
them there, and an admin purges a customer from both databases."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from backend.__main__ import main
from backend.archive import service as archive_service
from backend.archive.repository import SourceRepository
from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient

WEEK = timedelta(days=7)


@pytest.fixture(scope="module")
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    """A server whose own periodic pass never finds the chats these tests age: they run passes themselves."""
    return start_server(
        archive_after_days=3650,
        guest_rate_per_minute=100_000,
        http_message_rate=1000,
        http_message_burst=1000,
    )


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[Api]:
    api = Api(server.url)
    yield api
    api.http.close()


@pytest.fixture(scope="module")
def staff(server: LiveServer, client: Api) -> dict[str, Any]:
    return client.login(*server.make_staff(display_name="Sam Support"))


def _post(api: Api, token: str, chat_id: str, text: str) -> None:
    response = api.call(
        "POST",
        f"/api/chats/{chat_id}/messages",
        token,
        json={"text": text, "client_msg_id": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text


def make_chat(
    api: Api,
    staff: dict[str, Any],
    *,
    texts: int = 3,
    close: bool = True,
    customer: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any], list[str]]:
    """A chat between a new guest and the supporter with `texts` messages; returns (id, customer, texts)."""
    customer = customer or api.guest(f"Kundin {uuid.uuid4().hex[:6]}")
    chat_id = api.new_chat(customer["token"])["id"]
    assert api.call("POST", f"/api/chats/{chat_id}/assign", staff["token"]).status_code == 200
    sent = []
    for i in range(texts):
        text = f"Nachricht {i} in {chat_id[:8]}: Grüße ✓"
        _post(api, customer["token"] if i % 2 == 0 else staff["token"], chat_id, text)
        sent.append(text)
    if close:
        assert api.call("POST", f"/api/chats/{chat_id}/close", staff["token"]).status_code == 200
    return chat_id, customer, sent


def age(server: LiveServer, chat_ids: list[str], days: int = 8) -> None:
    """Pretend the chats were closed (and created) `days` days ago."""

    async def update() -> None:
        async with server.ctx.pool.acquire() as conn:
            await conn.execute(
                "UPDATE chats SET closed_at = CASE WHEN closed_at IS NULL THEN NULL"
                " ELSE now() - make_interval(days => $2) END,"
                " created_at = now() - make_interval(days => $2 + 1) WHERE id = ANY($1::uuid[])",
                [uuid.UUID(c) for c in chat_ids],
                days,
            )

    server.run(update())


def run_pass(server: LiveServer, **kwargs: Any) -> archive_service.ArchiveResult:
    options: dict[str, Any] = {"older_than": WEEK, "batch_size": 500} | kwargs
    result: archive_service.ArchiveResult = server.run(
        archive_service.archive_pass(server.ctx.pool, server.ctx.archive_pool, **options)
    )
    return result


def main_chats(server: LiveServer, chat_ids: list[str]) -> set[str]:
    async def query() -> set[str]:
        async with server.ctx.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id FROM chats WHERE id = ANY($1::uuid[])", [uuid.UUID(c) for c in chat_ids]
            )
        return {str(row["id"]) for row in rows}

    found: set[str] = server.run(query())
    return found


def archived_rows(server: LiveServer, chat_ids: list[str]) -> list[dict[str, Any]]:
    async def query() -> list[dict[str, Any]]:
        assert server.ctx.archive_pool is not None
        async with server.ctx.archive_pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, user_id, supporter_id, chat_content, archived_at FROM archived_chats"
                " WHERE id = ANY($1::uuid[])",
                [uuid.UUID(c) for c in chat_ids],
            )
        return [dict(row) for row in rows]

    found: list[dict[str, Any]] = server.run(query())
    return found


def assert_moved_once(server: LiveServer, chats: dict[str, list[str]]) -> None:
    """Every chat is in the archive exactly once with all its messages, and gone from main."""
    ids = list(chats)
    assert main_chats(server, ids) == set()
    rows = archived_rows(server, ids)
    assert sorted(str(row["id"]) for row in rows) == sorted(ids)
    for row in rows:
        messages = row["chat_content"]["messages"]
        assert [m["seq"] for m in messages] == list(range(1, len(chats[str(row["id"])]) + 1))


def test_an_old_closed_chat_moves_and_others_stay(
    server: LiveServer, client: Api, staff: dict[str, Any]
) -> None:
    old, customer, texts = make_chat(client, staff)
    still_open, _, _ = make_chat(client, staff, close=False)
    recent, _, _ = make_chat(client, staff)
    age(server, [old, still_open])

    result = run_pass(server)

    assert result.chats >= 1 and not result.skipped
    # Gone from the main API for everyone, the others untouched.
    assert client.call("GET", f"/api/chats/{old}", staff["token"]).status_code == 404
    assert client.call("GET", f"/api/chats/{old}", customer["token"]).status_code == 404
    assert client.call("GET", f"/api/chats/{still_open}", staff["token"]).json()["status"] == "assigned"
    assert client.call("GET", f"/api/chats/{recent}", staff["token"]).json()["status"] == "closed"
    assert main_chats(server, [old, still_open, recent]) == {still_open, recent}

    [row] = archived_rows(server, [old])
    assert str(row["user_id"]) == customer["user"]["id"] and str(row["supporter_id"]) == staff["user"]["id"]
    doc = row["chat_content"]
    assert doc["status"] == "closed" and doc["closed_at"] and doc["last_seq"] == 3
    assert doc["customer"]["display_name"] == customer["user"]["display_name"]
    assert doc["supporter"]["display_name"] == "Sam Support"
    keyring = server.ctx.keyring
    opened = []
    for message in doc["messages"]:
        blob = base64.b64decode(message["content"])
        # Still encrypted at rest in the archive: no plaintext in the stored document.
        assert texts[message["seq"] - 1].encode() not in blob
        assert texts[message["seq"] - 1] not in str(doc)
        opened.append(
            keyring.decrypt(blob, message["key_id"], uuid.UUID(old), uuid.UUID(message["sender"]["id"]))
        )
    assert opened == texts

    async def audited() -> list[Any]:
        async with server.ctx.pool.acquire() as conn:
            return [
                row["details"]
                for row in await conn.fetch("SELECT details FROM audit_log WHERE action = 'chats_archived'")
            ]

    assert any(details["count"] >= 1 for details in server.run(audited()))


def test_supporter_reads_an_archived_chat(server: LiveServer, client: Api, staff: dict[str, Any]) -> None:
    chat_id, customer, texts = make_chat(client, staff, texts=5)
    age(server, [chat_id])
    run_pass(server)

    response = client.call("GET", f"/api/archive/chats/{chat_id}", staff["token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["chat"]["id"] == chat_id and body["chat"]["status"] == "closed"
    assert body["chat"]["customer"]["id"] == customer["user"]["id"]
    assert body["chat"]["supporter"]["id"] == staff["user"]["id"]
    assert [m["text"] for m in body["messages"]] == texts
    assert [m["seq"] for m in body["messages"]] == [1, 2, 3, 4, 5]
    assert {m["chat_id"] for m in body["messages"]} == {chat_id}
    assert body["messages"][1]["sender"]["id"] == staff["user"]["id"]
    assert body["archived_at"]

    listed = client.call(
        "GET", "/api/archive/chats", staff["token"], params={"customer_id": customer["user"]["id"]}
    ).json()
    assert [item["chat"]["id"] for item in listed] == [chat_id]
    assert "messages" not in listed[0]
    newest = client.call("GET", "/api/archive/chats", staff["token"], params={"limit": 1}).json()
    assert len(newest) == 1

    # Customers have no archive access; an unknown chat is 404.
    assert client.call("GET", f"/api/archive/chats/{chat_id}", customer["token"]).status_code == 403
    assert client.call("GET", "/api/archive/chats", customer["token"]).status_code == 403
    unknown = client.call("GET", f"/api/archive/chats/{uuid.uuid4()}", staff["token"])
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert client.call("GET", f"/api/archive/chats/{chat_id}").status_code == 401


@pytest.mark.parametrize("exclusive", [True, False])
def test_two_passes_at_once_move_each_chat_once(
    server: LiveServer, client: Api, staff: dict[str, Any], exclusive: bool
) -> None:
    chats = {}
    for _ in range(12):
        chat_id, _, texts = make_chat(client, staff, texts=3)
        chats[chat_id] = texts
    age(server, list(chats))

    async def both() -> list[archive_service.ArchiveResult]:
        assert server.ctx.archive_pool is not None
        passes = [
            archive_service.archive_pass(
                server.ctx.pool, server.ctx.archive_pool, older_than=WEEK, batch_size=3, exclusive=exclusive
            )
            for _ in range(2)
        ]
        return list(await asyncio.gather(*passes))

    first, second = server.run(both())

    assert first.chats + second.chats == 12
    assert first.messages + second.messages == 36
    if exclusive:
        # Only one pass works; the other sees the lock, or nothing left.
        assert first.skipped or second.skipped or 0 in (first.chats, second.chats)
    assert_moved_once(server, chats)


def test_a_pass_that_dies_half_way_loses_nothing(
    server: LiveServer, client: Api, staff: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    chats = {}
    for _ in range(10):
        chat_id, _, texts = make_chat(client, staff, texts=2)
        chats[chat_id] = texts
    age(server, list(chats))
    real_delete = SourceRepository.delete_chats
    calls = {"n": 0}

    async def dies_once(self: SourceRepository, chat_ids: list[uuid.UUID]) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed between the archive write and the delete")
        return await real_delete(self, chat_ids)

    monkeypatch.setattr(SourceRepository, "delete_chats", dies_once)

    with pytest.raises(RuntimeError, match="killed"):
        run_pass(server, batch_size=4)
    # The dead pass wrote its first batch to the archive and deleted nothing.
    assert len(archived_rows(server, list(chats))) == 4
    assert main_chats(server, list(chats)) == set(chats)

    result = run_pass(server, batch_size=4)

    assert result.chats == 10 and result.messages == 20 and not result.skipped
    assert_moved_once(server, chats)
    for chat_id, texts in chats.items():
        body = client.call("GET", f"/api/archive/chats/{chat_id}", staff["token"]).json()
        assert [m["text"] for m in body["messages"]] == texts


def test_archive_command(
    server: LiveServer,
    client: Api,
    staff: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    chats = {}
    for _ in range(3):
        chat_id, _, texts = make_chat(client, staff, texts=2)
        chats[chat_id] = texts
    age(server, list(chats), days=3)
    database_url = server.settings.database_url
    assert database_url is not None
    monkeypatch.setenv("DATABASE_URL", database_url.get_secret_value())
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARCHIVE_BATCH_SIZE", "2")

    assert main(["archive"]) == 0
    assert main_chats(server, list(chats)) == set(chats)  # 3 days is not older than 7
    assert main(["archive", "--older-than-days", "2"]) == 0

    out = capsys.readouterr().out
    assert "archived 2 chats (2 so far)" in out and "archived 1 chats (3 so far)" in out
    assert "archived 3 chats with 6 messages" in out
    assert_moved_once(server, chats)


async def test_admin_purges_a_customer_from_both_databases(
    server: LiveServer, client: Api, staff: dict[str, Any]
) -> None:
    archived, customer, _ = make_chat(client, staff, texts=3)
    age(server, [archived])
    run_pass(server)
    current, _, _ = make_chat(client, staff, texts=2, close=False, customer=customer)
    other, other_customer, other_texts = make_chat(client, staff, texts=1, close=False)
    customer_id = customer["user"]["id"]
    socket = await WsClient.connect(server.ws_url, customer["token"])
    admin = client.login(*server.make_staff(role="admin"))
    path = f"/api/admin/customers/{customer_id}/purge"

    assert client.call("POST", path, staff["token"]).status_code == 403
    assert client.call("POST", path, customer["token"]).status_code == 403
    refused = client.call("POST", f"/api/admin/customers/{staff['user']['id']}/purge", admin["token"])
    assert refused.status_code == 422
    assert (
        client.call("POST", f"/api/admin/customers/{uuid.uuid4()}/purge", admin["token"]).status_code == 404
    )

    response = client.call("POST", path, admin["token"])

    assert response.status_code == 200, response.text
    assert response.json() == {
        "chats_deleted": 1,
        "archived_chats_deleted": 1,
        "messages_deleted": 5,
        "user_deleted": True,
    }
    assert await socket.closed_with(timeout=3) == 4401
    assert client.call("GET", "/api/me", customer["token"]).status_code == 401
    assert client.call("GET", f"/api/chats/{current}", staff["token"]).status_code == 404
    assert client.call("GET", f"/api/archive/chats/{archived}", staff["token"]).status_code == 404
    # Another customer's chat is untouched.
    kept = client.call("GET", f"/api/chats/{other}/messages", other_customer["token"]).json()
    assert [m["text"] for m in kept] == other_texts

    async def leftovers() -> dict[str, Any]:
        user_id = uuid.UUID(customer_id)
        assert server.ctx.archive_pool is not None
        async with server.ctx.pool.acquire() as conn:
            found = {
                "users": await conn.fetchval("SELECT count(*) FROM users WHERE id = $1", user_id),
                "chats": await conn.fetchval("SELECT count(*) FROM chats WHERE customer_id = $1", user_id),
                "messages": await conn.fetchval(
                    "SELECT count(*) FROM messages WHERE sender_id = $1", user_id
                ),
                "tokens": await conn.fetchval("SELECT count(*) FROM tokens WHERE user_id = $1", user_id),
                "audit": await conn.fetchrow(
                    "SELECT actor_id, target, details FROM audit_log WHERE action = 'customer_purged'"
                    " AND target = $1",
                    customer_id,
                ),
            }
        async with server.ctx.archive_pool.acquire() as conn:
            found["archived"] = await conn.fetchval(
                "SELECT count(*) FROM archived_chats WHERE user_id = $1", user_id
            )
        return found

    found = server.run(leftovers())
    assert (found["users"], found["chats"], found["messages"], found["tokens"], found["archived"]) == (
        0,
        0,
        0,
        0,
        0,
    )
    audit = found["audit"]
    assert str(audit["actor_id"]) == admin["user"]["id"]
    assert audit["details"]["chats_deleted"] == 1 and audit["details"]["messages_deleted"] == 5
    assert customer["user"]["display_name"] not in str(audit["details"])
    # Purging again finds nobody.
    assert client.call("POST", path, admin["token"]).status_code == 404


def test_the_periodic_pass_runs_soon_after_start(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(archive_after_days=0, archive_interval_seconds=1)
    api = Api(server.url)
    staff = api.login(*server.make_staff())
    chat_id, customer, texts = make_chat(api, staff, texts=2)
    deadline = time.monotonic() + 20
    response = api.call("GET", f"/api/archive/chats/{chat_id}", staff["token"])
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        response = api.call("GET", f"/api/archive/chats/{chat_id}", staff["token"])
    assert response.status_code == 200, "the periodic pass did not archive the closed chat"
    assert [m["text"] for m in response.json()["messages"]] == texts
    assert api.call("GET", f"/api/chats/{chat_id}", customer["token"]).status_code == 404
    api.http.close()


def test_purge_command(
    server: LiveServer,
    client: Api,
    staff: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    chat_id, customer, _ = make_chat(client, staff, texts=2)
    database_url = server.settings.database_url
    assert database_url is not None
    monkeypatch.setenv("DATABASE_URL", database_url.get_secret_value())
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    customer_id = customer["user"]["id"]

    assert main(["purge", "--customer", customer_id]) == 2
    assert "--yes" in capsys.readouterr().err
    assert client.call("GET", f"/api/chats/{chat_id}", customer["token"]).status_code == 200

    assert main(["purge", "--customer", customer_id, "--yes"]) == 0
    assert (
        f"purged customer {customer_id}: 1 chats, 0 archived chats, 2 messages deleted"
        in capsys.readouterr().out
    )
    assert client.call("GET", f"/api/chats/{chat_id}", staff["token"]).status_code == 404
    assert client.call("GET", "/api/me", customer["token"]).status_code == 401
    assert main(["purge", "--customer", staff["user"]["id"], "--yes"]) == 1
    assert "Only customers" in capsys.readouterr().err
