"""HTTP endpoints for sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from backend.auth import service as auth_service
from backend.auth.dependencies import Ctx, CurrentUserDep, client_address
from backend.auth.schemas import (
    GuestCreate,
    GuestResumeCreate,
    GuestSessionRead,
    LoginCreate,
    RegisterCreate,
    SessionRead,
    UserRead,
)
from backend.core.errors import responses

router = APIRouter(prefix="/api", tags=["auth"])


@router.post(
    "/auth/guest", status_code=201, response_model=GuestSessionRead, responses=responses(400, 422, 429)
)
async def guest(body: GuestCreate, ctx: Ctx, request: Request) -> GuestSessionRead:
    """Start a session for a customer without a password."""
    return await auth_service.start_guest(ctx, body, client_address(request))


@router.post("/auth/guest/resume", response_model=SessionRead, responses=responses(400, 401, 422))
async def guest_resume(body: GuestResumeCreate, ctx: Ctx) -> SessionRead:
    """Give a guest a new session with the resume token from their first one."""
    return await auth_service.resume_guest(ctx, body)


@router.post(
    "/auth/register", status_code=201, response_model=SessionRead, responses=responses(400, 409, 422)
)
async def register(body: RegisterCreate, ctx: Ctx) -> SessionRead:
    """Create a customer account and log it in."""
    return await auth_service.register(ctx, body)


@router.post("/auth/login", response_model=SessionRead, responses=responses(400, 401, 422))
async def login(body: LoginCreate, ctx: Ctx) -> SessionRead:
    """Log in with username and password."""
    return await auth_service.login(ctx, body)


@router.post("/auth/refresh", response_model=SessionRead, responses=responses(401))
async def refresh(user: CurrentUserDep, ctx: Ctx) -> SessionRead:
    """Exchange a live token for a fresh one (the old one stays valid until it expires)."""
    return await auth_service.refresh(ctx, user)


@router.post("/auth/logout", status_code=204, response_class=Response, responses=responses(401))
async def logout(user: CurrentUserDep, ctx: Ctx) -> Response:
    """Revoke the caller's token, also for its open sockets."""
    await auth_service.logout(ctx, user)
    return Response(status_code=204)


@router.get("/me", response_model=UserRead, responses=responses(401))
async def me(user: CurrentUserDep) -> UserRead:
    """The caller."""
    return user.read()
