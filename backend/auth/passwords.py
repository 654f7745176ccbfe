"""Password hashing with bcrypt, always off the event loop."""

from __future__ import annotations

import asyncio

import bcrypt

from backend.core.errors import Invalid

MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything after 72 bytes: refuse instead of truncating


def check_password_policy(password: str) -> bytes:
    """Return the password's UTF-8 bytes, or raise a 422 that says what is wrong."""
    raw = password.encode("utf-8")
    if len(raw) < MIN_PASSWORD_BYTES:
        raise Invalid(f"password: must be at least {MIN_PASSWORD_BYTES} bytes long")
    if len(raw) > MAX_PASSWORD_BYTES:
        raise Invalid(
            f"password: must be at most {MAX_PASSWORD_BYTES} bytes of UTF-8 "
            f"(this one has {len(raw)}; characters outside ASCII take 2 to 4 bytes)"
        )
    return raw


class PasswordHasher:
    """bcrypt with a fixed cost, plus a dummy hash so unknown users cost the same time."""

    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds
        self._dummy = bcrypt.hashpw(b"no-such-user-password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        """Hash a password that passed the policy."""
        raw = check_password_policy(password)
        hashed = await asyncio.to_thread(bcrypt.hashpw, raw, bcrypt.gensalt(self.rounds))
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password; with no hash, spend the same time and say no."""
        raw = password.encode("utf-8")
        if len(raw) > MAX_PASSWORD_BYTES:
            # Cannot match a stored hash (never truncated); still spend the time of a check.
            raw = b"x"
            hashed = None
        target = hashed.encode("ascii") if hashed else self._dummy
        try:
            ok = await asyncio.to_thread(bcrypt.checkpw, raw, target)
        except ValueError:
            return False
        return ok and hashed is not None
