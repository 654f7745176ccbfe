"""WebSocket behaviour against a real uvicorn: handshake, close codes, frames and fan-out."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from backend.auth.repository import AuthRepository
from backend.auth.tokens import TokenCodec
from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient


async def _open_chat(
    api: Api, live_server: LiveServer, name: str = "Kim"
) -> tuple[dict[str, Any], dict[str, Any]]:
    customer = api.guest(name)
    return customer, api.new_chat(customer["token"])


async def test_auth_frame_must_come_within_the_timeout(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(ws_auth_timeout_seconds=0.5)
    client = await WsClient.connect(server.ws_url)
    started = time.monotonic()
    assert await client.closed_with(timeout=5) == 4408
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "first_frame",
    [
        {"type": "auth", "token": "not-a-jwt"},
        {"type": "auth", "token": ""},
        {"type": "subscribe_queue"},
        "this is not json",
    ],
)
async def test_bad_first_frame_closes_with_4401(live_server: LiveServer, first_frame: Any) -> None:
    client = await WsClient.connect(live_server.ws_url)
    await client.send(first_frame)
    assert await client.closed_with() == 4401


async def test_logged_out_token_is_refused_and_open_sockets_close(live_server: LiveServer, api: Api) -> None:
    customer = api.guest()
    client = await WsClient.connect(live_server.ws_url, customer["token"])
    other_session = api.call(
        "POST", "/api/auth/guest/resume", json={"resume_token": customer["resume_token"]}
    ).json()
    other = await WsClient.connect(live_server.ws_url, other_session["token"])
    started = time.monotonic()
    assert api.call("POST", "/api/auth/logout", customer["token"]).status_code == 204
    assert await client.closed_with(timeout=3) == 4401
    assert time.monotonic() - started < 1.5
    # The same user's other session is untouched.
    await other.send({"type": "ping"})
    assert (await other.expect("pong"))["type"] == "pong"
    late = await WsClient.connect(live_server.ws_url)
    await late.send({"type": "auth", "token": customer["token"]})
    assert await late.closed_with() == 4401
    await other.close()


async def test_socket_closes_when_its_token_expires(live_server: LiveServer, api: Api) -> None:
    customer = api.guest()
    user_id = uuid.UUID(customer["user"]["id"])
    short = TokenCodec(live_server.ctx.tokens._secret, ttl_seconds=2)
    token, claims = short.issue(user_id, "user")

    async def record() -> None:
        async with live_server.ctx.pool.acquire() as conn:
            await AuthRepository(conn).record_token(claims.jti, user_id, claims.expires_at)

    live_server.run(record())
    client = await WsClient.connect(live_server.ws_url, token)
    assert await client.closed_with(timeout=6) == 4401


async def test_refreshed_token_keeps_the_socket_open(live_server: LiveServer, api: Api) -> None:
    customer = api.guest()
    client = await WsClient.connect(live_server.ws_url, customer["token"])
    fresh = api.call("POST", "/api/auth/refresh", customer["token"]).json()
    await client.send({"type": "auth", "token": fresh["token"]})
    assert (await client.expect("ready"))["user"]["id"] == customer["user"]["id"]
    stranger = api.guest("Stranger")
    await client.send({"type": "auth", "token": stranger["token"]})
    assert await client.closed_with() == 4401


async def test_foreign_origin_is_refused_before_the_handshake(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(allowed_origins="https://partner.example")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, origin="https://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    ok = await websockets.connect(server.ws_url, origin="https://partner.example")  # type: ignore[arg-type]
    await ok.close()
    same = await websockets.connect(server.ws_url, origin=server.url)  # type: ignore[arg-type]
    await same.close()


async def test_frame_over_64_kib_closes_with_1009(live_server: LiveServer, api: Api) -> None:
    customer, chat = await _open_chat(api, live_server)
    client = await WsClient.connect(live_server.ws_url, customer["token"])
    await client.send({"type": "message", "chat_id": chat["id"], "client_msg_id": "x", "text": "a" * 70_000})
    assert await client.closed_with() == 1009


async def test_flood_closes_with_4429(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(ws_frame_rate=5, ws_frame_burst=10)
    api = Api(server.url)
    customer = api.guest()
    client = await WsClient.connect(server.ws_url, customer["token"])
    for _ in range(30):
        try:
            await client.send({"type": "ping"})
        except websockets.ConnectionClosed:
            break
    assert await client.closed_with() == 4429


async def test_bad_frames_get_errors_and_the_socket_stays_open(live_server: LiveServer, api: Api) -> None:
    customer, chat = await _open_chat(api, live_server)
    stranger, strangers_chat = await _open_chat(api, live_server, "Stranger")
    client = await WsClient.connect(live_server.ws_url, customer["token"])
    cases: list[tuple[Any, str]] = [
        ("{not json", "invalid_json"),
        ({"type": "launch_rockets"}, "bad_frame"),
        ({"type": "message", "chat_id": chat["id"]}, "bad_frame"),
        ({"type": "subscribe", "chat_id": "not-a-uuid"}, "bad_frame"),
        ({"type": "subscribe", "chat_id": chat["id"], "after": -1}, "bad_frame"),
        ({"type": "subscribe", "chat_id": str(uuid.uuid4())}, "not_found"),
        ({"type": "subscribe", "chat_id": strangers_chat["id"]}, "not_found"),
        ({"type": "typing", "chat_id": strangers_chat["id"]}, "not_found"),
        (
            {"type": "message", "chat_id": chat["id"], "client_msg_id": "e1", "text": "   "},
            "validation_error",
        ),
        ({"type": "message", "chat_id": chat["id"], "client_msg_id": "e2", "text": "b" * 4001}, "too_large"),
        (
            {"type": "message", "chat_id": strangers_chat["id"], "client_msg_id": "e3", "text": "hi"},
            "not_found",
        ),
        ([1, 2, 3], "bad_frame"),
    ]
    for frame, code in cases:
        await client.send(frame if isinstance(frame, str) else json.dumps(frame))
        error = await client.expect("error")
        assert error["code"] == code, (frame, error)
        assert error["detail"]
    ack = await client.send_message(chat["id"], "still here")
    assert ack["seq"] == 1
    messages = api.call("GET", f"/api/chats/{strangers_chat['id']}/messages", stranger["token"]).json()
    assert messages == []


async def test_error_for_a_message_names_its_client_msg_id(
    live_server: LiveServer, api: Api, supporter: dict
) -> None:
    customer, chat = await _open_chat(api, live_server)
    api.call("POST", f"/api/chats/{chat['id']}/close", supporter["token"])
    client = await WsClient.connect(live_server.ws_url, customer["token"])
    await client.send({"type": "message", "chat_id": chat["id"], "client_msg_id": "late-1", "text": "hello?"})
    error = await client.expect("error")
    assert error == {
        "type": "error",
        "code": "chat_closed",
        "detail": error["detail"],
        "client_msg_id": "late-1",
    }


async def test_customer_cannot_watch_the_queue(live_server: LiveServer, api: Api) -> None:
    client = await WsClient.connect(live_server.ws_url, api.guest()["token"])
    await client.send({"type": "subscribe_queue"})
    assert await client.closed_with() == 4403


async def test_queue_shows_every_status_change_live(
    live_server: LiveServer, api: Api, supporter: dict
) -> None:
    watcher = await WsClient.connect(live_server.ws_url, supporter["token"])
    await watcher.send({"type": "subscribe_queue"})
    await watcher.send({"type": "ping"})
    await watcher.expect("pong")
    _, chat = await _open_chat(api, live_server)
    seen = await watcher.expect("chat")
    assert seen["chat"]["id"] == chat["id"] and seen["chat"]["status"] == "open"
    api.call("POST", f"/api/chats/{chat['id']}/assign", supporter["token"])
    seen = await watcher.expect("chat")
    assert seen["chat"]["status"] == "assigned"
    assert seen["chat"]["supporter"]["id"] == supporter["user"]["id"]
    api.call("POST", f"/api/chats/{chat['id']}/close", supporter["token"])
    seen = await watcher.expect("chat")
    assert seen["chat"]["status"] == "closed" and seen["chat"]["closed_at"]
    await watcher.close()


async def test_customer_sees_take_over_and_end_on_the_chat_channel(
    live_server: LiveServer, api: Api, supporter: dict
) -> None:
    customer, chat = await _open_chat(api, live_server)
    client = await WsClient.connect(live_server.ws_url, customer["token"])
    await client.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    await client.send({"type": "ping"})
    await client.expect("pong")
    api.call("POST", f"/api/chats/{chat['id']}/assign", supporter["token"])
    assert (await client.expect("chat"))["chat"]["status"] == "assigned"
    api.call("POST", f"/api/chats/{chat['id']}/close", supporter["token"])
    assert (await client.expect("chat"))["chat"]["status"] == "closed"


async def test_typing_reaches_the_others_but_not_the_typist(
    live_server: LiveServer, api: Api, supporter: dict
) -> None:
    customer, chat = await _open_chat(api, live_server)
    c = await WsClient.connect(live_server.ws_url, customer["token"])
    s = await WsClient.connect(live_server.ws_url, supporter["token"])
    for client in (c, s):
        await client.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    await s.send({"type": "ping"})
    await s.expect("pong")
    await c.send({"type": "typing", "chat_id": chat["id"]})
    typing = await s.expect("typing")
    assert typing["chat_id"] == chat["id"] and typing["user"]["display_name"] == "Kim"
    await c.send({"type": "ping"})
    await c.expect("pong")
    assert not [f for f in c.inbox if f["type"] == "typing"]


async def test_resend_is_acked_again_and_delivered_once(
    live_server: LiveServer, api: Api, supporter: dict
) -> None:
    customer, chat = await _open_chat(api, live_server)
    c = await WsClient.connect(live_server.ws_url, customer["token"])
    s = await WsClient.connect(live_server.ws_url, supporter["token"])
    await s.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    first = await c.send_message(chat["id"], "Hallo", client_msg_id="m-1")
    again = await c.send_message(chat["id"], "Hallo", client_msg_id="m-1")
    assert (again["message_id"], again["seq"]) == (first["message_id"], first["seq"])
    # Two copies in one batch are stored once as well.
    await c.send({"type": "message", "chat_id": chat["id"], "client_msg_id": "m-2", "text": "zwei"})
    await c.send({"type": "message", "chat_id": chat["id"], "client_msg_id": "m-2", "text": "zwei"})
    acks = [await c.expect("ack", client_msg_id="m-2") for _ in range(2)]
    assert acks[0]["seq"] == acks[1]["seq"] == 2
    delivered = await s.messages(2)
    assert [m["seq"] for m in delivered] == [1, 2]
    await s.send({"type": "ping"})
    await s.expect("pong")
    assert not [f for f in s.inbox if f["type"] == "message"]
    stored = api.call("GET", f"/api/chats/{chat['id']}/messages", customer["token"]).json()
    assert [m["client_msg_id"] for m in stored] == ["m-1", "m-2"]


async def test_subscribe_after_replays_then_goes_live_without_gap_or_double(
    live_server: LiveServer, api: Api, supporter: dict
) -> None:
    customer, chat = await _open_chat(api, live_server)
    writer = await WsClient.connect(live_server.ws_url, customer["token"])
    for i in range(1, 31):
        await writer.send(
            {"type": "message", "chat_id": chat["id"], "client_msg_id": f"p{i}", "text": f"m{i}"}
        )
    reader = await WsClient.connect(live_server.ws_url, supporter["token"])
    # Subscribe while messages are still being written: backlog and live stream race.
    await reader.send({"type": "subscribe", "chat_id": chat["id"], "after": 5})
    for i in range(31, 61):
        await writer.send(
            {"type": "message", "chat_id": chat["id"], "client_msg_id": f"p{i}", "text": f"m{i}"}
        )
    got = await reader.messages(55, timeout=10)
    assert [m["seq"] for m in got] == list(range(6, 61))
    assert [m["text"] for m in got] == [f"m{i}" for i in range(6, 61)]
    await reader.send({"type": "ping"})
    await reader.expect("pong")
    assert not [f for f in reader.inbox if f["type"] == "message"]


async def test_concurrent_writers_get_gapless_seq(live_server: LiveServer, api: Api, supporter: dict) -> None:
    customer, chat = await _open_chat(api, live_server)
    api.call("POST", f"/api/chats/{chat['id']}/assign", supporter["token"])
    clients = [
        await WsClient.connect(live_server.ws_url, tok) for tok in [customer["token"], supporter["token"]] * 3
    ]

    async def burst(index: int, client: WsClient) -> list[int]:
        seqs = []
        for n in range(20):
            ack = await client.send_message(chat["id"], f"w{index}-{n}", client_msg_id=f"w{index}-{n}")
            seqs.append(ack["seq"])
        return seqs

    results = await asyncio.gather(*(burst(i, c) for i, c in enumerate(clients)))
    all_seqs = sorted(seq for seqs in results for seq in seqs)
    assert all_seqs == list(range(1, 121))
    for seqs in results:
        assert seqs == sorted(seqs)  # one writer's messages keep their order
    stored = api.call("GET", f"/api/chats/{chat['id']}/messages?limit=200", customer["token"]).json()
    assert [m["seq"] for m in stored] == list(range(1, 121))
    assert api.call("GET", f"/api/chats/{chat['id']}", customer["token"]).json()["last_seq"] == 120


def _raw_ws_client(port: int, frames: list[dict[str, Any]]) -> socket.socket:
    """A WebSocket client that sends a few frames and then never reads (tiny receive buffer)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    for frame in frames:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header = (
            bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
            if len(payload) > 125
            else bytes([0x81, 0x80 | len(payload)])
        )
        raw.sendall(header + mask + masked)
    return raw


async def test_slow_reader_is_dropped_without_slowing_the_others(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(ws_send_queue=600, ws_frame_rate=10_000, ws_frame_burst=10_000)
    api = Api(server.url)
    username, password = server.make_staff()
    staff = api.login(username, password)
    customer = api.guest()
    chat = api.new_chat(customer["token"])
    slow = _raw_ws_client(
        server.port,
        [{"type": "auth", "token": staff["token"]}, {"type": "subscribe", "chat_id": chat["id"], "after": 0}],
    )
    fast = await WsClient.connect(server.ws_url, staff["token"])
    await fast.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    writer = await WsClient.connect(server.ws_url, customer["token"])
    text = "x" * 3900
    count = 3000

    async def write_all() -> None:
        for i in range(count):
            frame = {"type": "message", "chat_id": chat["id"], "client_msg_id": f"s{i}", "text": text}
            await writer.send(frame)
            if i % 50 == 49 or i == count - 1:
                await writer.expect("ack", timeout=30, client_msg_id=f"s{i}")

    got, _ = await asyncio.gather(fast.messages(count, timeout=30), write_all())
    assert [m["seq"] for m in got] == list(range(1, count + 1))
    # The reader that stopped reading was dropped (1013) instead of holding everyone up.
    metrics = httpx.get(server.url + "/metrics").text
    assert "ws_slow_consumers_total 1.0" in metrics
    assert 'ws_closed_total{code="1013"} 1.0' in metrics
    slow.close()
