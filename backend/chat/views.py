"""How chats and messages look on the wire: rows and committed messages to schemas and frames."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg

from backend.auth.schemas import UserRead
from backend.chat.schemas import ChatRead, MessageRead, SourceRead
from backend.chat.writer import Sender, StoredMessage
from backend.core.crypto import DecryptionError, KeyRing
from backend.core.timefmt import local, local_or_none

log = logging.getLogger(__name__)

UNREADABLE_TEXT = "[This message cannot be decrypted with the configured keys.]"


def _person(row: asyncpg.Record, prefix: str) -> UserRead | None:
    if row[f"{prefix}_id"] is None:
        return None
    return UserRead(
        id=row[f"{prefix}_id"],
        username=row[f"{prefix}_username"],
        display_name=row[f"{prefix}_display_name"],
        role=row[f"{prefix}_role"],
    )


def chat_read(row: asyncpg.Record) -> ChatRead:
    """A chat row (with its people) as the API shows it."""
    customer = _person(row, "c")
    assert customer is not None
    return ChatRead(
        id=row["id"],
        status=row["status"],
        customer=customer,
        supporter=_person(row, "s"),
        created_at=local(row["created_at"]),
        closed_at=local_or_none(row["closed_at"]),
        last_seq=row["last_seq"],
        escalation_reason=row["escalation_reason"],
        escalated_at=local_or_none(row["escalated_at"]),
    )


def _sender_read(sender: Sender) -> UserRead:
    return UserRead(
        id=sender.id, username=sender.username, display_name=sender.display_name, role=sender.role
    )


def _sources(raw: Any) -> list[SourceRead] | None:
    if raw is None:
        return None
    return [SourceRead(**item) for item in raw]


def message_from_row(keyring: KeyRing, row: asyncpg.Record) -> MessageRead:
    """Decrypt a stored message row (with its sender)."""
    try:
        text = keyring.decrypt(row["content"], row["key_id"], row["chat_id"], row["u_id"])
    except DecryptionError:
        log.error("message %s does not decrypt with key %s", row["id"], row["key_id"])
        text = UNREADABLE_TEXT
    sender = _person(row, "u")
    assert sender is not None
    return MessageRead(
        id=row["id"],
        seq=row["seq"],
        chat_id=row["chat_id"],
        sender=sender,
        text=text,
        created_at=local(row["created_at"]),
        client_msg_id=row["client_msg_id"],
        kind=row["kind"],
        sources=_sources(row["sources"]),
    )


def message_from_stored(stored: StoredMessage) -> MessageRead:
    """A just-committed message as the API shows it."""
    pending = stored.pending
    return MessageRead(
        id=stored.id,
        seq=stored.seq,
        chat_id=stored.chat_id,
        sender=_sender_read(pending.sender),
        text=pending.text,
        created_at=local(stored.created_at),
        client_msg_id=pending.client_msg_id,
        kind=pending.kind,
        sources=_sources(pending.sources),
    )


def message_frame(message: MessageRead) -> str:
    """The `message` event as sent on sockets."""
    return json.dumps({"type": "message", "message": message.model_dump(mode="json")}, ensure_ascii=False)


def chat_frame(chat: ChatRead) -> str:
    """The `chat` event as sent on sockets."""
    return json.dumps({"type": "chat", "chat": chat.model_dump(mode="json")}, ensure_ascii=False)
