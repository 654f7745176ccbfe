"""Retrieval: embed the question, gather candidates from the store, fuse, calibrate, group by article."""

from __future__ import annotations

import logging

import asyncpg

from backend.knowledge.embedder import Embedder, in_model_thread
from backend.knowledge.ranking import Mode, RankingParams, load_params, rank
from backend.knowledge.schemas import ArticleCandidate, ArticleHit, SearchQuery
from backend.knowledge.store import KnowledgeStore

log = logging.getLogger(__name__)

# The model reads 256 word pieces; this bounds the work a pasted novel can cause.
MAX_QUERY_CHARS = 2000


class Retriever:
    """Answers "which articles answer this?" with calibrated confidences; safe for any input."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder | None, params: RankingParams | None = None):
        self.store = store
        self.embedder = embedder
        self.params = params or load_params()
        self._vectors_usable: bool | None = None

    async def _vectors_ok(self) -> bool:
        """Whether the stored vectors come from our model (checked once; empty stores re-check)."""
        if self.embedder is None:
            return False
        if self._vectors_usable is None:
            stored = await self.store.embedding_model()
            if stored is None:
                return False
            self._vectors_usable = stored == (self.embedder.name, self.embedder.dimension)
            if not self._vectors_usable:
                log.warning(
                    "knowledge vectors come from %s (%d dimensions), EMBEDDING_MODEL is %s: searching "
                    "full text only until `reembed` runs",
                    stored[0],
                    stored[1],
                    self.embedder.name,
                )
        return self._vectors_usable

    async def candidates(
        self, text: str, mode: Mode = "hybrid", *, vector: list[float] | None = None
    ) -> list[ArticleCandidate]:
        """The store's candidates with raw signals; `vector` skips embedding (evaluation batches)."""
        text = " ".join(text.split())[:MAX_QUERY_CHARS]
        if not text:
            return []
        if mode == "fulltext" or self.embedder is None or not await self._vectors_ok():
            vector = None
        elif vector is None:
            vector = (await in_model_thread(self.embedder.embed, [text]))[0]
        query = SearchQuery(text=text, vector=vector, use_fulltext=mode != "vector")
        return await self.store.search(query)

    async def search(self, text: str, *, limit: int = 5, mode: Mode = "hybrid") -> list[ArticleHit]:
        """The best articles for a question, best first, each with a confidence in [0, 1]."""
        ranked = rank(await self.candidates(text, mode), self.params.weights, mode)
        return hits(ranked, self.params, limit)


def hits(ranked: list[tuple[ArticleCandidate, float]], params: RankingParams, limit: int) -> list[ArticleHit]:
    """Ranked candidates to hits with calibrated confidences."""
    confidences = params.calibration.confidences(ranked, params.weights, max(limit, 1))
    found: list[ArticleHit] = []
    for (candidate, score), confidence in zip(ranked[:limit], confidences, strict=False):
        found.append(
            ArticleHit(
                document_id=candidate.document_id,
                identity=candidate.identity,
                title=candidate.title,
                url=candidate.url,
                language=candidate.language,
                score=score,
                confidence=confidence,
                passages=tuple(candidate.passages),
            )
        )
    return found


async def open_retriever(pool: asyncpg.Pool, model: str) -> Retriever:
    """A retriever over the PostgreSQL store with the configured model (loaded in a thread)."""
    from backend.knowledge.embedder import load_embedder
    from backend.knowledge.repository import PgKnowledgeStore

    embedder = await in_model_thread(load_embedder, model)
    return Retriever(PgKnowledgeStore(pool), embedder)
