"""Two app nodes on one database, fanning out through Redis (skipped when no Redis answers)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable

import pytest

from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")


@pytest.fixture(scope="module")
def two_nodes(start_server: Callable[..., LiveServer]) -> tuple[LiveServer, LiveServer]:
    first = start_server(redis_url=REDIS_URL)
    shared = {
        "database_url": first.settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "data_dir": first.settings.data_dir,
        "redis_url": REDIS_URL,
    }
    second = start_server(**shared)
    return first, second


async def test_a_conversation_spans_two_nodes(two_nodes: tuple[LiveServer, LiveServer]) -> None:
    node_a, node_b = two_nodes
    api_a, api_b = Api(node_a.url), Api(node_b.url)
    username, password = node_a.make_staff()
    supporter = api_b.login(username, password)
    customer = api_a.guest("Zwei Knoten")
    queue = await WsClient.connect(node_b.ws_url, supporter["token"])
    await queue.send({"type": "subscribe_queue"})
    await queue.send({"type": "ping"})
    await queue.expect("pong")
    chat = api_a.new_chat(customer["token"])
    assert (await queue.expect("chat"))["chat"]["id"] == chat["id"]
    on_a = await WsClient.connect(node_a.ws_url, customer["token"])
    on_b = await WsClient.connect(node_b.ws_url, supporter["token"])
    await on_a.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    await on_b.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    assert api_b.call("POST", f"/api/chats/{chat['id']}/assign", supporter["token"]).status_code == 200
    assert (await on_a.expect("chat"))["chat"]["status"] == "assigned"
    for i in range(20):
        sender = on_a if i % 2 == 0 else on_b
        await sender.send_message(chat["id"], f"hop {i}", client_msg_id=uuid.uuid4().hex)
    for client in (on_a, on_b):
        got = await client.messages(20)
        assert [m["seq"] for m in got] == list(range(1, 21))
        assert [m["text"] for m in got] == [f"hop {i}" for i in range(20)]
    await on_b.send({"type": "typing", "chat_id": chat["id"]})
    assert (await on_a.expect("typing"))["user"]["id"] == supporter["user"]["id"]


async def test_logout_on_one_node_closes_the_socket_on_the_other(
    two_nodes: tuple[LiveServer, LiveServer],
) -> None:
    node_a, node_b = two_nodes
    customer = Api(node_a.url).guest()
    client = await WsClient.connect(node_b.ws_url, customer["token"])
    assert Api(node_a.url).call("POST", "/api/auth/logout", customer["token"]).status_code == 204
    assert await client.closed_with(timeout=3) == 4401
