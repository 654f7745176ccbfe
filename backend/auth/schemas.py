"""What crosses the wire for authentication."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from backend.core.schemas import InputModel

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$"
    ),
]
# Length in bytes is checked by the password policy, with a message that says so.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class GuestCreate(InputModel):
    """A customer without a password."""

    display_name: DisplayName
    email: Email | None = None


class RegisterCreate(InputModel):
    """A customer with a username and password."""

    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginCreate(InputModel):
    """Username and password."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    password: Password


class GuestResumeCreate(InputModel):
    """A guest's resume token, to log in again after the session expired."""

    resume_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserRead(BaseModel):
    """A user as others see them."""

    id: UUID
    username: str | None = None
    display_name: str
    role: str


class SessionRead(BaseModel):
    """A new session."""

    token: str
    expires_at: datetime
    user: UserRead


class GuestSessionRead(SessionRead):
    """A new guest session, with the token that lets the guest come back."""

    resume_token: str = Field(description="Keep it: POST /api/auth/guest/resume gives a new session with it.")


class PasswordChange(InputModel):
    """The current password and the new one."""

    current_password: Password
    new_password: Password


class AccountRead(UserRead):
    """An account as admins see it."""

    disabled: bool


class AuditEventRead(BaseModel):
    """One security event."""

    id: int
    at: datetime
    action: str
    actor_id: UUID | None
    target: str | None
    address: str | None
    details: dict[str, Any]
