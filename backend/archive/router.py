"""HTTP endpoints of the archive: reading archived chats, and purging a customer."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from backend.archive import service as archive_service
from backend.archive.schemas import ArchivedChatRead, ArchivedChatSummaryRead, PurgeRead
from backend.auth.dependencies import Ctx, CurrentUserDep
from backend.core.errors import responses

router = APIRouter(prefix="/api/archive", tags=["archive"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/chats", response_model=list[ArchivedChatSummaryRead], responses=responses(401, 403, 422, 503))
async def list_archived_chats(
    user: CurrentUserDep,
    ctx: Ctx,
    customer_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ArchivedChatSummaryRead]:
    """Archived chats, newest archived first, optionally of one customer (supporters only)."""
    return await archive_service.list_archived_chats(ctx, user, customer_id, limit)


@router.get("/chats/{chat_id}", response_model=ArchivedChatRead, responses=responses(401, 403, 404, 422, 503))
async def get_archived_chat(chat_id: UUID, user: CurrentUserDep, ctx: Ctx) -> ArchivedChatRead:
    """An archived chat with every message, decrypted, in seq order (supporters only)."""
    return await archive_service.get_archived_chat(ctx, user, chat_id)


@admin_router.post(
    "/customers/{user_id}/purge", response_model=PurgeRead, responses=responses(401, 403, 404, 422, 503)
)
async def purge_customer(user_id: UUID, user: CurrentUserDep, ctx: Ctx) -> PurgeRead:
    """Erase a customer from both databases and close their sockets (admins only)."""
    return await archive_service.purge(ctx, user, user_id)
