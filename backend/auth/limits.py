"""Login limits: failures per account and per address lead to locks that always expire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from backend.auth.repository import AuthRepository

# Failures are forgotten after this long without another one.
FAILURE_MEMORY = timedelta(minutes=30)


@dataclass(frozen=True)
class LoginPolicy:
    """How many failures lock, and for how long (doubling per further failure, capped)."""

    account_failures: int = 10
    address_failures: int = 30
    lock_seconds: float = 60.0
    max_lock_seconds: float = 900.0


def account_key(user_id: UUID | None, username: str) -> str:
    """The throttle key of an account: its id, so every spelling that reaches it shares one count.

    (The database matches usernames by its own lower(), which folds some letters differently
    from Python's; keying by id cannot disagree with it. Unknown names are keyed by spelling.)
    """
    return f"account:{user_id}" if user_id is not None else "account-name:" + username.casefold()


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return "address:" + address


async def seconds_locked(conn: asyncpg.Connection, keys: list[str]) -> float:
    """How long the longest lock among these keys still lasts (0: none)."""
    until = await AuthRepository(conn).locked_until(keys)
    if until is None:
        return 0.0
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


async def record_failure(conn: asyncpg.Connection, policy: LoginPolicy, account: str, address: str) -> None:
    """Count a failure against the account key and the address; lock those over their limit."""
    repo = AuthRepository(conn)
    for key, limit in (
        (account, policy.account_failures),
        (address_key(address), policy.address_failures),
    ):
        await repo.count_failure(
            key,
            limit=limit,
            lock_seconds=policy.lock_seconds,
            max_lock_seconds=policy.max_lock_seconds,
            memory_seconds=FAILURE_MEMORY.total_seconds(),
        )


async def record_success(conn: asyncpg.Connection, account: str) -> None:
    """A successful login clears the account's failures (not the address's)."""
    await AuthRepository(conn).clear_failures(account)
