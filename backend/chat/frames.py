"""WebSocket frames from clients: a discriminated union on `type`, validated like HTTP bodies."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from backend.chat.schemas import ClientMsgId, MessageText
from backend.core.schemas import InputModel


class AuthFrame(InputModel):
    """Authenticate (first frame), or switch to a fresh token of the same user later."""

    type: Literal["auth"]
    # Bounded by the frame size only: an over-long token is an invalid token (close 4401).
    token: str


class SubscribeFrame(InputModel):
    """Receive a chat's messages after `after`, then its live events."""

    type: Literal["subscribe"]
    chat_id: UUID
    after: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class UnsubscribeFrame(InputModel):
    """Stop receiving a chat's events."""

    type: Literal["unsubscribe"]
    chat_id: UUID


class SubscribeQueueFrame(InputModel):
    """Supporters: receive every chat status change."""

    type: Literal["subscribe_queue"]


class MessageFrame(InputModel):
    """Send a message."""

    type: Literal["message"]
    chat_id: UUID
    client_msg_id: ClientMsgId
    text: MessageText
    suggestion_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class TypingFrame(InputModel):
    """The sender is typing."""

    type: Literal["typing"]
    chat_id: UUID


class PingFrame(InputModel):
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
