"""What crosses the wire for chats and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from backend.auth.schemas import DisplayName, GuestSessionRead, UserRead
from backend.core.schemas import InputModel

ChatStatus = Literal["bot", "open", "assigned", "closed"]
MessageKind = Literal["text", "bot", "system"]
ClientMsgId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# The 4000-character limit is checked after trimming and answers 413; the request body cap
# (MAX_REQUEST_BYTES) and the frame cap bound what arrives at all.
MessageText = str

MAX_TEXT_CHARS = 4000


class ChatCreate(InputModel):
    """A new chat: customers send `{}`; supporters name the customer they invite."""

    customer_display_name: DisplayName | None = None


class ChatRead(BaseModel):
    """A chat."""

    id: UUID
    status: ChatStatus
    customer: UserRead
    supporter: UserRead | None
    created_at: datetime
    closed_at: datetime | None
    last_seq: int
    escalation_reason: str | None = None
    escalated_at: datetime | None = None


class InvitedChatRead(BaseModel):
    """A chat a supporter opened for a customer, with the link to send them."""

    chat: ChatRead
    invite_url: str


class InvitationSessionRead(GuestSessionRead):
    """What accepting an invitation gives the customer: a session and their chat."""

    chat: ChatRead


class SourceRead(BaseModel):
    """A knowledge article a bot answer used."""

    title: str
    url: str | None = None


class MessageCreate(InputModel):
    """A message to append."""

    text: MessageText
    client_msg_id: ClientMsgId
    suggestion_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class MessageRead(BaseModel):
    """A stored message."""

    id: int
    seq: int
    chat_id: UUID
    sender: UserRead
    text: str
    created_at: datetime
    client_msg_id: str | None
    kind: MessageKind
    sources: list[SourceRead] | None = None
