"""HTTP endpoints of suggested replies and text modules (supporters only)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from backend.auth.dependencies import AdminUser, Ctx, StaffUser
from backend.core.errors import responses
from backend.suggestions import service
from backend.suggestions.schemas import SuggestionRead, SuggestionStatsRead, TextModuleRead

router = APIRouter(tags=["suggestions"])


@router.get(
    "/api/chats/{chat_id}/suggestions",
    response_model=list[SuggestionRead],
    responses=responses(401, 403, 404, 422),
)
async def list_suggestions(
    chat_id: UUID,
    user: StaffUser,
    ctx: Ctx,
    message_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> list[SuggestionRead]:
    """A message's suggested replies, best first (default: the latest customer message's)."""
    del user
    return await service.list_suggestions(ctx.pool, chat_id, message_id)


@router.get("/api/text-modules", response_model=list[TextModuleRead], responses=responses(401, 403, 404, 422))
async def list_text_modules(
    user: StaffUser,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=100)] = "",
    chat_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[TextModuleRead]:
    """Text modules whose shortcut starts with `q`, placeholders filled for `chat_id` if given."""
    del user
    return await service.search_modules(ctx.pool, q, chat_id, limit)


@router.get(
    "/api/admin/suggestions/stats", response_model=list[SuggestionStatsRead], responses=responses(401, 403)
)
async def suggestion_stats(user: AdminUser, ctx: Ctx) -> list[SuggestionStatsRead]:
    """Admins: per source, suggestions shown, sent as they were, sent edited, and ignored."""
    del user
    return await service.stats(ctx.pool)
