"""What the system does in a chat on its own: write as the bot, show it typing, hand the chat over."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from backend.chat.hub import QUEUE_CHANNEL, chat_channel
from backend.chat.repository import ChatRepository
from backend.chat.schemas import ChatRead
from backend.chat.views import chat_frame, chat_read
from backend.chat.writer import PendingMessage, Sender, StoredMessage
from backend.core.context import AppContext
from backend.core.pubsub import Event

BOT_SENDER = Sender(
    id=UUID("00000000-0000-4000-8000-000000000b07"), role="bot", display_name="Assistant", username=None
)


async def post_bot_message(
    ctx: AppContext, chat_id: UUID, text: str, sources: list[dict[str, Any]], client_msg_id: str
) -> StoredMessage:
    """Store and deliver a bot message; `client_msg_id` makes a retried turn write it once."""
    content, key_id = ctx.keyring.encrypt(text, chat_id, BOT_SENDER.id)
    return await ctx.writer.submit(
        PendingMessage(
            chat_id=chat_id,
            sender=BOT_SENDER,
            kind="bot",
            text=text,
            content=content,
            key_id=key_id,
            client_msg_id=client_msg_id,
            sources=sources,
        )
    )


async def bot_typing(ctx: AppContext, chat_id: UUID) -> None:
    """Show the customer that the bot is writing."""
    user = {
        "id": str(BOT_SENDER.id),
        "username": None,
        "display_name": BOT_SENDER.display_name,
        "role": "bot",
    }
    frame = json.dumps({"type": "typing", "chat_id": str(chat_id), "user": user}, ensure_ascii=False)
    await ctx.hub.publish(chat_channel(chat_id), Event(frame=frame))


async def bot_delta(ctx: AppContext, chat_id: UUID, reply_to: int, index: int, text: str) -> None:
    """Push a piece of an answer being written (the stored message follows when it is done)."""
    frame = json.dumps(
        {"type": "bot_delta", "chat_id": str(chat_id), "reply_to": reply_to, "index": index, "delta": text},
        ensure_ascii=False,
    )
    await ctx.hub.publish(chat_channel(chat_id), Event(frame=frame))


async def hand_over(ctx: AppContext, chat_id: UUID, reason: str) -> ChatRead | None:
    """Move a bot chat into the supporters' queue with its reason; None when it was not with the bot."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        repo = ChatRepository(conn)
        if not await repo.escalate(chat_id, reason):
            return None
        row = await repo.chat(chat_id)
    assert row is not None
    chat = chat_read(row)
    event = Event(frame=chat_frame(chat), chat_id=str(chat.id))
    await ctx.hub.publish(chat_channel(chat.id), event)
    await ctx.hub.publish(QUEUE_CHANNEL, event)
    return chat
