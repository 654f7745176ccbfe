"""HTTP endpoints of the bot: customers rate answers, supporters read the hand-over, admins the outcomes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from backend.auth.dependencies import AdminUser, Ctx, CurrentUserDep, StaffUser
from backend.bot import packet
from backend.bot.schemas import BotOutcomeRead, FeedbackCreate, FeedbackRead, HandoverRead
from backend.core.errors import responses

router = APIRouter(tags=["bot"])


@router.post(
    "/api/chats/{chat_id}/messages/{message_id}/feedback",
    response_model=FeedbackRead,
    responses=responses(401, 403, 404, 422),
)
async def rate_answer(
    chat_id: UUID,
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: FeedbackCreate,
    user: CurrentUserDep,
    ctx: Ctx,
) -> FeedbackRead:
    """The chat's customer rates a bot answer helpful or not helpful."""
    return await packet.rate(ctx, user, chat_id, message_id, body.rating)


@router.get(
    "/api/chats/{chat_id}/handover", response_model=HandoverRead, responses=responses(401, 403, 404, 422)
)
async def get_handover(chat_id: UUID, user: StaffUser, ctx: Ctx) -> HandoverRead:
    """Why the bot handed the chat over, what was asked and answered, and the sources used."""
    return await packet.handover(ctx, user, chat_id)


@router.get("/api/admin/bot/outcomes", response_model=list[BotOutcomeRead], responses=responses(401, 403))
async def bot_outcomes(user: AdminUser, ctx: Ctx) -> list[BotOutcomeRead]:
    """Admins: bot turns per outcome and reason, with the ratings of their answers."""
    del user
    return await packet.outcomes(ctx)
