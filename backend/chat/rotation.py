"""Key rotation: re-encrypt stored messages with the active key, in batches that survive a crash."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from backend.chat.repository import ChatRepository
from backend.core import audit
from backend.core.crypto import DecryptionError, KeyRing

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
# Later passes start over from the lowest id to catch rows that were locked elsewhere or written
# under an old key meanwhile; bounded, so a node still writing with an old key cannot keep us busy.
MAX_PASSES = 3


@dataclass(frozen=True)
class KeyUsage:
    """Messages per key id, and what that means for MESSAGE_KEYS."""

    active_id: str
    configured: list[str]
    counts: dict[str, int]
    # Archived chats keep their messages' ciphertext and key ids: a key they use stays.
    archived: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, counts: dict[str, int], keyring: KeyRing, archived: dict[str, int] | None = None) -> KeyUsage:
        """Describe per-key counts (main database and archive) against the configured keys."""
        return cls(
            active_id=keyring.active_id,
            configured=list(keyring.keys),
            counts=dict(counts),
            archived=dict(archived or {}),
        )

    @property
    def removable(self) -> list[str]:
        """Configured, not active, used by no row anywhere: a key is retired only when no row uses it."""
        return [
            k
            for k in self.configured
            if k != self.active_id and self.counts.get(k, 0) == 0 and self.archived.get(k, 0) == 0
        ]

    @property
    def unknown(self) -> list[str]:
        """Used by rows but not configured: those messages cannot be read."""
        used = {k for k, n in [*self.counts.items(), *self.archived.items()] if n > 0}
        return sorted(k for k in used if k not in self.configured)

    @property
    def remaining(self) -> int:
        """Messages not under the active key."""
        return sum(n for k, n in self.counts.items() if k != self.active_id)

    def lines(self) -> list[str]:
        """One line per key: configured keys in MESSAGE_KEYS order, then unknown ids."""
        lines: list[str] = []
        removable, unknown = self.removable, self.unknown
        for key_id in [*self.configured, *unknown]:
            if key_id == self.active_id:
                note = "active"
            elif key_id in unknown:
                note = "not in MESSAGE_KEYS: these messages cannot be read"
            elif key_id in removable:
                note = "used by no message: may be removed from MESSAGE_KEYS"
            elif self.counts.get(key_id, 0):
                note = "still in use: run rotate-keys"
            else:
                note = "still used by archived chats: keep it"
            archived = self.archived.get(key_id, 0)
            where = f", {archived} archived" if archived else ""
            lines.append(f"key {key_id}: {self.counts.get(key_id, 0)} messages{where} ({note})")
        return lines


@dataclass(frozen=True)
class Failure:
    """A message that could not be re-encrypted; it keeps its old content and key id."""

    message_id: int
    key_id: str
    reason: str


@dataclass(frozen=True)
class RotationProgress:
    """What one committed batch did."""

    batch: int
    re_encrypted: int
    total: int
    left: int
    failures: list[Failure] = field(default_factory=list)

    def line(self) -> str:
        """The progress line the command prints."""
        return f"re-encrypted {self.re_encrypted} messages ({self.total} so far), {self.left} left"


@dataclass(frozen=True)
class RotationResult:
    """The outcome of a rotation run."""

    active_id: str
    re_encrypted: int
    batches: int
    failures: list[Failure]
    usage: KeyUsage

    @property
    def complete(self) -> bool:
        """Every message is under the active key."""
        return not self.failures and self.usage.remaining == 0

    def summary_lines(self) -> list[str]:
        """The summary printed at the end: counts, then per-key usage."""
        lines = [
            f"re-encrypted {self.re_encrypted} messages with key {self.active_id} in {self.batches} batches"
        ]
        if self.failures:
            lines.append(f"{len(self.failures)} messages were skipped (listed above)")
        lines.extend(self.usage.lines())
        lines.append("a key is retired only when no row uses it")
        return lines


@dataclass(frozen=True)
class _Batch:
    last_id: int
    re_encrypted: int
    failures: list[Failure]


def _reencrypt(
    keyring: KeyRing, rows: Sequence[asyncpg.Record]
) -> tuple[list[tuple[int, bytes, str]], list[Failure]]:
    sealed: list[tuple[int, bytes, str]] = []
    failures: list[Failure] = []
    for row in rows:
        key_id = row["key_id"]
        if key_id not in keyring.keys:
            failures.append(Failure(row["id"], key_id, f"key id {key_id!r} is not in MESSAGE_KEYS"))
            continue
        try:
            text = keyring.decrypt(row["content"], key_id, row["chat_id"], row["sender_id"])
        except (DecryptionError, UnicodeDecodeError):
            failures.append(Failure(row["id"], key_id, f"does not decrypt with key {key_id!r}"))
            continue
        content, _ = keyring.encrypt(text, row["chat_id"], row["sender_id"])
        sealed.append((row["id"], content, row["key_id"]))
    return sealed, failures


async def _rotate_batch(
    pool: asyncpg.Pool, keyring: KeyRing, after_id: int, skip_ids: Sequence[int], limit: int
) -> _Batch | None:
    """Re-encrypt the next batch in its own transaction; None when no row is left after `after_id`."""
    async with pool.acquire() as conn, conn.transaction():
        repo = ChatRepository(conn)
        rows = await repo.lock_messages_not_on_key(keyring.active_id, after_id, skip_ids, limit)
        if not rows:
            return None
        sealed, failures = await asyncio.to_thread(_reencrypt, keyring, rows)
        updated = 0
        if sealed:
            ids, contents, old_key_ids = zip(*sealed, strict=True)
            updated = await repo.replace_message_contents(
                ids, contents, [keyring.active_id] * len(ids), old_key_ids
            )
    return _Batch(last_id=rows[-1]["id"], re_encrypted=updated, failures=failures)


async def key_usage(pool: asyncpg.Pool, keyring: KeyRing, archived: dict[str, int] | None = None) -> KeyUsage:
    """Count messages per key id (read-only); `archived` adds the archive's counts."""
    async with pool.acquire() as conn:
        counts = await ChatRepository(conn).key_usage()
    return KeyUsage.of(counts, keyring, archived)


async def rotate_keys(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[RotationProgress], None] | None = None,
) -> RotationResult:
    """Re-encrypt every message not under the active key; rows that fail are reported and skipped."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    async with pool.acquire() as conn:
        left = await ChatRepository(conn).count_messages_not_on_key(keyring.active_id)
    total = 0
    batches = 0
    failures: list[Failure] = []
    failed_ids: list[int] = []
    try:
        for _ in range(MAX_PASSES):
            # Keyset pagination: each batch starts after the last id seen, so the scan never
            # re-reads rows already rotated and a row that failed is not fetched again.
            after_id = 0
            found = 0
            while (batch := await _rotate_batch(pool, keyring, after_id, failed_ids, batch_size)) is not None:
                after_id = batch.last_id
                batches += 1
                total += batch.re_encrypted
                found += batch.re_encrypted + len(batch.failures)
                failures.extend(batch.failures)
                failed_ids.extend(f.message_id for f in batch.failures)
                left = max(0, left - batch.re_encrypted - len(batch.failures))
                if progress is not None:
                    progress(RotationProgress(batches, batch.re_encrypted, total, left, batch.failures))
            if not found:
                break
    except Exception:
        await _audit(pool, keyring, total, batches, failures, remaining=None)
        raise
    usage = await key_usage(pool, keyring)
    await _audit(pool, keyring, total, batches, failures, remaining=usage.remaining)
    return RotationResult(keyring.active_id, total, batches, failures, usage)


async def _audit(
    pool: asyncpg.Pool,
    keyring: KeyRing,
    total: int,
    batches: int,
    failures: list[Failure],
    remaining: int | None,
) -> None:
    """Record the run (ids and counts only, never key material); an interrupted run too."""
    details = {
        "active_key_id": keyring.active_id,
        "re_encrypted": total,
        "batches": batches,
        "failed": len(failures),
        "remaining": remaining,
        "completed": remaining is not None,
    }
    try:
        async with pool.acquire() as conn:
            await audit.record(conn, "keys_rotated", details=details)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        # Interrupted by a lost database, the event cannot be written; the re-run records its own.
        log.exception("could not record the keys_rotated audit event")


async def check_key_ids(pool: asyncpg.Pool, keyring: KeyRing) -> list[str]:
    """Log an error naming key ids that messages use but MESSAGE_KEYS lacks; returns them."""
    async with pool.acquire() as conn:
        used = await ChatRepository(conn).used_key_ids()
    missing = sorted(set(used) - set(keyring.keys))
    if missing:
        log.error(
            "messages use key ids missing from MESSAGE_KEYS: %s; they show as unreadable until "
            "those keys are added back",
            ", ".join(missing),
        )
    return missing
