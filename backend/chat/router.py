"""HTTP endpoints for chats and messages."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response

from backend.auth.dependencies import Ctx, CurrentUserDep, StaffUser
from backend.chat import service as chat_service
from backend.chat.schemas import (
    ChatCreate,
    ChatRead,
    ChatStatus,
    InvitationSessionRead,
    InvitedChatRead,
    MessageCreate,
    MessageRead,
)
from backend.core.errors import responses

router = APIRouter(prefix="/api/chats", tags=["chats"])
invitations_router = APIRouter(prefix="/api/invitations", tags=["chats"])


@router.post(
    "",
    status_code=201,
    response_model=ChatRead | InvitedChatRead,
    responses=responses(400, 401, 403, 422),
)
async def create_chat(
    body: ChatCreate, user: CurrentUserDep, ctx: Ctx, request: Request
) -> ChatRead | InvitedChatRead:
    """Customers open a chat (`{}`); supporters open one for a customer and get an invitation link."""
    return await chat_service.create_chat(ctx, user, body, str(request.base_url))


@router.get("", response_model=list[ChatRead], responses=responses(401, 422))
async def list_chats(
    user: CurrentUserDep,
    ctx: Ctx,
    status: ChatStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ChatRead]:
    """Chats the caller may see, newest first."""
    return await chat_service.list_chats(ctx, user, status, limit)


@router.get("/{chat_id}", response_model=ChatRead, responses=responses(401, 404, 422))
async def get_chat(chat_id: UUID, user: CurrentUserDep, ctx: Ctx) -> ChatRead:
    """One chat."""
    return await chat_service.get_chat(ctx, user, chat_id)


@router.get("/{chat_id}/messages", response_model=list[MessageRead], responses=responses(401, 404, 422))
async def list_messages(
    chat_id: UUID,
    user: CurrentUserDep,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[MessageRead]:
    """Messages after a seq, ascending."""
    return await chat_service.list_messages(ctx, user, chat_id, after, limit)


@router.post(
    "/{chat_id}/messages",
    status_code=201,
    response_model=MessageRead,
    responses={
        200: {"model": MessageRead, "description": "A resend: the stored message"},
        **responses(400, 401, 404, 409, 413, 422, 429, 503),
    },
)
async def post_message(
    chat_id: UUID, body: MessageCreate, user: CurrentUserDep, ctx: Ctx, response: Response
) -> MessageRead:
    """Append a message; a repeated client_msg_id answers 200 with the stored one."""
    message, created = await chat_service.post_message(
        ctx, user, chat_id, body.text, body.client_msg_id, body.suggestion_id
    )
    if not created:
        response.status_code = 200
    return message


@router.post("/{chat_id}/escalate", response_model=ChatRead, responses=responses(401, 403, 404, 409, 422))
async def escalate(chat_id: UUID, user: CurrentUserDep, ctx: Ctx) -> ChatRead:
    """The customer asks for a person: the chat goes to the supporters' queue."""
    return await chat_service.escalate(ctx, user, chat_id)


@router.post("/{chat_id}/assign", response_model=ChatRead, responses=responses(401, 403, 404, 409, 422))
async def assign(chat_id: UUID, user: StaffUser, ctx: Ctx) -> ChatRead:
    """Take the chat over."""
    return await chat_service.assign(ctx, user, chat_id)


@router.post("/{chat_id}/close", response_model=ChatRead, responses=responses(401, 403, 404, 409, 422))
async def close(chat_id: UUID, user: StaffUser, ctx: Ctx) -> ChatRead:
    """End the chat."""
    return await chat_service.close(ctx, user, chat_id)


@invitations_router.post(
    "/{token}/accept", response_model=InvitationSessionRead, responses=responses(401, 404, 410, 422)
)
async def accept_invitation(
    token: Annotated[str, Path(min_length=1, max_length=256)], ctx: Ctx
) -> InvitationSessionRead:
    """Open the chat a supporter invited you to (the link works once)."""
    return await chat_service.accept_invitation(ctx, token)
