"""WebSocket frames from clients: a discriminated union on `type`, validated like HTTP bodies."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from backend.chat.schemas import ClientMsgId, MessageText


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthFrame(_Frame):
    """Authenticate (first frame), or switch to a fresh token of the same user later."""

    type: Literal["auth"]
    token: Annotated[str, Field(max_length=4096)]


class SubscribeFrame(_Frame):
    """Receive a chat's messages after `after`, then its live events."""

    type: Literal["subscribe"]
    chat_id: UUID
    after: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class UnsubscribeFrame(_Frame):
    """Stop receiving a chat's events."""

    type: Literal["unsubscribe"]
    chat_id: UUID


class SubscribeQueueFrame(_Frame):
    """Supporters: receive every chat status change."""

    type: Literal["subscribe_queue"]


class MessageFrame(_Frame):
    """Send a message."""

    type: Literal["message"]
    chat_id: UUID
    client_msg_id: ClientMsgId
    text: MessageText
    suggestion_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class TypingFrame(_Frame):
    """The sender is typing."""

    type: Literal["typing"]
    chat_id: UUID


class PingFrame(_Frame):
    """Keep-alive; answered with `pong`."""

    type: Literal["ping"]


ClientFrame = Annotated[
    AuthFrame
    | SubscribeFrame
    | UnsubscribeFrame
    | SubscribeQueueFrame
    | MessageFrame
    | TypingFrame
    | PingFrame,
    Field(discriminator="type"),
]
client_frame = TypeAdapter(ClientFrame)
