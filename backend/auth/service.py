"""Authentication rules: sessions for guests, customers and supporters; logout."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from pydantic import TypeAdapter, ValidationError

from backend.auth import limits
from backend.auth.passwords import PasswordHasher, check_password_policy
from backend.auth.repository import AuthRepository
from backend.auth.schemas import (
    GuestCreate,
    GuestResumeCreate,
    GuestSessionRead,
    LoginCreate,
    PasswordChange,
    RegisterCreate,
    SessionRead,
    Username,
    UserRead,
)
from backend.core import audit
from backend.core.context import AppContext
from backend.core.errors import (
    AppError,
    Forbidden,
    Invalid,
    InvalidCredentials,
    RateLimited,
    TokenInvalid,
    UsernameTaken,
)
from backend.core.pubsub import Event
from backend.core.timefmt import local

log = logging.getLogger(__name__)

STAFF_ROLES = frozenset({"supporter", "admin"})
_USERNAME: TypeAdapter[str] = TypeAdapter(Username)


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated caller."""

    id: UUID
    role: str
    display_name: str
    username: str | None
    jti: UUID
    expires_at: datetime

    @property
    def is_staff(self) -> bool:
        """Supporters and admins."""
        return self.role in STAFF_ROLES

    def read(self) -> UserRead:
        """The caller as the API shows users."""
        return UserRead(id=self.id, username=self.username, display_name=self.display_name, role=self.role)


def user_channel(user_id: UUID | str) -> str:
    """The hub channel where a user's sockets hear about their tokens."""
    return f"user:{user_id}"


def _user_read(row: asyncpg.Record) -> UserRead:
    return UserRead(
        id=row["id"], username=row["username"], display_name=row["display_name"], role=row["role"]
    )


def _hash_resume_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


async def _issue(ctx: AppContext, conn: asyncpg.Connection, user: asyncpg.Record) -> SessionRead:
    token, claims = ctx.tokens.issue(user["id"], user["role"])
    await AuthRepository(conn).record_token(claims.jti, user["id"], claims.expires_at)
    return SessionRead(token=token, expires_at=local(claims.expires_at), user=_user_read(user))


async def authenticate(ctx: AppContext, token: str) -> CurrentUser:
    """Verify a token and that it is still live; raise TokenInvalid/TokenExpired."""
    claims = ctx.tokens.decode(token)
    async with ctx.pool.acquire() as conn:
        row = await AuthRepository(conn).session_user(claims.user_id, claims.jti)
    if row is None or row["revoked_at"] is not None or row["disabled_at"] is not None:
        raise TokenInvalid()
    if row["role"] != claims.role:
        raise TokenInvalid("The session token no longer matches the account; log in again.")
    return CurrentUser(
        id=row["id"],
        role=row["role"],
        display_name=row["display_name"],
        username=row["username"],
        jti=claims.jti,
        expires_at=claims.expires_at,
    )


async def live_tokens(ctx: AppContext, jtis: list[UUID]) -> set[UUID]:
    """Which of these token ids may still be used."""
    async with ctx.pool.acquire() as conn:
        return await AuthRepository(conn).live_jtis(jtis)


async def start_guest(ctx: AppContext, body: GuestCreate, client_address: str) -> GuestSessionRead:
    """Create a guest customer and a session for them."""
    wait = ctx.guest_limiter.take(client_address)
    if wait:
        raise RateLimited(wait, "Too many new guest sessions from this address; try again shortly.")
    resume_token = secrets.token_urlsafe(32)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await AuthRepository(conn).create_user(
            username=None,
            display_name=body.display_name,
            role="user",
            password_hash=None,
            email=body.email,
            is_guest=True,
            resume_token_hash=_hash_resume_token(resume_token),
        )
        session = await _issue(ctx, conn, user)
    return GuestSessionRead(**session.model_dump(), resume_token=resume_token)


async def create_invited_guest(conn: asyncpg.Connection, display_name: str) -> UserRead:
    """A guest customer for an invitation; they get a session when they accept it."""
    user = await AuthRepository(conn).create_user(
        username=None, display_name=display_name, role="user", password_hash=None, is_guest=True
    )
    return _user_read(user)


async def invited_session(ctx: AppContext, conn: asyncpg.Connection, user_id: UUID) -> GuestSessionRead:
    """A session (and a fresh resume token) for the customer of an accepted invitation."""
    repo = AuthRepository(conn)
    user = await repo.user_by_id(user_id)
    if user is None or user["disabled_at"] is not None:
        raise TokenInvalid("This invitation's customer account is disabled.")
    resume_token = secrets.token_urlsafe(32)
    await repo.set_resume_hash(user_id, _hash_resume_token(resume_token))
    session = await _issue(ctx, conn, user)
    return GuestSessionRead(**session.model_dump(), resume_token=resume_token)


async def resume_guest(ctx: AppContext, body: GuestResumeCreate) -> SessionRead:
    """Give a guest a new session from their resume token."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await AuthRepository(conn).user_by_resume_hash(_hash_resume_token(body.resume_token))
        if user is None or user["disabled_at"] is not None:
            raise TokenInvalid("This resume token is not valid; start a new chat.")
        return await _issue(ctx, conn, user)


async def register(ctx: AppContext, body: RegisterCreate) -> SessionRead:
    """Create a customer account with a password and log it in."""
    password_hash = await ctx.hasher.hash(body.password)
    async with ctx.pool.acquire() as conn, conn.transaction():
        try:
            user = await AuthRepository(conn).create_user(
                username=body.username,
                display_name=body.display_name or body.username,
                role="user",
                password_hash=password_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            raise UsernameTaken() from exc
        return await _issue(ctx, conn, user)


async def login(ctx: AppContext, body: LoginCreate, address: str) -> SessionRead:
    """Check a username and password and open a session; repeated failures lock for a while."""
    async with ctx.pool.acquire() as conn:
        user = await AuthRepository(conn).user_by_username(body.username)
        account = limits.account_key(user["id"] if user is not None else None, body.username)
        wait = await limits.seconds_locked(conn, [account, limits.address_key(address)])
        if wait:
            await audit.record(conn, "login_locked", target=body.username[:64], address=address)
            raise RateLimited(wait, "Too many failed logins; try again later.")
    # Verify even for unknown users, so timing does not tell which usernames exist.
    ok = await ctx.hasher.verify(body.password, user["password_hash"] if user is not None else None)
    if user is None or not ok or user["disabled_at"] is not None:
        async with ctx.pool.acquire() as conn, conn.transaction():
            await limits.record_failure(conn, ctx.login_policy, account, address)
            await audit.record(
                conn,
                "login_failed",
                actor_id=user["id"] if user is not None else None,
                target=body.username[:64],
                address=address,
            )
        raise InvalidCredentials()
    async with ctx.pool.acquire() as conn, conn.transaction():
        await limits.record_success(conn, account)
        await audit.record(conn, "login_ok", actor_id=user["id"], address=address)
        return await _issue(ctx, conn, user)


async def refresh(ctx: AppContext, current: CurrentUser) -> SessionRead:
    """Issue a fresh token for a caller whose token is still live."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await AuthRepository(conn).user_by_id(current.id)
        if user is None:
            raise TokenInvalid()
        return await _issue(ctx, conn, user)


async def logout(ctx: AppContext, current: CurrentUser) -> None:
    """Revoke the caller's token and close the sockets that use it."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        await AuthRepository(conn).revoke_token(current.jti)
        await audit.record(conn, "logout", actor_id=current.id)
    await ctx.broker.publish(user_channel(current.id), Event(revoke_jti=str(current.jti)))


async def logout_everywhere(ctx: AppContext, current: CurrentUser) -> int:
    """Revoke every session of the caller and close all their sockets."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        repo = AuthRepository(conn)
        count = await repo.revoke_all_tokens(current.id)
        await repo.clear_resume_hash(current.id)  # a guest's way back is a session too
        await audit.record(conn, "logout_all", actor_id=current.id, details={"sessions": count})
    await ctx.broker.publish(user_channel(current.id), Event(revoke_jti="*"))
    return count


class WrongPassword(AppError):
    """The current password given to change it is wrong (403: the session itself is fine)."""

    status, code, detail = 403, "wrong_password", "The current password is wrong."


async def change_password(ctx: AppContext, current: CurrentUser, body: PasswordChange, address: str) -> None:
    """Set a new password; every other session of the caller ends. Guesses count like failed logins."""
    async with ctx.pool.acquire() as conn:
        user = await AuthRepository(conn).user_by_id(current.id)
        if user is None or user["password_hash"] is None:
            raise Forbidden("This account has no password to change.")
        # The same limits as login: a stolen session must not allow unlimited password guessing.
        account = limits.account_key(user["id"], user["username"])
        wait = await limits.seconds_locked(conn, [account, limits.address_key(address)])
        if wait:
            raise RateLimited(wait, "Too many wrong passwords; try again later.")
    if not await ctx.hasher.verify(body.current_password, user["password_hash"]):
        async with ctx.pool.acquire() as conn, conn.transaction():
            await limits.record_failure(conn, ctx.login_policy, account, address)
            await audit.record(conn, "password_change_failed", actor_id=current.id, address=address)
        raise WrongPassword()
    if body.new_password == body.current_password:
        raise Invalid("new_password: must differ from the current password")
    new_hash = await ctx.hasher.hash(body.new_password)
    async with ctx.pool.acquire() as conn, conn.transaction():
        repo = AuthRepository(conn)
        await repo.set_password_hash(current.id, new_hash)
        count = await repo.revoke_all_tokens(current.id, except_jti=current.jti)
        await audit.record(conn, "password_changed", actor_id=current.id, details={"sessions_ended": count})
    await ctx.broker.publish(user_channel(current.id), Event(revoke_jti="*", keep_jti=str(current.jti)))


async def create_staff_user(
    pool: asyncpg.Pool,
    hasher: PasswordHasher,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
) -> UserRead:
    """Create a supporter or admin (command line only)."""
    try:
        username = _USERNAME.validate_python(username)
    except ValidationError as exc:
        raise Invalid("username: 3 to 64 letters, digits or _.@-") from exc
    check_password_policy(password)
    password_hash = await hasher.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        try:
            user = await AuthRepository(conn).create_user(
                username=username,
                display_name=display_name or username,
                role=role,
                password_hash=password_hash,
            )
        except asyncpg.UniqueViolationError as exc:
            raise UsernameTaken() from exc
        await audit.record(conn, "user_created", target=str(user["id"]), details={"role": role})
    return _user_read(user)
