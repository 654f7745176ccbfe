"""create_app(settings): the FastAPI app; its lifespan wires database, hub and writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend.archive import service as archive_service
from backend.archive.router import admin_router as archive_admin_router
from backend.archive.router import router as archive_router
from backend.auth.limits import LoginPolicy
from backend.auth.passwords import PasswordHasher
from backend.auth.router import router as auth_router
from backend.auth.tokens import TokenCodec
from backend.bot.engine import BotEngine
from backend.bot.gaps.router import router as gaps_router
from backend.bot.router import router as bot_router
from backend.bot.service import Turn
from backend.chat import rotation
from backend.chat import service as chat_service
from backend.chat.hub import Hub
from backend.chat.router import invitations_router
from backend.chat.router import router as chat_router
from backend.chat.writer import MessageWriter, StoredMessage
from backend.chat.ws import CLOSE_GOING_AWAY
from backend.chat.ws import router as ws_router
from backend.core import db
from backend.core.config import Settings
from backend.core.context import AppContext
from backend.core.errors import ErrorOut, install_error_handlers
from backend.core.metrics import Metrics
from backend.core.middleware import RequestGuard
from backend.core.pubsub import Broker, LocalBroker
from backend.core.ratelimit import KeyedLimiter
from backend.core.secrets import load_secrets
from backend.suggestions.engine import Job, SuggestionEngine
from backend.suggestions.router import router as suggestions_router

log = logging.getLogger(__name__)

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
TOKEN_CLEANUP_SECONDS = 3600


def make_broker(settings: Settings) -> Broker:
    """In-process fan-out, or Redis pub/sub between nodes when REDIS_URL is set."""
    if settings.redis_url is not None:
        from backend.core.redis_broker import RedisBroker

        return RedisBroker(settings.redis_url.get_secret_value())
    return LocalBroker()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the database, pool, broker and writer; stop them in reverse order."""
    settings: Settings = app.state.settings
    secrets = load_secrets(settings)
    url, embedded = await asyncio.to_thread(db.resolve_database_url, settings)
    try:
        await db.wait_for_database(url)
        pool = await db.create_pool(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        async with pool.acquire() as conn:
            await db.ensure_vector_extension(conn)
            await db.migrate(conn)
        await rotation.check_key_ids(pool, secrets.keyring)
        archive_pool = await archive_service.open_archive_pool(settings, url)
        metrics: Metrics = app.state.metrics
        broker = make_broker(settings)
        hub = Hub(broker, metrics)
        ctx_holder: list[AppContext] = []

        engine = SuggestionEngine(pool, hub, metrics, settings.suggestion_queue)
        bot: BotEngine | None = None  # built after the context below; the writer's callback reads it

        async def on_committed(stored: list[StoredMessage]) -> None:
            await chat_service.publish_committed(ctx_holder[0], stored)
            for item in stored:
                # Only put_nowait-like work here: the pipeline never delays a chat message.
                if not (item.created and item.pending.kind == "text" and item.pending.sender.role == "user"):
                    continue
                if settings.suggestions_enabled:
                    engine.submit(Job(item.chat_id, item.id, item.pending.text))
                if bot is not None:
                    bot.submit(Turn(item.chat_id, item.id, item.pending.text))

        writer = MessageWriter(pool, metrics, on_committed)
        ctx = AppContext(
            settings=settings,
            pool=pool,
            keyring=secrets.keyring,
            metrics=metrics,
            broker=broker,
            hasher=PasswordHasher(settings.bcrypt_rounds),
            tokens=TokenCodec(secrets.jwt_secret, settings.token_ttl_seconds),
            hub=hub,
            writer=writer,
            guest_limiter=KeyedLimiter(settings.guest_rate_per_minute / 60.0, settings.guest_rate_per_minute),
            message_limiter=KeyedLimiter(settings.http_message_rate, settings.http_message_burst),
            login_policy=LoginPolicy(
                account_failures=settings.login_account_failures,
                address_failures=settings.login_address_failures,
                lock_seconds=settings.login_lock_seconds,
                max_lock_seconds=settings.login_max_lock_seconds,
            ),
            archive_pool=archive_pool,
        )
        ctx_holder.append(ctx)
        app.state.ctx = ctx
        await broker.start(hub.deliver)
        writer.start()
        ctx.extras["suggestions"] = engine
        if settings.suggestions_enabled or settings.bot_enabled:
            engine.start(settings.embedding_model, settings.demo_knowledge_dir)
        if settings.bot_enabled:
            bot = BotEngine(
                ctx,
                get_retriever=lambda: engine.retriever,
                model_settled=engine.model_settled,
                # The supporter who takes the chat gets suggestions for the question that was handed over.
                on_handed_over=lambda turn: (
                    engine.submit(Job(turn.chat_id, turn.message_id, turn.text))
                    if settings.suggestions_enabled
                    else None
                ),
            )
            bot.start()
        housekeeping = asyncio.create_task(_housekeeping(ctx), name="housekeeping")
        archiver = asyncio.create_task(archive_service.run_periodically(ctx), name="archiver")
        log.info("ready: %s", "embedded PostgreSQL" if embedded is not None else "external PostgreSQL")
        try:
            yield
        finally:
            housekeeping.cancel()
            archiver.cancel()
            await asyncio.wait([archiver])
            for conn_ in list(hub.connections):
                conn_.push_close(CLOSE_GOING_AWAY)
            await writer.stop()
            if bot is not None:
                await bot.stop()
            await engine.stop()
            await broker.stop()
            await archive_pool.close()
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _housekeeping(ctx: AppContext) -> None:
    """Close sockets of revoked sessions every few seconds; forget expired tokens hourly."""
    from backend.auth.repository import AuthRepository

    last_cleanup = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            await chat_service.close_revoked_sockets(ctx)
            if loop.time() - last_cleanup > TOKEN_CLEANUP_SECONDS:
                async with ctx.pool.acquire() as conn:
                    await AuthRepository(conn).delete_expired_tokens()
                last_cleanup = loop.time()
        except Exception:
            log.exception("housekeeping failed; retrying")
        await asyncio.sleep(ctx.settings.revocation_sweep_seconds)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing starts until its lifespan runs."""
    settings = settings or Settings()
    app = FastAPI(
        title="Support chat",
        version="0.1.0",
        description="Customer support chat: customers, supporters, a bot and suggested replies.",
        lifespan=lifespan,
        responses={400: {"model": ErrorOut}, 415: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.add_middleware(RequestGuard, metrics=app.state.metrics, max_body_bytes=settings.max_request_bytes)
    app.include_router(auth_router)
    app.include_router(chat_router)
    app.include_router(invitations_router)
    app.include_router(suggestions_router)
    app.include_router(bot_router)
    app.include_router(gaps_router)
    app.include_router(archive_router)
    app.include_router(archive_admin_router)
    app.include_router(ws_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"model": ErrorOut}})
    async def readyz() -> JSONResponse:
        """The database answers and every migration is applied."""
        ctx: AppContext | None = getattr(app.state, "ctx", None)
        if ctx is None:
            return JSONResponse({"detail": "starting", "code": "unavailable"}, status_code=503)
        try:
            async with ctx.pool.acquire(timeout=2) as conn:
                pending = await db.pending_migrations(conn)
        except Exception:
            return JSONResponse({"detail": "database unreachable", "code": "unavailable"}, status_code=503)
        if pending:
            return JSONResponse({"detail": "migrations pending", "code": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if FRONTEND_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=FRONTEND_DIR), name="static")

        @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
        async def customer_page() -> FileResponse:
            return FileResponse(FRONTEND_DIR / "index.html")

        @app.api_route("/console", methods=["GET", "HEAD"], include_in_schema=False)
        async def console_page() -> FileResponse:
            return FileResponse(FRONTEND_DIR / "console.html")

    return app
