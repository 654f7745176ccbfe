"""The suggestion pipeline: a bounded queue of customer messages and one worker.

Under overload stale work goes first: a newer message of a chat replaces its queued older
one, and a full queue drops its oldest job. Every drop counts in `suggestions_dropped_total`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import asyncpg
from prometheus_client import Counter, Histogram

from backend.chat.hub import Hub
from backend.core.metrics import Metrics
from backend.core.pubsub import Event
from backend.knowledge.service import Retriever
from backend.suggestions import service

log = logging.getLogger(__name__)


def suggestions_channel(chat_id: object) -> str:
    """The staff-only channel of a chat's suggestions."""
    return f"suggestions:{chat_id}"


@dataclass(frozen=True, slots=True)
class Job:
    """A committed customer message to suggest replies for."""

    chat_id: UUID
    message_id: int
    text: str
    queued_at: float = field(default_factory=time.monotonic)


class SuggestionEngine:
    """Takes jobs without ever waiting; a worker task computes, stores and pushes suggestions."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, metrics: Metrics, maxsize: int) -> None:
        self._pool = pool
        self._hub = hub
        self._maxsize = max(1, maxsize)
        self._jobs: OrderedDict[UUID, Job] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._task: asyncio.Task[None] | None = None
        self._loader: asyncio.Task[None] | None = None
        self.retriever: Retriever | None = None
        # Set once the model loaded or failed to: the bot stops waiting for it then.
        self.model_settled = asyncio.Event()
        self.processed = 0
        self.dropped = Counter(
            "suggestions_dropped_total",
            "Suggestion jobs dropped as stale under overload",
            registry=metrics.registry,
        )
        self.latency = Histogram(
            "suggestion_seconds",
            "From a customer message's commit to its suggestions pushed",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=metrics.registry,
        )

    def submit(self, job: Job) -> None:
        """Queue a job (never blocks): it replaces its chat's queued one; a full queue drops the oldest."""
        if job.chat_id in self._jobs:
            del self._jobs[job.chat_id]
            self.dropped.inc()
        elif len(self._jobs) >= self._maxsize:
            self._jobs.popitem(last=False)
            self.dropped.inc()
        self._jobs[job.chat_id] = job
        self._wakeup.set()

    @property
    def queued(self) -> int:
        """Jobs waiting."""
        return len(self._jobs)

    def pause(self) -> None:
        """Hold the worker after its current job (tests and operators)."""
        self._running.clear()

    def resume(self) -> None:
        """Let the worker go on."""
        self._running.set()

    def start(self, embedding_model: str | None, demo_knowledge_dir: str | None = None) -> None:
        """Start the worker; load the embedding model (and maybe the demo knowledge) in the background."""
        self._task = asyncio.create_task(self._work(), name="suggestions")
        if not embedding_model:
            self.model_settled.set()
        else:
            self._loader = asyncio.create_task(
                self._load(embedding_model, demo_knowledge_dir), name="suggestions-model"
            )

    async def stop(self) -> None:
        """Stop the worker and the loader."""
        for task in (self._task, self._loader):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._task, self._loader) if t is not None), return_exceptions=True
        )

    async def _load(self, model: str, demo_knowledge_dir: str | None) -> None:
        from backend.knowledge.service import open_retriever

        try:
            retriever = await open_retriever(self._pool, model)
        except Exception:
            log.exception("cannot load the embedding model: text modules only, the bot hands questions over")
            self.model_settled.set()
            return
        self.retriever = retriever
        self.model_settled.set()
        log.info("suggestions: embedding model %s loaded, knowledge suggestions on", model)
        if demo_knowledge_dir:
            try:
                await self._ingest_demo(retriever, Path(demo_knowledge_dir))
            except Exception:
                log.exception("demo knowledge base: ingest failed")

    async def _ingest_demo(self, retriever: Retriever, folder: Path) -> None:
        """Ingest the demo knowledge folder when the knowledge tables are empty (first start)."""
        from backend.knowledge.cli import make_chunker
        from backend.knowledge.ingest import Ingestion
        from backend.knowledge.repository import PgKnowledgeStore

        store = PgKnowledgeStore(self._pool)
        if (
            retriever.embedder is None
            or not await asyncio.to_thread(folder.is_dir)
            or await store.documents()
        ):
            return
        if await store.text_module_hashes():
            return
        log.info(
            "demo knowledge base: ingesting %s in the background (the knowledge tables are empty)", folder
        )
        embedder = retriever.embedder
        report = await Ingestion(store, make_chunker(embedder), embedder).run([folder])
        for line in report.summary_lines():
            log.info("demo knowledge base: %s", line)

    async def _work(self) -> None:
        while True:
            await self._running.wait()
            if not self._jobs:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            _, job = self._jobs.popitem(last=False)
            try:
                await self.handle(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("suggestions failed for a message; the worker goes on")
            finally:
                self.processed += 1
                self.latency.observe(time.monotonic() - job.queued_at)

    async def handle(self, job: Job) -> None:
        """Compute, store and push the suggestions of one message."""
        found = await service.compute(self._pool, self.retriever, job.chat_id, job.message_id, job.text)
        if found is None:
            return
        frame = json.dumps(
            {
                "type": "suggestions",
                "chat_id": str(job.chat_id),
                "message_id": job.message_id,
                "suggestions": [s.model_dump() for s in found],
            },
            ensure_ascii=False,
        )
        await self._hub.publish(suggestions_channel(job.chat_id), Event(frame=frame))
