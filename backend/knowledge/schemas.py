"""What moves between the knowledge pieces: parsed articles, chunks, text modules and search hits."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """A parsed article, before chunking."""

    identity: str
    source_path: str
    title: str
    body: str
    url: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A piece of an article small enough for the embedding model."""

    ordinal: int
    heading_path: tuple[str, ...]
    heading: str
    text: str


@dataclass(frozen=True)
class TextModule:
    """A canned reply for supporters."""

    shortcut: str
    title: str
    text: str
    source_path: str
    language: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredDocument:
    """What the store knows about an ingested article."""

    id: int
    identity: str
    source_path: str
    content_hash: str


@dataclass(frozen=True)
class SearchQuery:
    """One retrieval request: the text, its vector (None: full text only) and how many articles."""

    text: str
    vector: list[float] | None
    limit: int = 5
    use_fulltext: bool = True


@dataclass(frozen=True)
class Passage:
    """A chunk of a hit, with its cosine to the query."""

    chunk_id: int
    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    cosine: float


@dataclass
class ArticleCandidate:
    """An article with the raw retrieval signals of one query (before fusion)."""

    document_id: int
    identity: str
    title: str
    url: str | None
    language: str | None
    mean_cosine: float
    max_cosine: float
    fulltext: float
    lead_cosine: float = 0.0
    passages: list[Passage] = field(default_factory=list)


@dataclass(frozen=True)
class ArticleHit:
    """An article answering a query: fused score, calibrated confidence and its best passages."""

    document_id: int
    identity: str
    title: str
    url: str | None
    language: str | None
    score: float
    confidence: float
    passages: tuple[Passage, ...]
