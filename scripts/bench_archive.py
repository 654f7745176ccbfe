"""Archive benchmark: one archiving pass over N old closed chats, on this machine.

`make bench` runs `scripts/bench_archive.py --write docs/performance.md`. Steps:

1. An embedded PostgreSQL in a fresh temporary folder; the main and the archive database are
   migrated as the server does it.
2. Seeded with set-based SQL (COPY): N customers, N chats closed 8 days ago, M messages per
   chat (encrypted with AES-256-GCM, alternately from the customer and a supporter), one
   suggested reply per customer message, each supporter message marked as taken from one.
3. Baseline: the raw cost of copying the same chat and message rows from the main database
   into plain tables of the archive database (binary COPY out and in), and inside the main
   database (INSERT INTO ... SELECT), without any archive logic.
4. One archiving pass (`backend.archive.service.archive_pass`, ARCHIVE_BATCH_SIZE rows per
   batch), timed. Afterwards every chat must be in the archive exactly once with all its
   messages, none left in the main database, and a sample must decrypt.

The Markdown summary is printed and, with --write FILE, put between
`<!-- archive-bench:start -->` and `<!-- archive-bench:end -->` in FILE (the rest of the file
is kept). Exits non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import io
import os
import platform
import random
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run_in_workdir  # noqa: E402  (the same runner and marker-block writer as the load benchmark)

from backend.archive import service as archive_service  # noqa: E402
from backend.archive.repository import ArchiveRepository, SourceRepository  # noqa: E402
from backend.core import db  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.crypto import KeyRing  # noqa: E402

MARK_START = "<!-- archive-bench:start -->"
MARK_END = "<!-- archive-bench:end -->"
SAMPLE_TEXTS = [
    "Hallo, meine Bestellung 4711 ist noch nicht angekommen. Können Sie nachsehen?",
    "Gern! Ich sehe, das Paket ist seit gestern beim Versand. Es kommt morgen an.",
    "Danke. Kann ich die Lieferadresse noch ändern?",
    "Ja, das geht bis heute 18 Uhr in Ihrem Kundenkonto unter Bestellungen.",
    "Super, vielen Dank für die schnelle Hilfe!",
]


@dataclass
class Outcome:
    chats: int
    messages: int
    suggestions: int
    seed_seconds: float
    copy_between_seconds: float
    copy_within_seconds: float
    result: archive_service.ArchiveResult
    checks: list[str]
    failures: list[str]
    postgres: str
    phases: dict[str, float] = field(default_factory=dict)


PHASES = (
    (SourceRepository, "claim_closed_chats", "lock and read the batch's chats"),
    (SourceRepository, "messages_of", "read their messages"),
    (ArchiveRepository, "insert", "write the archive rows"),
    (SourceRepository, "delete_chats", "delete from the main database"),
)


@contextlib.contextmanager
def timed_phases(totals: dict[str, float]) -> Iterator[None]:
    """Add up the time the pass spends in each repository call."""
    originals = []
    for cls, name, label in PHASES:
        original = getattr(cls, name)
        originals.append((cls, name, original))

        def timed(original: Any = original, label: str = label) -> Any:
            @functools.wraps(original)
            async def call(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    totals[label] = totals.get(label, 0.0) + time.perf_counter() - started

            return call

        setattr(cls, name, timed())
    try:
        yield
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def seed(conn: asyncpg.Connection, keyring: KeyRing, chats: int, per_chat: int) -> int:
    """N customers, one supporter, N closed chats with `per_chat` encrypted messages each."""
    now = datetime.now(UTC)
    supporter = uuid.uuid4()
    customers = [uuid.uuid4() for _ in range(chats)]
    await conn.copy_records_to_table(
        "users",
        columns=["id", "username", "display_name", "role", "is_guest"],
        records=[(supporter, "bench_supporter", "Bench Supporter", "supporter", False)]
        + [(c, None, f"Kunde {i}", "user", True) for i, c in enumerate(customers)],
    )
    rng = random.Random(7)
    chat_rows = []
    message_rows = []
    for customer in customers:
        chat_id = uuid.uuid4()
        closed = now - timedelta(days=8, minutes=rng.randrange(0, 24 * 60))
        created = closed - timedelta(minutes=30)
        chat_rows.append(
            (chat_id, "closed", customer, supporter, per_chat, created, created, created, closed)
        )
        for seq in range(1, per_chat + 1):
            sender = customer if seq % 2 == 1 else supporter
            text = SAMPLE_TEXTS[(seq - 1) % len(SAMPLE_TEXTS)]
            content, key_id = keyring.encrypt(text, chat_id, sender)
            message_rows.append(
                (
                    chat_id,
                    seq,
                    sender,
                    "text",
                    content,
                    key_id,
                    uuid.uuid4().hex,
                    created + timedelta(seconds=seq),
                )
            )
    await conn.copy_records_to_table(
        "chats",
        columns=[
            "id",
            "status",
            "customer_id",
            "supporter_id",
            "last_seq",
            "created_at",
            "updated_at",
            "assigned_at",
            "closed_at",
        ],
        records=chat_rows,
    )
    await conn.copy_records_to_table(
        "messages",
        columns=["chat_id", "seq", "sender_id", "kind", "content", "key_id", "client_msg_id", "created_at"],
        records=message_rows,
    )
    await conn.execute(
        "INSERT INTO suggested_replies (message_id, reply, confidence, source, title)"
        " SELECT id, 'Gern! Ich sehe nach und melde mich gleich.', 0.8, 'text_module', 'Nachsehen'"
        " FROM messages WHERE seq % 2 = 1"
    )
    await conn.execute(
        "UPDATE messages m SET suggestion_id = sr.id, suggestion_edited = false"
        " FROM messages p JOIN suggested_replies sr ON sr.message_id = p.id"
        " WHERE p.chat_id = m.chat_id AND p.seq = m.seq - 1 AND m.seq % 2 = 0"
    )
    await conn.execute("VACUUM ANALYZE")
    suggestions: int = await conn.fetchval("SELECT count(*) FROM suggested_replies")
    return suggestions


async def baseline_between(main: asyncpg.Connection, archive: asyncpg.Connection) -> float:
    """Binary COPY of the chat and message rows from the main into the archive database."""
    await archive.execute(
        "CREATE TABLE bench_chats (id uuid, status text, customer_id uuid, supporter_id uuid, last_seq int,"
        " escalation_reason text, created_at timestamptz, assigned_at timestamptz, closed_at timestamptz)"
    )
    await archive.execute(
        "CREATE TABLE bench_messages (id bigint, chat_id uuid, seq int, sender_id uuid, kind text,"
        " content bytea, key_id text, client_msg_id text, sources jsonb, created_at timestamptz)"
    )
    started = time.perf_counter()
    for table, query in (
        (
            "bench_chats",
            "SELECT id, status, customer_id, supporter_id, last_seq, escalation_reason, created_at,"
            " assigned_at, closed_at FROM chats WHERE status = 'closed'",
        ),
        (
            "bench_messages",
            "SELECT id, chat_id, seq, sender_id, kind, content, key_id, client_msg_id, sources, created_at"
            " FROM messages",
        ),
    ):
        buffer = io.BytesIO()
        await main.copy_from_query(query, output=buffer, format="binary")
        buffer.seek(0)
        await archive.copy_to_table(table, source=buffer, format="binary")
    seconds = time.perf_counter() - started
    await archive.execute("DROP TABLE bench_chats, bench_messages")
    return seconds


async def baseline_within(main: asyncpg.Connection) -> float:
    """INSERT INTO ... SELECT of the message rows inside the main database."""
    await main.execute("CREATE TABLE bench_messages (LIKE messages)")
    started = time.perf_counter()
    await main.execute("INSERT INTO bench_messages SELECT * FROM messages")
    seconds = time.perf_counter() - started
    await main.execute("DROP TABLE bench_messages")
    return seconds


async def verify(
    main: asyncpg.Connection, archive: asyncpg.Connection, keyring: KeyRing, chats: int, per_chat: int
) -> tuple[list[str], list[str]]:
    checks: list[str] = []
    failures: list[str] = []
    left = await main.fetchval("SELECT count(*) FROM chats")
    left_messages = await main.fetchval("SELECT count(*) FROM messages")
    left_suggestions = await main.fetchval("SELECT count(*) FROM suggested_replies")
    row = await archive.fetchrow(
        "SELECT count(*) AS chats, count(DISTINCT id) AS distinct_chats,"
        " sum(jsonb_array_length(chat_content -> 'messages')) AS messages FROM archived_chats"
    )
    assert row is not None
    if (left, left_messages, left_suggestions) != (0, 0, 0):
        failures.append(f"left in the main database: {left} chats, {left_messages} messages")
    if row["chats"] != chats or row["distinct_chats"] != chats:
        failures.append(f"archive holds {row['chats']} rows for {chats} chats")
    if row["messages"] != chats * per_chat:
        failures.append(f"archive holds {row['messages']} messages, expected {chats * per_chat}")
    opened = 0
    for sample in await archive.fetch(
        "SELECT id, chat_content FROM archived_chats ORDER BY random() LIMIT 20"
    ):
        for message in sample["chat_content"]["messages"]:
            text = keyring.decrypt(
                base64.b64decode(message["content"]),
                message["key_id"],
                sample["id"],
                uuid.UUID(message["sender"]["id"]),
            )
            if text != SAMPLE_TEXTS[(message["seq"] - 1) % len(SAMPLE_TEXTS)]:
                failures.append(f"chat {sample['id']} message {message['seq']} decrypts to other text")
            opened += 1
    checks.append(
        f"{row['chats']} chats archived once each with {row['messages']} messages; "
        f"0 chats, messages or suggested replies left in the main database; "
        f"{opened} sampled messages decrypt to their text"
    )
    return checks, failures


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embedded = db.EmbeddedPostgres(workdir)
        url = await asyncio.to_thread(embedded.start)
    try:
        # Explicit: an ARCHIVE_DATABASE_URL in the environment must never receive bench data.
        settings = Settings(_env_file=None, data_dir=workdir, archive_database_url=None)  # type: ignore[call-arg]
        pool = await db.create_pool(url, min_size=1, max_size=3)
        archive_pool = await archive_service.open_archive_pool(settings, url)
        try:
            keyring = KeyRing.parse(KeyRing.generate_spec())
            async with pool.acquire() as main, archive_pool.acquire() as archive:
                await db.ensure_vector_extension(main)
                await db.migrate(main)
                postgres = await main.fetchval("SHOW server_version")
                log(f"seeding {args.chats} chats with {args.messages} messages each")
                started = time.perf_counter()
                suggestions = await seed(main, keyring, args.chats, args.messages)
                seed_seconds = time.perf_counter() - started
                # Read everything once, so the baselines and the pass all start from a warm cache.
                await main.fetchval("SELECT sum(length(content)) FROM messages")
                log("baselines")
                between = await baseline_between(main, archive)
                within = await baseline_within(main)
            log(f"archiving pass, batches of {args.batch_size}")

            def progress(batch: int, total: int) -> None:
                if total % (args.batch_size * 10) == 0 or total == args.chats:
                    log(f"archived {batch} chats ({total} so far)")

            phases: dict[str, float] = {}
            with timed_phases(phases):
                result = await archive_service.archive_pass(
                    pool,
                    archive_pool,
                    older_than=timedelta(days=7),
                    batch_size=args.batch_size,
                    progress=progress,
                )
            async with pool.acquire() as main, archive_pool.acquire() as archive:
                checks, failures = await verify(main, archive, keyring, args.chats, args.messages)
        finally:
            await archive_pool.close()
            await pool.close()
    finally:
        await asyncio.to_thread(embedded.stop)
    return Outcome(
        chats=args.chats,
        messages=args.chats * args.messages,
        suggestions=suggestions,
        seed_seconds=seed_seconds,
        copy_between_seconds=between,
        copy_within_seconds=within,
        result=result,
        checks=checks,
        failures=failures,
        postgres=str(postgres),
        phases=phases,
    )


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    return f"{cpu}, {os.cpu_count() or '?'} cores, {ram} RAM, {platform.system()} {platform.release()}"


def now_iso() -> str:
    try:
        return subprocess.run(
            ["date", "-Iseconds"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def per_minute(count: int, seconds: float) -> str:
    return f"{count / seconds * 60:,.0f}" if seconds > 0 else "n/a"


def report(args: argparse.Namespace, outcome: Outcome) -> str:
    result = outcome.result
    lines = [
        "## Archive benchmark",
        "",
        f"Measured {now_iso()} with `make bench` (`scripts/bench_archive.py`).",
        "",
        f"- Machine: {machine()}, Python {platform.python_version()}, PostgreSQL {outcome.postgres}"
        " (embedded; main and archive database on the same server).",
        f"- Data: {outcome.chats:,} chats closed 8 days ago, {args.messages} encrypted messages each"
        f" ({outcome.messages:,} messages), {outcome.suggestions:,} suggested replies; seeded with COPY in"
        f" {outcome.seed_seconds:.1f} s.",
        f"- Pass: one `archive` pass, batches of {args.batch_size} (ARCHIVE_BATCH_SIZE): per batch one"
        " locking SELECT of the chats with their people, one SELECT of their messages, one INSERT ... ON"
        " CONFLICT DO NOTHING into the archive (committed), one DELETE (messages, suggested replies and"
        " invitations cascade), commit.",
        "- Baselines: the same chat and message rows copied without archive logic (no JSON, no delete):"
        " binary COPY out of the main and into plain tables of the archive database, and the messages"
        " copied inside the main database with INSERT INTO ... SELECT.",
        "",
        "| | seconds | chats/minute | messages/minute |",
        "|---|---:|---:|---:|",
        f"| archiving pass ({result.batches} batches) | {result.seconds:.2f} |"
        f" **{per_minute(result.chats, result.seconds)}** | {per_minute(result.messages, result.seconds)} |",
        f"| baseline: COPY main -> archive database | {outcome.copy_between_seconds:.2f} |"
        f" {per_minute(outcome.chats, outcome.copy_between_seconds)} |"
        f" {per_minute(outcome.messages, outcome.copy_between_seconds)} |",
        f"| baseline: INSERT INTO ... SELECT of the messages in the main database |"
        f" {outcome.copy_within_seconds:.2f} | |"
        f" {per_minute(outcome.messages, outcome.copy_within_seconds)} |",
        "",
    ]
    if outcome.copy_between_seconds > 0 and result.seconds > 0:
        lines.append(
            f"- The pass takes {result.seconds / outcome.copy_between_seconds:.1f}x the time of the raw"
            " copy between the databases."
        )
    if outcome.phases and result.seconds > 0:
        rest = result.seconds - sum(outcome.phases.values())
        parts = [f"{label} {seconds:.2f} s" for label, seconds in outcome.phases.items()]
        parts.append(f"the rest (building and encoding the JSON documents, transactions) {rest:.2f} s")
        lines.append("- Where the pass's time went: " + "; ".join(parts) + ".")
    lines += [f"- Checked: {check}." for check in outcome.checks]
    lines += [f"- **Failed: {failure}.**" for failure in outcome.failures]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--chats", type=int, default=20_000, help="closed old chats to archive (default 20000)"
    )
    parser.add_argument("--messages", type=int, default=10, help="messages per chat (default 10)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings.model_fields["archive_batch_size"].default,
        help="chats per batch",
    )
    parser.add_argument("--write", type=Path, default=None, help="put the summary into this Markdown file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_workdir(
        "support-chat-archive-bench-",
        lambda workdir: run(args, workdir),
        lambda outcome: report(args, outcome),
        args.write,
        (MARK_START, MARK_END),
    )


if __name__ == "__main__":
    sys.exit(main())
