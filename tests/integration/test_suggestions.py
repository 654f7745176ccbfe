"""Suggested replies: computed per customer message, pushed to supporters only, stored, robust."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.knowledge.embedder import SentenceTransformerEmbedder
from backend.suggestions.engine import SuggestionEngine
from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient
from tests.knowledge_helpers import fixture_kb_database, wait_for_model, write_kb

SERVER_OVERRIDES: dict[str, Any] = {
    "guest_rate_per_minute": 100_000,
    "http_message_rate": 1000,
    "http_message_burst": 1000,
    "suggestions_enabled": True,
}


@pytest.fixture(scope="module")
def kb_database(
    new_database: Callable[[], str],
    embedder: SentenceTransformerEmbedder,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """A database with the tiny fixture knowledge base (articles and two text modules)."""
    return fixture_kb_database(new_database, tmp_path_factory, embedder)


def engine_of(server: LiveServer) -> SuggestionEngine:
    engine: SuggestionEngine = server.ctx.extras["suggestions"]
    return engine


@pytest.fixture(scope="module")
def kb_server(start_server: Callable[..., LiveServer], kb_database: str) -> Iterator[LiveServer]:
    server = wait_for_model(start_server(database_url=kb_database, **SERVER_OVERRIDES))
    yield server
    server.stop()  # its pool's connections go back before later tests start their servers


@pytest.fixture(scope="module")
def kb_api(kb_server: LiveServer) -> Any:
    client = Api(kb_server.url)
    yield client
    client.http.close()


async def _customer_chat(api: Api, name: str = "Anna Kunde") -> tuple[dict[str, Any], dict[str, Any]]:
    customer = api.guest(name)
    return customer, api.new_chat(customer["token"])


async def _staff_socket(server: LiveServer, api: Api, chat_id: str) -> tuple[WsClient, dict[str, Any]]:
    username, password = server.make_staff(display_name="Sam Support")
    session = api.login(username, password)
    staff = await WsClient.connect(server.ws_url, session["token"])
    await staff.send({"type": "subscribe", "chat_id": chat_id, "after": 0})
    await staff.send({"type": "ping"})
    await staff.expect("pong")
    return staff, session


async def test_suggestions_reach_supporters_only_and_are_stored(kb_server: LiveServer, kb_api: Api) -> None:
    customer, chat = await _customer_chat(kb_api)
    staff, session = await _staff_socket(kb_server, kb_api, chat["id"])
    client = await WsClient.connect(kb_server.ws_url, customer["token"])
    await client.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    ack = await client.send_message(chat["id"], "Hello, how do I get a refund and my money back?")
    frame = await staff.expect("suggestions", timeout=30, message_id=ack["message_id"])
    assert frame["chat_id"] == chat["id"]
    found = frame["suggestions"]
    assert 1 <= len(found) <= 5
    confidences = [s["confidence"] for s in found]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert {s["source"] for s in found} <= {"text_module", "knowledge"}
    refund = [s for s in found if s["source"] == "knowledge" and s["title"] == "Refund policy"]
    assert refund and "More: https://help.example.com/refunds" in refund[0]["text"]
    greeting = [s for s in found if s["source"] == "text_module" and s["title"] == "Greeting"]
    assert greeting and greeting[0]["text"] == "Hello Anna Kunde, how can I help?"
    # The customer never sees them: their socket has only message frames up to a pong.
    await client.send({"type": "ping"})
    await client.expect("pong")
    assert all(f["type"] != "suggestions" for f in client.inbox)

    path = f"/api/chats/{chat['id']}/suggestions"
    latest = kb_api.call("GET", path, session["token"])
    assert latest.status_code == 200 and latest.json() == found
    by_id = kb_api.call("GET", path, session["token"], params={"message_id": ack["message_id"]})
    assert by_id.json() == found
    assert kb_api.call("GET", path, customer["token"]).status_code == 403
    unknown = kb_api.call("GET", f"/api/chats/{uuid.uuid4()}/suggestions", session["token"])
    assert unknown.status_code == 404
    modules = kb_api.call(
        "GET", "/api/text-modules", session["token"], params={"q": "/gr", "chat_id": chat["id"]}
    )
    assert modules.status_code == 200
    assert modules.json()[0] == {
        "shortcut": "greet",
        "title": "Greeting",
        "text": "Hello Anna Kunde, how can I help?",
        "language": None,
    }
    assert kb_api.call("GET", "/api/text-modules", customer["token"]).status_code == 403
    metrics = httpx.get(kb_server.url + "/metrics").text
    assert "suggestion_seconds_count" in metrics and "suggestions_dropped_total" in metrics
    await client.close()
    await staff.close()


async def test_message_from_a_suggestion_records_it_and_whether_it_was_edited(
    kb_server: LiveServer, kb_api: Api
) -> None:
    customer, chat = await _customer_chat(kb_api)
    staff, session = await _staff_socket(kb_server, kb_api, chat["id"])
    kb_api.call("POST", f"/api/chats/{chat['id']}/assign", session["token"])
    client = await WsClient.connect(kb_server.ws_url, customer["token"])
    ack = await client.send_message(chat["id"], "What is your refund policy for money back?")
    frame = await staff.expect("suggestions", timeout=30, message_id=ack["message_id"])
    first = frame["suggestions"][0]
    sent = []
    for text in (first["text"], first["text"] + " Anything else?"):
        client_msg_id = uuid.uuid4().hex
        await staff.send(
            {
                "type": "message",
                "chat_id": chat["id"],
                "client_msg_id": client_msg_id,
                "text": text,
                "suggestion_id": first["id"],
            }
        )
        sent.append((await staff.expect("ack", client_msg_id=client_msg_id))["message_id"])

    async def read() -> list[Any]:
        async with kb_server.ctx.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT id, suggestion_id, suggestion_edited FROM messages"
                " WHERE id = ANY($1::bigint[]) ORDER BY id",
                sent,
            )

    rows = kb_server.run(read())
    assert [(r["suggestion_id"], r["suggestion_edited"]) for r in rows] == [
        (first["id"], False),
        (first["id"], True),
    ]
    admin = kb_api.login(*kb_server.make_staff(role="admin"))
    stats = kb_api.call("GET", "/api/admin/suggestions/stats", admin["token"])
    assert stats.status_code == 200
    used = {row["source"]: row for row in stats.json()}[first["source"]]
    assert used["accepted"] >= 1 and used["accepted_edited"] == 0  # the edited send reused an accepted one
    assert used["shown"] == used["accepted"] + used["accepted_edited"] + used["ignored"]
    assert kb_api.call("GET", "/api/admin/suggestions/stats", session["token"]).status_code == 403
    await client.close()
    await staff.close()


async def test_hostile_inputs_do_not_stop_the_worker(kb_server: LiveServer, kb_api: Api) -> None:
    customer, chat = await _customer_chat(kb_api)
    staff, _ = await _staff_socket(kb_server, kb_api, chat["id"])
    client = await WsClient.connect(kb_server.ws_url, customer["token"])
    hostile = [
        "😀🙈🔥",
        "x" * 4000,
        "退款政策是什么？我想退货",
        "مرحبا كيف يمكنني استرداد أموالي",
        "refund ' OR 1=1; -- & | ! :* <script>",
        "((( ))) ||| &&& !!! :::",
        "\u200b\u200b\u200b",
        ("refund " * 600)[:4000],
    ]
    for text in hostile:
        ack = await client.send_message(chat["id"], text)
        frame = await staff.expect("suggestions", timeout=30, message_id=ack["message_id"])
        assert all(0.0 <= s["confidence"] <= 1.0 for s in frame["suggestions"])
    ack = await client.send_message(chat["id"], "How do I get a refund?")
    frame = await staff.expect("suggestions", timeout=30, message_id=ack["message_id"])
    assert any(s["title"] == "Refund policy" for s in frame["suggestions"])
    await client.close()
    await staff.close()


async def _call(action: Callable[[], None]) -> None:
    """Run on the server's loop (its asyncio events are not thread-safe)."""
    action()


def _dropped(server: LiveServer) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith("suggestions_dropped_total "):
            return float(line.split()[1])
    raise AssertionError("no suggestions_dropped_total")


async def test_overload_drops_stale_work_and_keeps_the_newest(
    start_server: Callable[..., LiveServer], kb_database: str
) -> None:
    server = start_server(database_url=kb_database, suggestion_queue=2, **SERVER_OVERRIDES)
    api = Api(server.url)
    try:
        chats = [await _customer_chat(api, f"Kunde {i}") for i in range(3)]
        staff, _ = await _staff_socket(server, api, chats[0][1]["id"])
        sockets = [await WsClient.connect(server.ws_url, c["token"]) for c, _ in chats]
        engine = engine_of(server)
        server.run(_call(engine.pause))
        before = _dropped(server)
        # Two other chats fill the queue; the first chat's message pushes out the oldest job,
        # and its second message replaces its first.
        for sock, (_, chat) in zip(sockets[1:], chats[1:], strict=True):
            await sock.send_message(chat["id"], "hello, where is my delivery?")
        first = await sockets[0].send_message(chats[0][1]["id"], "hello there, first")
        newest = await sockets[0].send_message(chats[0][1]["id"], "hello again, I need a refund")
        deadline = time.monotonic() + 10
        while _dropped(server) < before + 2:
            assert time.monotonic() < deadline, "stale jobs were not dropped"
            await asyncio.sleep(0.05)
        assert engine.queued <= 2
        server.run(_call(engine.resume))
        frame = await staff.expect("suggestions", timeout=30)
        # The chat's older message was replaced in the queue: only the newest gets suggestions.
        assert frame["message_id"] == newest["message_id"] != first["message_id"]
        assert frame["suggestions"]
        for sock in sockets:
            await sock.close()
        await staff.close()
    finally:
        api.http.close()
        server.stop()


async def test_empty_knowledge_base_gives_no_suggestions_and_no_error(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = wait_for_model(start_server(**SERVER_OVERRIDES))
    api = Api(server.url)
    try:
        customer, chat = await _customer_chat(api)
        staff, session = await _staff_socket(server, api, chat["id"])
        client = await WsClient.connect(server.ws_url, customer["token"])
        ack = await client.send_message(chat["id"], "How do I get a refund?")
        frame = await staff.expect("suggestions", timeout=30, message_id=ack["message_id"])
        assert frame["suggestions"] == []
        response = api.call("GET", f"/api/chats/{chat['id']}/suggestions", session["token"])
        assert response.status_code == 200 and response.json() == []
        await client.close()
        await staff.close()
    finally:
        api.http.close()
        server.stop()


async def test_an_empty_database_gets_the_demo_knowledge_base_in_the_background(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    folder = write_kb(tmp_path / "demo", with_pdf=False)
    server = start_server(demo_knowledge_dir=str(folder), **SERVER_OVERRIDES)

    async def counts() -> tuple[int, int]:
        async with server.ctx.pool.acquire() as conn:
            documents = await conn.fetchval("SELECT count(*) FROM knowledge_documents")
            modules = await conn.fetchval("SELECT count(*) FROM text_modules")
            return int(documents), int(modules)

    try:
        deadline = time.monotonic() + 120
        while server.run(counts()) != (4, 2):
            assert time.monotonic() < deadline, server.run(counts())
            await asyncio.sleep(0.2)
    finally:
        server.stop()
