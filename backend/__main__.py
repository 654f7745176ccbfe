"""The command line: serve, create-user, migrate, rotate-keys, key-usage, generate-key, archive, purge,
gaps."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg

from backend.core.config import Settings
from backend.core.crypto import KeyRing


def _settings() -> Settings:
    return Settings()


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP and WebSocket server."""
    import uvicorn

    from backend.app import create_app
    from backend.core.logging import configure_logging
    from backend.core.secrets import SecretConfigError, load_secrets
    from backend.core.server import uvicorn_config

    settings = _settings()
    demo = Path(__file__).resolve().parent.parent / "knowledge"
    if settings.demo_knowledge_dir is None and demo.is_dir():
        settings = settings.model_copy(update={"demo_knowledge_dir": str(demo)})
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    configure_logging(settings.logs_path, settings.log_level)
    try:
        load_secrets(settings)
    except SecretConfigError as exc:
        print(f"error: {exc}; refusing to start", file=sys.stderr)
        return 2
    scheme = "https" if args.ssl_certfile else "http"
    shown_host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host  # noqa: S104
    print(
        f"\nSupport chat starting on {scheme}://{host}:{port}\n"
        f"  customer page:      {scheme}://{shown_host}:{port}/\n"
        f"  supporter console:  {scheme}://{shown_host}:{port}/console\n"
        "  create a supporter: .venv/bin/python -m backend create-user "
        "--username alice --role supporter (asks for the password)\n",
        flush=True,
    )
    config = uvicorn_config(
        create_app(settings),
        settings,
        host=host,
        port=port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    uvicorn.Server(config).run()
    return 0


async def _with_pool(
    settings: Settings,
    work: Callable[..., Awaitable[object]],
    *,
    migrate: bool = True,
    archive: bool = False,
) -> object:
    """Run work(main pool) — or work(main pool, archive pool) — with the databases up."""
    from backend.core import db

    url, embedded = await asyncio.to_thread(db.resolve_database_url, settings)
    try:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            if migrate:
                async with pool.acquire() as conn:
                    await db.ensure_vector_extension(conn)
                    await db.migrate(conn)
            if not archive:
                return await work(pool)
            from backend.archive import service as archive_service

            archive_pool = await archive_service.open_archive_pool(settings, url, max_size=2)
            try:
                return await work(pool, archive_pool)
            finally:
                await archive_pool.close()
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create a supporter or admin account."""
    from backend.auth import service as auth_service
    from backend.auth.passwords import PasswordHasher
    from backend.core.errors import AppError

    settings = _settings()
    password = args.password or os.environ.get("SUPPORT_CHAT_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print("error: give --password, or run in a terminal to be asked", file=sys.stderr)
            return 2
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 2

    async def work(pool: asyncpg.Pool) -> object:
        return await auth_service.create_staff_user(
            pool,
            PasswordHasher(settings.bcrypt_rounds),
            username=args.username,
            password=password,
            role=args.role,
            display_name=args.display_name,
        )

    try:
        user = asyncio.run(_with_pool(settings, work))
    except AppError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(f"created {args.role} {args.username} ({getattr(user, 'id', '?')})")
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    """Apply pending database migrations."""

    async def work(pool: asyncpg.Pool) -> object:
        return None

    asyncio.run(_with_pool(_settings(), work))
    print("database schema is up to date")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Print security events, newest first."""
    from backend.core import audit

    async def work(pool: asyncpg.Pool) -> object:
        async with pool.acquire() as conn:
            return await audit.read(conn, action=args.action, target=args.target, limit=args.limit)

    rows = asyncio.run(_with_pool(_settings(), work))
    for row in rows:  # type: ignore[attr-defined]
        details = " ".join(f"{k}={v}" for k, v in sorted(row["details"].items()))
        print(
            f"{row['at'].isoformat()} {row['action']:<20} actor={row['actor_id'] or '-'} "
            f"target={row['target'] or '-'} address={row['address'] or '-'} {details}".rstrip()
        )
    return 0


def cmd_set_disabled(args: argparse.Namespace) -> int:
    """Disable or enable an account by username (its sessions end when disabled)."""
    from backend.auth.repository import AuthRepository
    from backend.core import audit

    disabled = args.command == "disable-user"

    async def work(pool: asyncpg.Pool) -> object:
        async with pool.acquire() as conn, conn.transaction():
            repo = AuthRepository(conn)
            user = await repo.user_by_username(args.username)
            if user is None:
                return None
            await repo.set_disabled(user["id"], disabled)
            if disabled:
                await repo.revoke_all_tokens(user["id"])
            await audit.record(conn, "user_disabled" if disabled else "user_enabled", target=str(user["id"]))
            return user["id"]

    user_id = asyncio.run(_with_pool(_settings(), work))
    if user_id is None:
        print(f"error: no user {args.username!r}", file=sys.stderr)
        return 1
    print(f"{'disabled' if disabled else 'enabled'} {args.username} ({user_id})")
    return 0


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError("the batch size is 1 to 100000")
    return value


def _configured_keyring(settings: Settings) -> KeyRing | None:
    """The configured message keys, or None after saying why they are unusable."""
    from backend.core.secrets import SecretConfigError, load_keyring

    try:
        return load_keyring(settings)
    except SecretConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    """Re-encrypt the messages under older keys with the active (first) key of MESSAGE_KEYS."""
    from backend.archive import service as archive_service
    from backend.chat import rotation

    settings = _settings()
    keyring = _configured_keyring(settings)
    if keyring is None:
        return 2

    def show(step: rotation.RotationProgress) -> None:
        for failure in step.failures:
            print(f"message {failure.message_id} skipped: {failure.reason}", file=sys.stderr, flush=True)
        print(step.line(), flush=True)

    async def work(pool: asyncpg.Pool, archive_pool: asyncpg.Pool) -> object:
        result = await rotation.rotate_keys(pool, keyring, batch_size=args.batch_size, progress=show)
        archived = await archive_service.key_usage(archive_pool)
        return dataclasses.replace(result, usage=dataclasses.replace(result.usage, archived=archived))

    result = asyncio.run(_with_pool(settings, work, archive=True))
    assert isinstance(result, rotation.RotationResult)
    print("\n".join(result.summary_lines()))
    if result.failures:
        print(f"error: {len(result.failures)} messages could not be re-encrypted", file=sys.stderr)
        return 1
    if result.usage.remaining:
        print(
            f"error: {result.usage.remaining} messages still use older keys (locked meanwhile, or a node "
            "still writes with an older key); run rotate-keys again",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_key_usage(_: argparse.Namespace) -> int:
    """Print how many messages each key id encrypted, in the main database and the archive."""
    from backend.archive import service as archive_service
    from backend.chat import rotation

    settings = _settings()
    keyring = _configured_keyring(settings)
    if keyring is None:
        return 2

    async def work(pool: asyncpg.Pool, archive_pool: asyncpg.Pool) -> object:
        return await rotation.key_usage(pool, keyring, await archive_service.key_usage(archive_pool))

    try:
        usage = asyncio.run(_with_pool(settings, work, migrate=False, archive=True))
    except asyncpg.UndefinedTableError:
        print("error: the database has no schema yet; run migrate", file=sys.stderr)
        return 2
    assert isinstance(usage, rotation.KeyUsage)
    print("\n".join(usage.lines()))
    if usage.unknown:
        print(
            f"error: messages use keys missing from MESSAGE_KEYS: {', '.join(usage.unknown)}", file=sys.stderr
        )
        return 1
    return 0


def cmd_generate_key(args: argparse.Namespace) -> int:
    """Print a fresh `id:key` entry for MESSAGE_KEYS."""
    from backend.core.crypto import KeyConfigError, KeyRing
    from backend.core.secrets import SecretConfigError, load_keyring

    key_id = args.id or datetime.now(UTC).strftime("k%Y%m%d")
    spec = KeyRing.generate_spec(key_id)
    try:
        KeyRing.parse(spec)
    except KeyConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        configured = load_keyring(_settings()).keys
    except SecretConfigError:
        configured = {}
    if key_id in configured:
        print(f"error: MESSAGE_KEYS already has a key {key_id!r}; choose another --id", file=sys.stderr)
        return 2
    print(spec)
    print(
        "put it first in MESSAGE_KEYS on every node (keep the old keys after it), restart them, "
        "then run rotate-keys",
        file=sys.stderr,
    )
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """Run one archiving pass: closed chats older than ARCHIVE_AFTER_DAYS move to the archive."""
    from datetime import timedelta

    from backend.archive import service as archive_service

    settings = _settings()
    days = args.older_than_days if args.older_than_days is not None else settings.archive_after_days

    def show(batch: int, total: int) -> None:
        print(f"archived {batch} chats ({total} so far)", flush=True)

    async def work(pool: asyncpg.Pool, archive_pool: asyncpg.Pool) -> object:
        return await archive_service.archive_pass(
            pool,
            archive_pool,
            older_than=timedelta(days=days),
            batch_size=settings.archive_batch_size,
            progress=show,
        )

    try:
        result = asyncio.run(_with_pool(settings, work, archive=True))
    except archive_service.ArchiveConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert isinstance(result, archive_service.ArchiveResult)
    if result.skipped:
        print("another archiving pass is running; this one did nothing")
        return 0
    per_minute = result.chats / result.seconds * 60 if result.seconds > 0 else 0.0
    print(
        f"archived {result.chats} chats with {result.messages} messages, closed more than {days} days ago,"
        f" in {result.seconds:.1f} s ({per_minute:.0f} chats/minute)"
    )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Erase one customer from both databases (right to erasure)."""
    from backend.archive import service as archive_service
    from backend.archive.schemas import PurgeRead
    from backend.core.errors import AppError
    from backend.core.pubsub import Broker

    if not args.yes:
        print("error: this erases the customer's data in both databases; add --yes", file=sys.stderr)
        return 2
    settings = _settings()

    async def work(pool: asyncpg.Pool, archive_pool: asyncpg.Pool) -> object:
        broker: Broker | None = None
        if settings.redis_url is not None:
            # Other nodes hear the close request for the customer's sockets through Redis.
            from backend.core.redis_broker import RedisBroker

            broker = RedisBroker(settings.redis_url.get_secret_value())
            await broker.start(lambda _channel, _event: None)
        try:
            return await archive_service.purge_customer(pool, archive_pool, broker, args.customer)
        finally:
            if broker is not None:
                await broker.stop()

    try:
        result = asyncio.run(_with_pool(settings, work, archive=True))
    except AppError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    except archive_service.ArchiveConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert isinstance(result, PurgeRead)
    account = "deleted" if result.user_deleted else "anonymised"
    print(
        f"purged customer {args.customer}: {result.chats_deleted} chats, "
        f"{result.archived_chats_deleted} archived chats, {result.messages_deleted} messages deleted; "
        f"account {account}"
    )
    return 0


def _since(text: str) -> datetime:
    """A --since value: YYYY-MM-DD (midnight) or an ISO time; without offset in Europe/Berlin."""
    from backend.core.timefmt import SERVER_ZONE

    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("give a date like 2025-01-31 or an ISO time") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=SERVER_ZONE)


def _gap_limit(text: str) -> int:
    from backend.bot.gaps.service import MAX_LIMIT

    value = int(text)
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"the limit is 1 to {MAX_LIMIT}")
    return value


def _top(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("--top is 0 (all) or more")
    return value


def cmd_gaps(args: argparse.Namespace) -> int:
    """Print the knowledge gaps: questions the bot could not help with, grouped, most frequent first."""
    from backend.bot.gaps import service as gaps_service
    from backend.bot.gaps.schemas import GapReportRead
    from backend.knowledge.embedder import Embedder, EmbedderError, load_embedder

    settings = _settings()
    keyring = _configured_keyring(settings)
    if keyring is None:
        return 2
    embedder: Embedder | None = None
    try:
        embedder = load_embedder(settings.embedding_model)
    except EmbedderError as exc:
        print(f"warning: {exc}; grouping questions by identical text instead", file=sys.stderr)

    limit = args.limit if args.limit is not None else gaps_service.DEFAULT_LIMIT

    async def work(pool: asyncpg.Pool) -> object:
        return await gaps_service.report(pool, keyring, embedder, settings.gaps_similarity, args.since, limit)

    report = asyncio.run(_with_pool(settings, work))
    assert isinstance(report, GapReportRead)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print("\n".join(gaps_service.report_lines(report, top=args.top or None)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="support-chat", description="AI-assisted customer support chat")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (HOST, PORT and the other settings apply)")
    serve.add_argument("--host", default=None, help="interface to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: PORT or 8000)")
    serve.add_argument("--ssl-certfile", default=None, help="TLS certificate (PEM) to serve HTTPS/WSS")
    serve.add_argument("--ssl-keyfile", default=None, help="TLS private key (PEM)")
    serve.set_defaults(func=cmd_serve)

    create = sub.add_parser("create-user", help="create a supporter or admin account")
    create.add_argument("--username", required=True)
    create.add_argument("--password", default=None, help="omit to be asked (or set SUPPORT_CHAT_PASSWORD)")
    create.add_argument("--role", choices=("supporter", "admin"), default="supporter")
    create.add_argument("--display-name", default=None)
    create.set_defaults(func=cmd_create_user)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(func=cmd_migrate)

    rotate = sub.add_parser("rotate-keys", help="re-encrypt messages under older keys with the active key")
    rotate.add_argument("--batch-size", type=_batch_size, default=500, help="messages per transaction")
    rotate.set_defaults(func=cmd_rotate_keys)

    usage = sub.add_parser("key-usage", help="count messages per message key id")
    usage.set_defaults(func=cmd_key_usage)

    generate = sub.add_parser("generate-key", help="print a fresh MESSAGE_KEYS entry")
    generate.add_argument("--id", default=None, help="key id (default: k and today's date, e.g. k20250101)")
    generate.set_defaults(func=cmd_generate_key)

    audit_cmd = sub.add_parser("audit", help="print security events, newest first")
    audit_cmd.add_argument(
        "--action", default=None, help="only this event (login_failed, user_disabled, ...)"
    )
    audit_cmd.add_argument("--target", default=None, help="only events about this target")
    audit_cmd.add_argument("--limit", type=int, default=50)
    audit_cmd.set_defaults(func=cmd_audit)

    for name, text in (
        ("disable-user", "disable an account (its sessions end)"),
        ("enable-user", "enable it again"),
    ):
        toggle = sub.add_parser(name, help=text)
        toggle.add_argument("--username", required=True)
        toggle.set_defaults(func=cmd_set_disabled)

    archive = sub.add_parser("archive", help="move closed chats older than ARCHIVE_AFTER_DAYS to the archive")
    archive.add_argument(
        "--older-than-days", type=int, default=None, help="override ARCHIVE_AFTER_DAYS for this pass"
    )
    archive.set_defaults(func=cmd_archive)

    purge = sub.add_parser("purge", help="erase one customer's data from both databases")
    purge.add_argument("--customer", type=UUID, required=True, metavar="USER_ID")
    purge.add_argument("--yes", action="store_true", help="confirm: the data is gone for good")
    purge.set_defaults(func=cmd_purge)

    gaps = sub.add_parser("gaps", help="print the questions the bot could not help with, grouped")
    gaps.add_argument("--since", type=_since, default=None, help="only questions since YYYY-MM-DD")
    gaps.add_argument(
        "--limit", type=_gap_limit, default=None, help="read at most N questions, newest first (default 5000)"
    )
    gaps.add_argument("--top", type=_top, default=30, help="groups in the table (0: all; --json has all)")
    gaps.add_argument("--json", action="store_true", help="print the report as JSON")
    gaps.set_defaults(func=cmd_gaps)

    from backend.knowledge import cli as knowledge_cli

    knowledge_cli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
