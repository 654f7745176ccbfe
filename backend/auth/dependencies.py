"""FastAPI dependencies: the app context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.auth import service as auth_service
from backend.auth.service import CurrentUser
from backend.core.context import AppContext
from backend.core.errors import Forbidden, TokenInvalid

_bearer = HTTPBearer(auto_error=False, description="The session token from /api/auth/*")


def get_ctx(request: Request) -> AppContext:
    """The app's long-lived parts."""
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_current_user(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> CurrentUser:
    """The caller of a request with a live Bearer token (401 otherwise)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise TokenInvalid()
    return await auth_service.authenticate(ctx, credentials.credentials)


CurrentUserDep = Annotated[CurrentUser, Depends(get_current_user)]


async def get_staff_user(user: CurrentUserDep) -> CurrentUser:
    """The caller, who must be a supporter or admin (403 otherwise)."""
    if not user.is_staff:
        raise Forbidden("Only supporters can do this.")
    return user


StaffUser = Annotated[CurrentUser, Depends(get_staff_user)]


async def get_admin_user(user: CurrentUserDep) -> CurrentUser:
    """The caller, who must be an admin (403 otherwise)."""
    if user.role != "admin":
        raise Forbidden("Only admins can do this.")
    return user


AdminUser = Annotated[CurrentUser, Depends(get_admin_user)]


def client_address(request: Request) -> str:
    """The peer address (uvicorn applies trusted proxy headers before this)."""
    return request.client.host if request.client is not None else "unknown"
