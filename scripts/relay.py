"""A bare WebSocket relay without a database: the baseline for `scripts/bench.py`.

It speaks the chat's frames (see the contract's WebSocket section) with none of its work:

- `{"type": "auth", "token"}` -> `{"type": "ready", "user"}` for any token;
- `{"type": "subscribe", "chat_id", "after"}` -> the socket joins the chat's room (nothing is stored,
  so there is no history to replay);
- `{"type": "message", "chat_id", "client_msg_id", "text"}` -> `{"type": "ack", ...}` with a per-chat
  counter as `seq`, then `{"type": "message", "message": {...}}` to every socket in the room (the
  sender too when it subscribed).

Whatever the chat server costs beyond this is the price of durability, checks and features.

    python scripts/relay.py --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import uuid
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

rooms: dict[str, set[ServerConnection]] = {}
seqs: dict[str, int] = {}
message_ids = itertools.count(1)


def error(code: str, detail: str, client_msg_id: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_msg_id is not None:
        frame["client_msg_id"] = client_msg_id
    return json.dumps(frame)


async def handle(ws: ServerConnection) -> None:
    user: dict[str, Any] | None = None
    joined: set[str] = set()
    try:
        async for raw in ws:
            try:
                frame = json.loads(raw)
                kind = frame["type"]
            except (ValueError, KeyError, TypeError):
                await ws.send(error("bad_frame", "not a JSON object with a type"))
                continue
            if user is None:
                if kind != "auth" or not isinstance(frame.get("token"), str):
                    await ws.close(4401, "authenticate first")
                    return
                user = {"id": str(uuid.uuid4()), "display_name": "relay user", "role": "user"}
                await ws.send(json.dumps({"type": "ready", "user": user}))
            elif kind == "subscribe":
                chat_id = str(frame.get("chat_id"))
                rooms.setdefault(chat_id, set()).add(ws)
                joined.add(chat_id)
            elif kind == "message":
                chat_id = str(frame.get("chat_id"))
                client_msg_id = frame.get("client_msg_id")
                seq = seqs.get(chat_id, 0) + 1
                seqs[chat_id] = seq
                message_id = next(message_ids)
                await ws.send(
                    json.dumps(
                        {"type": "ack", "client_msg_id": client_msg_id, "message_id": message_id, "seq": seq}
                    )
                )
                event = {
                    "type": "message",
                    "message": {
                        "id": message_id,
                        "seq": seq,
                        "chat_id": chat_id,
                        "sender": user,
                        "text": frame.get("text"),
                        "created_at": datetime.now(UTC).isoformat(),
                        "client_msg_id": client_msg_id,
                        "kind": "text",
                    },
                }
                broadcast(rooms.get(chat_id, ()), json.dumps(event))
            elif kind == "typing":
                event = {"type": "typing", "chat_id": frame.get("chat_id"), "user": user}
                broadcast(rooms.get(str(frame.get("chat_id")), set()) - {ws}, json.dumps(event))
            else:
                await ws.send(error("unknown_type", f"unknown frame type {kind!r}"))
    except ConnectionClosed:
        pass
    finally:
        for chat_id in joined:
            room = rooms.get(chat_id)
            if room is not None:
                room.discard(ws)
                if not room:
                    del rooms[chat_id]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    # Like uvicorn's defaults: permessage-deflate offered, server pings every 20 s.
    async with serve(handle, args.host, args.port, max_size=1 << 20):
        print(f"relay listening on ws://{args.host}:{args.port}/ws", flush=True)
        await stop


if __name__ == "__main__":
    try:
        import uvloop  # the chat server runs on uvloop (uvicorn[standard]); so does its baseline
    except ImportError:
        asyncio.run(main())
    else:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(main())
