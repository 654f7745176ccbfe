"""The basic conversation over WebSocket against a real uvicorn."""

from __future__ import annotations

from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient


async def test_customer_and_supporter_talk(live_server: LiveServer, api: Api, supporter: dict) -> None:
    customer = api.guest("Kim")
    chat = api.new_chat(customer["token"])
    c = await WsClient.connect(live_server.ws_url, customer["token"])
    s = await WsClient.connect(live_server.ws_url, supporter["token"])
    await c.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    await s.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    ack = await c.send_message(chat["id"], "Mein Rad ist kaputt")
    assert ack["seq"] == 1
    got = (await s.expect("message"))["message"]
    assert got["text"] == "Mein Rad ist kaputt" and got["seq"] == 1 and got["sender"]["display_name"] == "Kim"
    await c.close()
    await s.close()
