"""HTTP endpoints for sessions."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from backend.auth import admin as auth_admin
from backend.auth import service as auth_service
from backend.auth.dependencies import AdminUser, Ctx, CurrentUserDep, client_address
from backend.auth.schemas import (
    AccountRead,
    AuditEventRead,
    GuestCreate,
    GuestResumeCreate,
    GuestSessionRead,
    LoginCreate,
    PasswordChange,
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


@router.post("/auth/login", response_model=SessionRead, responses=responses(400, 401, 422, 429))
async def login(body: LoginCreate, ctx: Ctx, request: Request) -> SessionRead:
    """Log in with username and password (failures lock the account and address for a while)."""
    return await auth_service.login(ctx, body, client_address(request))


@router.post("/auth/refresh", response_model=SessionRead, responses=responses(401))
async def refresh(user: CurrentUserDep, ctx: Ctx) -> SessionRead:
    """Exchange a live token for a fresh one (the old one stays valid until it expires)."""
    return await auth_service.refresh(ctx, user)


@router.post("/auth/logout", status_code=204, response_class=Response, responses=responses(401))
async def logout(user: CurrentUserDep, ctx: Ctx) -> Response:
    """Revoke the caller's token, also for its open sockets."""
    await auth_service.logout(ctx, user)
    return Response(status_code=204)


@router.post("/auth/logout-all", status_code=204, response_class=Response, responses=responses(401))
async def logout_all(user: CurrentUserDep, ctx: Ctx) -> Response:
    """Revoke every session of the caller, on every device, and close all their sockets."""
    await auth_service.logout_everywhere(ctx, user)
    return Response(status_code=204)


@router.post(
    "/auth/password", status_code=204, response_class=Response, responses=responses(400, 401, 403, 422, 429)
)
async def change_password(body: PasswordChange, user: CurrentUserDep, ctx: Ctx, request: Request) -> Response:
    """Change the caller's password; their other sessions end (this one stays)."""
    await auth_service.change_password(ctx, user, body, client_address(request))
    return Response(status_code=204)


@router.get("/admin/users", response_model=list[AccountRead], responses=responses(401, 403, 422))
async def list_accounts(
    _: AdminUser,
    ctx: Ctx,
    role: Literal["user", "supporter", "admin"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AccountRead]:
    """Accounts with a username (admins only)."""
    return await auth_admin.list_accounts(ctx, role, limit)


@router.post(
    "/admin/users/{user_id}/disable", response_model=AccountRead, responses=responses(401, 403, 404, 422)
)
async def disable_user(user_id: UUID, admin: AdminUser, ctx: Ctx) -> AccountRead:
    """Disable an account: its tokens die and its sockets close at once (admins only)."""
    return await auth_admin.set_disabled(ctx, admin, user_id, True)


@router.post(
    "/admin/users/{user_id}/enable", response_model=AccountRead, responses=responses(401, 403, 404, 422)
)
async def enable_user(user_id: UUID, admin: AdminUser, ctx: Ctx) -> AccountRead:
    """Enable a disabled account again (admins only)."""
    return await auth_admin.set_disabled(ctx, admin, user_id, False)


@router.get("/admin/audit", response_model=list[AuditEventRead], responses=responses(401, 403, 422))
async def read_audit(
    _: AdminUser,
    ctx: Ctx,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: UUID | None = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventRead]:
    """Security events, newest first; page with `before_id` (admins only)."""
    return await auth_admin.read_audit(
        ctx, action=action, actor_id=actor_id, target=target, before_id=before_id, limit=limit
    )


@router.get("/me", response_model=UserRead, responses=responses(401))
async def me(user: CurrentUserDep) -> UserRead:
    """The caller."""
    return user.read()
