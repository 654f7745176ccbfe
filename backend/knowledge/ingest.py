"""The ingestion pipeline: discover, parse, hash, chunk, embed in batches, index one article at a time.

The chunker, embedder and store are parameters, so a test or another model swaps one piece.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backend.knowledge.chunker import Chunker
from backend.knowledge.embedder import Embedder, in_model_thread
from backend.knowledge.parsers import (
    DEFAULT_MAX_FILE_BYTES,
    ParseError,
    discover,
    is_modules_file,
    parse_article,
    parse_modules,
    read_bytes,
    relative_name,
)
from backend.knowledge.schemas import Article, Chunk, StoredDocument, TextModule
from backend.knowledge.store import KnowledgeStore

log = logging.getLogger(__name__)

# Chunks embedded per model call: large enough to keep the model busy, small enough to show progress.
EMBED_BATCH = 64


@dataclass
class Counts:
    """Names per outcome."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def line(self) -> str:
        """`added 1, changed 0, unchanged 3, removed 0`."""
        return (
            f"added {len(self.added)}, changed {len(self.changed)}, unchanged {len(self.unchanged)}, "
            f"removed {len(self.removed)}"
        )


@dataclass
class IngestReport:
    """What an ingest run did (or, in a dry run, would do)."""

    articles: Counts = field(default_factory=Counts)
    modules: Counts = field(default_factory=Counts)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    dry_run: bool = False

    def summary_lines(self) -> list[str]:
        """The closing summary."""
        verb = "would be " if self.dry_run else ""
        lines = [
            f"articles: {self.articles.line()} ({verb}{self.chunks} chunks embedded)",
            f"text modules: {self.modules.line()}",
            f"failed: {len(self.failed)}",
        ]
        lines.extend(f"  {name}: {reason}" for name, reason in self.failed)
        if self.dry_run:
            lines.insert(0, "dry run: nothing was changed")
            for label, counts in (("article", self.articles), ("text module", self.modules)):
                for outcome, names in (
                    ("add", counts.added),
                    ("change", counts.changed),
                    ("remove", counts.removed),
                ):
                    lines.extend(f"  would {outcome} {label} {name}" for name in names)
        return lines


def article_hash(article: Article, chunker_signature: str) -> str:
    """Content hash of everything stored about an article (and of how it is cut)."""
    payload = [
        chunker_signature,
        article.identity,
        article.source_path,
        article.title,
        article.url,
        article.language,
        list(article.tags),
        article.body,
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def module_hash(module: TextModule) -> str:
    """Content hash of a text module."""
    payload = [
        module.shortcut,
        module.title,
        module.text,
        module.language,
        list(module.tags),
        module.source_path,
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def lead_text(article: Article) -> str:
    """The article as a whole, title first: embedded as one vector (the model reads its opening)."""
    body = article.body.lstrip()
    return body if body.startswith("# ") else f"# {article.title}\n\n{body}"


def module_embedding_text(module: TextModule) -> str:
    """What a text module is embedded as."""
    return f"{module.title}\n\n{module.text}"


def _read(path: Path, source_path: str, max_bytes: int) -> Article | list[TextModule]:
    """Read and parse one file (blocking)."""
    data = read_bytes(path, max_bytes)
    if is_modules_file(path):
        return parse_modules(source_path, data)
    return parse_article(path, source_path, data)


@dataclass
class _Pending:
    article: Article
    content_hash: str
    chunks: list[Chunk]
    is_new: bool


class Ingestion:
    """One ingest run over some files and folders."""

    def __init__(
        self,
        store: KnowledgeStore,
        chunker: Chunker,
        embedder: Embedder,
        *,
        dry_run: bool = False,
        prune: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.chunker = chunker
        self.embedder = embedder
        self.dry_run = dry_run
        self.prune = prune
        self.max_file_bytes = max_file_bytes
        self.progress = progress
        self.report = IngestReport(dry_run=dry_run)
        self._pending: list[_Pending] = []

    async def run(self, paths: Sequence[Path]) -> IngestReport:
        """Ingest every knowledge file under the paths; failures are reported, never fatal."""
        if self.dry_run:
            stored_model = await self.store.embedding_model()
            if stored_model is not None and stored_model != (self.embedder.name, self.embedder.dimension):
                from backend.knowledge.store import EmbeddingMismatch

                raise EmbeddingMismatch(*stored_model, self.embedder.name, self.embedder.dimension)
        else:
            await self.store.claim_embedding_model(self.embedder.name, self.embedder.dimension)
        stored = {document.identity: document for document in await self.store.documents()}
        stored_modules = await self.store.text_module_hashes()
        seen_articles: dict[str, str] = {}
        seen_modules: dict[str, str] = {}
        failed_paths: set[str] = set()
        modules: list[tuple[TextModule, str]] = []
        for path, root in discover(list(paths)):
            source_path = relative_name(path, root)
            if self.progress is not None:
                self.progress(source_path)
            try:
                parsed = await asyncio.to_thread(_read, path, source_path, self.max_file_bytes)
            except ParseError as exc:
                self._fail(str(path), str(exc), failed_paths, source_path)
                continue
            if isinstance(parsed, list):
                clash = next((m for m in parsed if m.shortcut.lower() in seen_modules), None)
                if clash is not None:
                    other = seen_modules[clash.shortcut.lower()]
                    self._fail(
                        str(path),
                        f"shortcut {clash.shortcut!r} is also in {other}",
                        failed_paths,
                        source_path,
                    )
                    continue
                for module in parsed:
                    seen_modules[module.shortcut.lower()] = source_path
                    modules.append((module, module_hash(module)))
                continue
            if parsed.identity in seen_articles:
                reason = f"same identity {parsed.identity!r} as {seen_articles[parsed.identity]}"
                self._fail(str(path), reason, failed_paths, source_path)
                continue
            seen_articles[parsed.identity] = source_path
            content_hash = article_hash(parsed, self.chunker.signature)
            known = stored.get(parsed.identity)
            if known is not None and known.content_hash == content_hash:
                self.report.articles.unchanged.append(parsed.identity)
                continue
            chunks = await asyncio.to_thread(self.chunker.chunk, parsed)
            self._pending.append(_Pending(parsed, content_hash, chunks, known is None))
            if sum(len(item.chunks) for item in self._pending) >= EMBED_BATCH:
                await self._flush()
        await self._flush()
        await self._store_modules(modules, stored_modules)
        if self.prune:
            await self._prune(stored, seen_articles, stored_modules, seen_modules, failed_paths)
        return self.report

    def _fail(self, name: str, reason: str, failed_paths: set[str], source_path: str) -> None:
        log.warning("skipped %s: %s", name, reason)
        self.report.failed.append((name, reason))
        failed_paths.add(source_path)

    async def _flush(self) -> None:
        """Embed the pending articles' chunks in one batch, then store each in its own transaction.

        The lead texts go in a call of their own: the model pads a batch to its longest text, and a
        lead (up to the model's 256 tokens) among 64-token chunks more than doubled the model's work
        (measured by scripts/bench_knowledge.py).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        texts = [chunk.text for item in pending for chunk in item.chunks]
        self.report.chunks += len(texts)
        leads = [lead_text(item.article) for item in pending]
        vectors: list[list[float]] = []
        lead_vectors: list[list[float]] = []
        if not self.dry_run:
            vectors = await in_model_thread(self.embedder.embed, texts)
            lead_vectors = await in_model_thread(self.embedder.embed, leads)
        start = 0
        for number, item in enumerate(pending):
            counts = self.report.articles.added if item.is_new else self.report.articles.changed
            if self.dry_run:
                counts.append(item.article.identity)
                continue
            mine = vectors[start : start + len(item.chunks)]
            start += len(item.chunks)
            try:
                lead = lead_vectors[number]
                await self.store.index(item.article, item.content_hash, item.chunks, mine, lead)
            except Exception as exc:  # one bad article must not stop the others
                log.exception("could not store %s", item.article.identity)
                self.report.failed.append((item.article.source_path, f"could not store: {exc}"))
                continue
            counts.append(item.article.identity)

    async def _store_modules(
        self, modules: list[tuple[TextModule, str]], stored: dict[str, tuple[str, str]]
    ) -> None:
        changed = [(m, h) for m, h in modules if stored.get(m.shortcut.lower(), ("", ""))[0] != h]
        unchanged = [m for m, h in modules if stored.get(m.shortcut.lower(), ("", ""))[0] == h]
        self.report.modules.unchanged.extend(m.shortcut for m in unchanged)
        if not changed:
            return
        vectors: list[list[float]] = []
        if not self.dry_run:
            texts = [module_embedding_text(m) for m, _ in changed]
            vectors = await in_model_thread(self.embedder.embed, texts)
        for index, (module, content_hash) in enumerate(changed):
            counts = (
                self.report.modules.changed
                if module.shortcut.lower() in stored
                else self.report.modules.added
            )
            if not self.dry_run:
                await self.store.upsert_text_module(module, content_hash, vectors[index])
            counts.append(module.shortcut)

    async def _prune(
        self,
        stored: dict[str, StoredDocument],
        seen_articles: dict[str, str],
        stored_modules: dict[str, tuple[str, str]],
        seen_modules: dict[str, str],
        failed_paths: set[str],
    ) -> None:
        """Remove what no file provides any more; a file that failed to parse keeps its old content."""
        for identity, document in stored.items():
            if identity in seen_articles or document.source_path in failed_paths:
                continue
            if self.dry_run or await self.store.delete(identity):
                self.report.articles.removed.append(identity)
        for shortcut, (_, source_path) in stored_modules.items():
            if shortcut in seen_modules or source_path in failed_paths:
                continue
            if self.dry_run or await self.store.delete_text_module(shortcut):
                self.report.modules.removed.append(shortcut)


async def reembed(store: KnowledgeStore, chunker: Chunker, embedder: Embedder) -> tuple[int, int, int]:
    """Re-chunk and re-embed every stored article and module with the configured model.

    Everything is computed first, then swapped in one transaction, so searches never see a mix.
    Returns (articles, chunks, modules).
    """
    from backend.knowledge.repository import PgKnowledgeStore

    if not isinstance(store, PgKnowledgeStore):
        raise TypeError("reembed needs the PostgreSQL store")
    articles = await store.stored_articles()
    modules = await store.stored_text_modules()
    # The lead texts in one call of their own, as in `Ingestion._flush` (padding, measured there).
    leads = await in_model_thread(embedder.embed, [lead_text(article) for article in articles])
    prepared = []
    total = 0
    for article, lead in zip(articles, leads, strict=True):
        chunks = await asyncio.to_thread(chunker.chunk, article)
        vectors = await in_model_thread(embedder.embed, [chunk.text for chunk in chunks])
        prepared.append((article, article_hash(article, chunker.signature), chunks, vectors, lead))
        total += len(chunks)
    module_vectors = await in_model_thread(embedder.embed, [module_embedding_text(m) for m in modules])
    await store.replace_all_vectors(
        embedder.name,
        embedder.dimension,
        prepared,
        [(m, module_hash(m), v) for m, v in zip(modules, module_vectors, strict=True)],
    )
    return len(articles), total, len(modules)
