"""Chat rules: who may see and write what, status transitions, and the events they cause."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from uuid import UUID

import asyncpg

from backend.auth import invitations
from backend.auth import service as auth_service
from backend.auth.service import CurrentUser
from backend.chat.hub import QUEUE_CHANNEL, chat_channel
from backend.chat.repository import ChatRepository
from backend.chat.schemas import (
    MAX_TEXT_CHARS,
    ChatCreate,
    ChatRead,
    InvitationSessionRead,
    InvitedChatRead,
    MessageRead,
)
from backend.chat.views import chat_frame, chat_read, message_frame, message_from_row, message_from_stored
from backend.chat.writer import PendingMessage, Sender, StoredMessage
from backend.core import audit
from backend.core.context import AppContext
from backend.core.errors import (
    AlreadyAssigned,
    ChatClosed,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
)
from backend.core.pubsub import Event

log = logging.getLogger(__name__)


async def publish_committed(ctx: AppContext, stored: list[StoredMessage]) -> None:
    """Fan committed messages out to their chats' subscribers, in commit order."""
    for item in stored:
        ctx.metrics.messages.labels(item.pending.kind).inc()
        frame = message_frame(message_from_stored(item))
        await ctx.hub.publish(
            chat_channel(item.chat_id), Event(frame=frame, chat_id=str(item.chat_id), seq=item.seq)
        )


async def _publish_chat(ctx: AppContext, chat: ChatRead) -> None:
    event = Event(frame=chat_frame(chat), chat_id=str(chat.id))
    await ctx.hub.publish(chat_channel(chat.id), event)
    await ctx.hub.publish(QUEUE_CHANNEL, event)


async def _load_chat(conn: asyncpg.Connection, chat_id: UUID) -> ChatRead:
    row = await ChatRepository(conn).chat(chat_id)
    if row is None:
        raise NotFound("No such chat.")
    return chat_read(row)


async def _visible_chat(conn: asyncpg.Connection, user: CurrentUser, chat_id: UUID) -> asyncpg.Record:
    """The chat's access fields, or NotFound when it does not exist or is not the caller's."""
    row = await ChatRepository(conn).chat_access(chat_id)
    if row is None or (not user.is_staff and row["customer_id"] != user.id):
        raise NotFound("No such chat.")
    return row


async def create_chat(
    ctx: AppContext, user: CurrentUser, body: ChatCreate, base_url: str
) -> ChatRead | InvitedChatRead:
    """A customer opens a chat (the bot answers first, if on); a supporter opens one by invitation."""
    if not user.is_staff:
        if body.customer_display_name is not None:
            raise Invalid("customer_display_name: only supporters open chats for someone else")
        async with ctx.pool.acquire() as conn:
            status = "bot" if ctx.settings.bot_enabled else "open"
            chat_id = await ChatRepository(conn).insert_chat(user.id, status)
            chat = await _load_chat(conn, chat_id)
        await _publish_chat(ctx, chat)
        return chat
    if body.customer_display_name is None:
        raise Invalid("customer_display_name: required when a supporter opens a chat")
    async with ctx.pool.acquire() as conn, conn.transaction():
        customer = await auth_service.create_invited_guest(conn, body.customer_display_name)
        # The supporter who invites the customer holds the chat from the start.
        chat_id = await ChatRepository(conn).insert_chat(customer.id, "assigned", supporter_id=user.id)
        token = await invitations.create(
            conn,
            chat_id=chat_id,
            customer_id=customer.id,
            created_by=user.id,
            ttl_hours=ctx.settings.invitation_ttl_hours,
        )
        await audit.record(conn, "invitation_created", actor_id=user.id, target=str(chat_id))
        chat = await _load_chat(conn, chat_id)
    await _publish_chat(ctx, chat)
    base = (ctx.settings.public_url or base_url).rstrip("/")
    return InvitedChatRead(chat=chat, invite_url=f"{base}/?invite={token}")


async def accept_invitation(ctx: AppContext, token: str) -> InvitationSessionRead:
    """Use an invitation link: a session for its customer, in its chat."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        customer_id, chat_id = await invitations.consume(conn, token)
        session = await auth_service.invited_session(ctx, conn, customer_id)
        await audit.record(conn, "invitation_accepted", actor_id=customer_id, target=str(chat_id))
        chat = await _load_chat(conn, chat_id)
    return InvitationSessionRead(**session.model_dump(), chat=chat)


async def list_chats(ctx: AppContext, user: CurrentUser, status: str | None, limit: int) -> list[ChatRead]:
    """Chats the caller may see: a customer's own, or all for supporters."""
    async with ctx.pool.acquire() as conn:
        rows = await ChatRepository(conn).chats(
            status=status, customer_id=None if user.is_staff else user.id, limit=limit
        )
    return [chat_read(row) for row in rows]


async def get_chat(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> ChatRead:
    """One chat the caller may see."""
    async with ctx.pool.acquire() as conn:
        await _visible_chat(conn, user, chat_id)
        return await _load_chat(conn, chat_id)


async def ensure_can_read(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> None:
    """Raise NotFound unless the caller may read the chat."""
    async with ctx.pool.acquire() as conn:
        await _visible_chat(conn, user, chat_id)


async def list_messages(
    ctx: AppContext, user: CurrentUser, chat_id: UUID, after: int, limit: int
) -> list[MessageRead]:
    """Messages of a chat after a seq, ascending."""
    async with ctx.pool.acquire() as conn:
        await _visible_chat(conn, user, chat_id)
        rows = await ChatRepository(conn).messages_after(chat_id, after, limit)
    return [message_from_row(ctx.keyring, row) for row in rows]


async def backlog_frames(ctx: AppContext, chat_id: str, after: int, limit: int) -> list[tuple[int, str]]:
    """Stored messages after a seq as socket frames (access was checked on subscribe)."""
    async with ctx.pool.acquire() as conn:
        rows = await ChatRepository(conn).messages_after(UUID(chat_id), after, limit)
    return [(row["seq"], message_frame(message_from_row(ctx.keyring, row))) for row in rows]


def clean_text(text: str) -> str:
    """Trim a message and enforce its length (413 when too long, 422 when empty)."""
    trimmed = text.strip()
    if not trimmed:
        raise Invalid("text: must not be empty")
    if len(trimmed) > MAX_TEXT_CHARS:
        raise TooLarge(f"text: at most {MAX_TEXT_CHARS} characters (this one has {len(trimmed)})")
    if "\x00" in trimmed:
        raise Invalid("text: must not contain NUL characters")
    return trimmed


def submit_message(
    ctx: AppContext,
    user: CurrentUser,
    chat_id: UUID,
    text: str,
    client_msg_id: str | None,
    suggestion_id: int | None = None,
) -> asyncio.Future[StoredMessage]:
    """Validate and encrypt a message and queue it for the next group commit (order kept)."""
    sender = Sender(id=user.id, role=user.role, display_name=user.display_name, username=user.username)
    return queue_message(ctx, sender, chat_id, clean_text(text), client_msg_id, suggestion_id=suggestion_id)


def queue_message(
    ctx: AppContext,
    sender: Sender,
    chat_id: UUID,
    text: str,
    client_msg_id: str | None,
    *,
    kind: str = "text",
    suggestion_id: int | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> asyncio.Future[StoredMessage]:
    """Encrypt checked text for its chat and sender and queue it for the next group commit."""
    content, key_id = ctx.keyring.encrypt(text, chat_id, sender.id)
    return ctx.writer.submit(
        PendingMessage(
            chat_id=chat_id,
            sender=sender,
            kind=kind,
            text=text,
            content=content,
            key_id=key_id,
            client_msg_id=client_msg_id,
            suggestion_id=suggestion_id,
            sources=sources,
        )
    )


async def post_message(
    ctx: AppContext,
    user: CurrentUser,
    chat_id: UUID,
    text: str,
    client_msg_id: str,
    suggestion_id: int | None,
) -> tuple[MessageRead, bool]:
    """Store a message over HTTP; returns it and whether it is new (False: a resend)."""
    wait = ctx.message_limiter.take(str(user.id))
    if wait:
        raise RateLimited(wait, "Too many messages; slow down.")
    stored = await submit_message(ctx, user, chat_id, text, client_msg_id, suggestion_id)
    if stored.created:
        return message_from_stored(stored), True
    async with ctx.pool.acquire() as conn:
        rows = await ChatRepository(conn).messages_after(chat_id, stored.seq - 1, 1)
    return message_from_row(ctx.keyring, rows[0]), False


async def escalate(
    ctx: AppContext, user: CurrentUser, chat_id: UUID, reason: str = "customer_request"
) -> ChatRead:
    """Hand a bot chat to the supporters; a chat already with them stays as it is."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await _visible_chat(conn, user, chat_id)
        if user.is_staff or row["customer_id"] != user.id:
            raise Forbidden("Only the chat's customer asks for a person.")
        if row["status"] == "closed":
            raise ChatClosed()
        changed = await ChatRepository(conn).escalate(chat_id, reason)
        chat = await _load_chat(conn, chat_id)
    if changed:
        await _publish_chat(ctx, chat)
    return chat


async def hand_over(ctx: AppContext, chat_id: UUID, reason: str) -> ChatRead | None:
    """The bot hands its chat to the supporters' queue; None when the chat was not with the bot."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await ChatRepository(conn).escalate(chat_id, reason):
            return None
        chat = await _load_chat(conn, chat_id)
    await _publish_chat(ctx, chat)
    return chat


async def assign(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> ChatRead:
    """Take a chat over; exactly one of several concurrent supporters wins."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        await _visible_chat(conn, user, chat_id)
        changed = await ChatRepository(conn).assign(chat_id, user.id)
        if changed:
            await audit.record(conn, "chat_assigned", actor_id=user.id, target=str(chat_id))
        else:
            current = await ChatRepository(conn).chat_access(chat_id)
            assert current is not None
            if current["status"] == "closed":
                raise ChatClosed()
            if current["supporter_id"] != user.id:
                raise AlreadyAssigned()
        chat = await _load_chat(conn, chat_id)
    if changed:
        await _publish_chat(ctx, chat)
    return chat


async def close(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> ChatRead:
    """End a chat; writing to it afterwards is refused."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        await _visible_chat(conn, user, chat_id)
        if not await ChatRepository(conn).close(chat_id):
            raise ChatClosed("This chat is already closed.")
        await audit.record(conn, "chat_closed", actor_id=user.id, target=str(chat_id))
        chat = await _load_chat(conn, chat_id)
    await _publish_chat(ctx, chat)
    return chat


async def typing(ctx: AppContext, user: CurrentUser, chat_id: UUID) -> None:
    """Tell the chat's other subscribers that the caller is typing."""
    frame = json.dumps(
        {"type": "typing", "chat_id": str(chat_id), "user": user.read().model_dump(mode="json")},
        ensure_ascii=False,
    )
    await ctx.hub.publish(chat_channel(chat_id), Event(frame=frame, exclude_user=str(user.id)))


async def close_revoked_sockets(ctx: AppContext) -> int:
    """Close this node's sockets whose token was revoked or whose account was disabled.

    Revocations through the API reach sockets at once (the `user:<id>` channel); this sweep
    also catches those made elsewhere (the command line, another node without Redis).
    """
    connections = list(ctx.hub.connections)
    if not connections:
        return 0
    live = await auth_service.live_tokens(ctx, list({conn.user.jti for conn in connections}))
    closed = 0
    for conn in connections:
        if conn.user.jti not in live:
            conn.push_close(4401, "session ended")
            closed += 1
    return closed
