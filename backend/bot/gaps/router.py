"""HTTP endpoint of the knowledge-gap report (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from backend.auth.dependencies import AdminUser, Ctx
from backend.bot.gaps import service
from backend.bot.gaps.schemas import GapReportRead
from backend.core.errors import responses

router = APIRouter(tags=["bot"])


@router.get("/api/admin/knowledge-gaps", response_model=GapReportRead, responses=responses(401, 403, 422))
async def knowledge_gaps(
    user: AdminUser,
    ctx: Ctx,
    since: Annotated[
        datetime | None, Query(description="Only questions asked since then (no offset: Europe/Berlin)")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=service.MAX_LIMIT, description="At most this many questions, newest first")
    ] = service.DEFAULT_LIMIT,
) -> GapReportRead:
    """Admins: the questions the bot could not help with, grouped by similarity, most frequent first."""
    del user
    return await service.knowledge_gaps(ctx, since, limit)
