"""The bot's pipeline: bounded per-worker queues, one chat always on the same worker, a deadline per turn.

A chat's messages are answered in order (one worker owns the chat); a full queue or a turn
past its deadline hands the chat to a person instead of leaving the customer in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable

from prometheus_client import Counter, Histogram

from backend.bot.llm import LlmClient
from backend.bot.privacy import parse_mask_setting
from backend.bot.service import Bot, Turn
from backend.core.context import AppContext
from backend.knowledge.service import Retriever

log = logging.getLogger(__name__)

# How long a turn waits for the embedding model at start-up before it counts as a bot error.
MODEL_WAIT_SECONDS = 60.0


class BotEngine:
    """Takes turns without waiting; workers run them off the chat's critical path."""

    def __init__(
        self,
        ctx: AppContext,
        get_retriever: Callable[[], Retriever | None],
        model_settled: asyncio.Event,
        on_handed_over: Callable[[Turn], None],
    ) -> None:
        settings = ctx.settings
        self.ctx = ctx
        self._get_retriever = get_retriever
        self._model_settled = model_settled
        self._on_handed_over = on_handed_over
        self.llm: LlmClient | None = None
        if settings.llm_base_url and settings.llm_model:
            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
            self.llm = LlmClient(
                settings.llm_base_url,
                settings.llm_model,
                key,
                settings.llm_timeout_seconds,
                parse_mask_setting(settings.llm_mask),
            )
        self.bot = Bot(ctx, self.llm)
        workers = settings.bot_workers
        per_worker = max(1, settings.bot_queue // workers)
        self._queues: list[asyncio.Queue[Turn]] = [asyncio.Queue(per_worker) for _ in range(workers)]
        self._tasks: list[asyncio.Task[None]] = []
        self._spill: set[asyncio.Task[None]] = set()
        registry = ctx.metrics.registry
        self.turns = Counter(
            "bot_turns_total", "Bot turns by outcome", ["outcome", "reason"], registry=registry
        )
        self.overflow = Counter(
            "bot_queue_overflow_total",
            "Messages handed over because the bot's queue was full",
            registry=registry,
        )
        self.latency = Histogram(
            "bot_answer_seconds",
            "From a customer message's commit to the bot's reply stored",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0),
            registry=registry,
        )

    def start(self) -> None:
        """Start the workers."""
        self._tasks = [
            asyncio.create_task(self._work(q), name=f"bot-{i}") for i, q in enumerate(self._queues)
        ]

    async def stop(self) -> None:
        """Stop the workers and close the LLM client."""
        for task in [*self._tasks, *self._spill]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._spill, return_exceptions=True)
        if self.llm is not None:
            await self.llm.aclose()

    @property
    def queued(self) -> int:
        """Turns waiting."""
        return sum(q.qsize() for q in self._queues)

    def submit(self, turn: Turn) -> None:
        """Queue a customer message (never blocks); a full queue hands the chat over at once."""
        queue = self._queues[zlib.crc32(turn.chat_id.bytes) % len(self._queues)]
        try:
            queue.put_nowait(turn)
        except asyncio.QueueFull:
            self.overflow.inc()
            task = asyncio.create_task(self._give_up(turn))
            self._spill.add(task)
            task.add_done_callback(self._spill.discard)

    async def _wait_for_model(self) -> Retriever | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._model_settled.wait(), MODEL_WAIT_SECONDS)
        return self._get_retriever()

    async def _work(self, queue: asyncio.Queue[Turn]) -> None:
        while True:
            turn = await queue.get()
            try:
                await self.handle(turn)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bot: a turn failed outside its own error handling")

    async def handle(self, turn: Turn) -> None:
        """Run one turn within the deadline; any failure becomes a polite hand-over."""
        try:
            async with asyncio.timeout(self.ctx.settings.bot_timeout_seconds):
                retriever = await self._wait_for_model()
                outcome = await self.bot.run(retriever, turn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # TimeoutError included: the customer must not wait in silence
            log.warning("bot: turn failed (%s); handing the chat over", type(exc).__name__)
            await self._give_up(turn)
            return
        if outcome is None:
            return
        self.turns.labels(outcome.outcome, outcome.reason or "").inc()
        self.latency.observe(time.monotonic() - turn.queued_at)
        if outcome.handed_over:
            self._on_handed_over(turn)

    async def _give_up(self, turn: Turn) -> None:
        try:
            await self.bot.fail(turn)
        except Exception:
            log.exception("bot: the hand-over after a failure failed too")
            return
        self.turns.labels("handed_over", "bot_error").inc()
        self._on_handed_over(turn)
