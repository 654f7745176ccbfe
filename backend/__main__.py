"""The command line: serve, create-user, migrate."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from backend.core.config import Settings


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


async def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[object]]) -> object:
    from backend.core import db

    url, embedded = await asyncio.to_thread(db.resolve_database_url, settings)
    try:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await db.ensure_vector_extension(conn)
                await db.migrate(conn)
            return await work(pool)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
