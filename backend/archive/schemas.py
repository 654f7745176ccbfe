"""What crosses the wire for archived chats and purges."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from backend.chat.schemas import ChatRead, MessageRead


class ArchivedChatSummaryRead(BaseModel):
    """An archived chat without its messages."""

    chat: ChatRead
    archived_at: datetime


class ArchivedChatRead(ArchivedChatSummaryRead):
    """An archived chat with every message, decrypted, in seq order."""

    messages: list[MessageRead]


class PurgeRead(BaseModel):
    """What a purge removed."""

    chats_deleted: int
    archived_chats_deleted: int
    messages_deleted: int
    user_deleted: bool
