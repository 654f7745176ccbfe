"""What the bot does in a chat besides the rules of the chat service: write, show it is typing, stream."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from backend.auth.schemas import UserRead
from backend.chat import service as chat_service
from backend.chat.hub import chat_channel
from backend.chat.writer import Sender, StoredMessage
from backend.core.context import AppContext
from backend.core.pubsub import Event

# The bot's user (created by migration 0009 with this id on every installation).
BOT_USER_ID = UUID("00000000-0000-4000-8000-000000000b07")
BOT_SENDER = Sender(id=BOT_USER_ID, role="bot", display_name="Assistant", username=None)


async def post_bot_message(
    ctx: AppContext, chat_id: UUID, text: str, sources: list[dict[str, Any]], client_msg_id: str
) -> StoredMessage:
    """Store and deliver a bot message; `client_msg_id` makes a retried turn write it once."""
    return await chat_service.queue_message(
        ctx, BOT_SENDER, chat_id, text, client_msg_id, kind="bot", sources=sources
    )


async def bot_typing(ctx: AppContext, chat_id: UUID) -> None:
    """Show the customer that the bot is writing."""
    user = UserRead(id=BOT_USER_ID, username=None, display_name=BOT_SENDER.display_name, role="bot")
    frame = json.dumps(
        {"type": "typing", "chat_id": str(chat_id), "user": user.model_dump(mode="json")}, ensure_ascii=False
    )
    await ctx.hub.publish(chat_channel(chat_id), Event(frame=frame))


async def bot_delta(ctx: AppContext, chat_id: UUID, reply_to: int, index: int, text: str) -> None:
    """Push a piece of an answer being written (the stored message follows when it is done)."""
    frame = json.dumps(
        {"type": "bot_delta", "chat_id": str(chat_id), "reply_to": reply_to, "index": index, "delta": text},
        ensure_ascii=False,
    )
    await ctx.hub.publish(chat_channel(chat_id), Event(frame=frame))
