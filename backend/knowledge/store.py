"""The knowledge store's interface: what ingestion and retrieval need, whatever holds the vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from backend.knowledge.schemas import (
    Article,
    ArticleCandidate,
    Chunk,
    SearchQuery,
    StoredDocument,
    TextModule,
)


class EmbeddingMismatch(Exception):
    """The store holds vectors of another model than the one configured."""

    def __init__(self, stored: str, stored_dimension: int, configured: str, dimension: int) -> None:
        super().__init__(
            f"the knowledge base was embedded with {stored} ({stored_dimension} dimensions) but "
            f"EMBEDDING_MODEL is {configured} ({dimension}); run `reembed` to replace every vector"
        )
        self.stored = stored
        self.configured = configured


class KnowledgeStore(Protocol):
    """Index, delete and search articles; keep text modules; remember the embedding model."""

    async def embedding_model(self) -> tuple[str, int] | None:
        """The model name and dimension of the stored vectors; None before the first ingest."""
        ...

    async def claim_embedding_model(self, name: str, dimension: int) -> None:
        """Record the model on first use; raise EmbeddingMismatch if another one is stored."""
        ...

    async def documents(self) -> list[StoredDocument]:
        """Every stored article's identity, source path and content hash."""
        ...

    async def index(
        self,
        article: Article,
        content_hash: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        lead: Sequence[float] | None = None,
    ) -> None:
        """Insert or replace an article with its chunks (and its whole-article vector), atomically."""
        ...

    async def delete(self, identity: str) -> bool:
        """Remove an article and its chunks; whether it existed."""
        ...

    async def search(self, query: SearchQuery, *, candidates: int = 50) -> list[ArticleCandidate]:
        """Articles near the query by vector and full text, with their raw signals."""
        ...

    async def text_module_hashes(self) -> dict[str, tuple[str, str]]:
        """shortcut (lower case) -> (content hash, source path) of every stored module."""
        ...

    async def upsert_text_module(
        self, module: TextModule, content_hash: str, vector: Sequence[float] | None
    ) -> None:
        """Insert or replace a text module by its shortcut."""
        ...

    async def delete_text_module(self, shortcut: str) -> bool:
        """Remove a text module; whether it existed."""
        ...
