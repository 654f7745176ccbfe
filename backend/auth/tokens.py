"""Session tokens: HS256 JWTs with user_id, role, exp and a jti, the algorithm pinned."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import jwt

from backend.core.errors import TokenExpired, TokenInvalid

ALGORITHM = "HS256"
_REQUIRED = ["exp", "iat", "user_id", "role", "jti"]
ROLES = ("user", "supporter", "admin")


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    user_id: UUID
    role: str
    jti: UUID
    expires_at: datetime


class TokenCodec:
    """Issue and verify session tokens with one secret."""

    def __init__(self, secret: bytes, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: UUID, role: str) -> tuple[str, TokenClaims]:
        """Sign a new token for a user."""
        now = int(time.time())
        claims = TokenClaims(
            user_id=user_id,
            role=role,
            jti=uuid.uuid4(),
            expires_at=datetime.fromtimestamp(now + self.ttl_seconds, UTC),
        )
        payload = {
            "user_id": str(user_id),
            "role": role,
            "exp": now + self.ttl_seconds,
            "iat": now,
            "jti": str(claims.jti),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str) -> TokenClaims:
        """Verify signature, algorithm and expiry; raise TokenExpired or TokenInvalid."""
        if not token or len(token) > 4096:
            raise TokenInvalid()
        try:
            payload = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": _REQUIRED})
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired() from exc
        except jwt.PyJWTError as exc:
            raise TokenInvalid() from exc
        try:
            role = str(payload["role"])
            if role not in ROLES:
                raise ValueError(role)
            return TokenClaims(
                user_id=UUID(str(payload["user_id"])),
                role=role,
                jti=UUID(str(payload["jti"])),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise TokenInvalid() from exc
