"""Ingestion into PostgreSQL: every file type, bad files, idempotency, prune, dry run, models."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import asyncpg
import pytest

from backend.__main__ import main
from backend.core import db
from backend.knowledge.chunker import Chunker
from backend.knowledge.cli import make_chunker
from backend.knowledge.embedder import SentenceTransformerEmbedder
from backend.knowledge.ingest import Ingestion, reembed
from backend.knowledge.repository import PgKnowledgeStore
from backend.knowledge.service import Retriever
from backend.knowledge.store import EmbeddingMismatch
from tests.knowledge_helpers import HashEmbedder, write_kb


@pytest.fixture
async def store(new_database: Callable[[], str]) -> AsyncIterator[PgKnowledgeStore]:
    pool = await db.create_pool(new_database(), min_size=1, max_size=4)
    yield PgKnowledgeStore(pool)
    await pool.close()


def ingestion(store: PgKnowledgeStore, embedder: object, **options: object) -> Ingestion:
    chunker = make_chunker(embedder) if isinstance(embedder, SentenceTransformerEmbedder) else Chunker()
    return Ingestion(store, chunker, embedder, **options)  # type: ignore[arg-type]


async def test_ingests_every_type_and_text_modules(
    store: PgKnowledgeStore, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    write_kb(tmp_path)
    seen: list[str] = []
    report = await ingestion(store, embedder, progress=seen.append).run([tmp_path])
    assert report.failed == []
    assert sorted(report.articles.added) == [
        "account.html",
        "https://help.example.com/refunds",
        "passwort.md",
        "payment.pdf",
        "shipping/delivery.txt",
    ]
    assert sorted(report.modules.added) == ["bye", "greet"]
    assert len(seen) == 6
    rows = await store.pool.fetch(
        "SELECT identity, title, url, language, tags, source_path FROM knowledge_documents ORDER BY identity"
    )
    by_id = {r["identity"]: r for r in rows}
    assert by_id["https://help.example.com/refunds"]["title"] == "Refund policy"
    assert by_id["https://help.example.com/refunds"]["tags"] == ["money"]
    assert by_id["https://help.example.com/refunds"]["source_path"] == "refunds.md"
    assert by_id["passwort.md"]["language"] == "de"
    assert by_id["account.html"]["title"] == "Delete your account"
    assert by_id["payment.pdf"]["title"] == "Payment methods"
    assert by_id["shipping/delivery.txt"]["title"] == "Delivery times"
    lead = await store.pool.fetchval(
        "SELECT vector_dims(lead_embedding) FROM knowledge_documents WHERE source_path = 'payment.pdf'"
    )
    assert lead == 384
    model = await store.pool.fetchrow("SELECT model, dimension FROM knowledge_embedding")
    assert (model["model"], model["dimension"]) == ("all-MiniLM-L6-v2", 384)
    chunk = await store.pool.fetchrow(
        "SELECT c.heading, c.heading_path, vector_dims(c.embedding) AS dims, c.tsv_en::text AS en,"
        " c.tsv_de::text AS de FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
        " WHERE d.source_path = 'refunds.md' AND c.heading_path[2] = 'Exceptions'"
    )
    assert chunk["heading"] == "Refund policy > Exceptions" and chunk["dims"] == 384
    assert "'refund'" in chunk["en"] and "'gift'" in chunk["en"] and chunk["de"]
    module = await store.pool.fetchrow("SELECT title, text, vector_dims(embedding) AS dims FROM text_modules"
                                      " WHERE shortcut = 'greet'")  # fmt: skip
    assert module["title"] == "Greeting" and module["dims"] == 384


async def test_reingest_is_idempotent_and_changes_replace_chunks(
    store: PgKnowledgeStore, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    write_kb(tmp_path)
    await ingestion(store, embedder).run([tmp_path])
    again = await ingestion(store, embedder).run([tmp_path])
    assert again.articles.line() == "added 0, changed 0, unchanged 5, removed 0"
    assert again.modules.line() == "added 0, changed 0, unchanged 2, removed 0"
    assert again.chunks == 0

    old_ids = {r["id"] for r in await store.pool.fetch("SELECT id FROM knowledge_chunks")}
    target = tmp_path / "shipping" / "delivery.txt"
    target.write_text(target.read_text() + "\nParcels to islands take two days longer.\n")
    changed = await ingestion(store, embedder).run([tmp_path])
    assert changed.articles.changed == ["shipping/delivery.txt"]
    assert len(changed.articles.unchanged) == 4
    rows = await store.pool.fetch(
        "SELECT c.id, c.text FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
        " WHERE d.identity = 'shipping/delivery.txt'"
    )
    assert any("islands" in r["text"] for r in rows)
    assert not {r["id"] for r in rows} & old_ids

    (tmp_path / "replies.modules.yaml").write_text("- {shortcut: greet, title: Hi, text: Hello!}\n")
    (tmp_path / "account.html").unlink()
    dry = await ingestion(store, embedder, dry_run=True, prune=True).run([tmp_path])
    assert dry.articles.removed == ["account.html"] and dry.modules.removed == ["bye"]
    assert dry.modules.changed == ["greet"]
    assert "would remove article account.html" in "\n".join(dry.summary_lines())
    assert await store.pool.fetchval("SELECT count(*) FROM knowledge_documents") == 5
    assert await store.pool.fetchval("SELECT title FROM text_modules WHERE shortcut = 'greet'") == "Greeting"

    without_prune = await ingestion(store, embedder).run([tmp_path])
    assert without_prune.articles.removed == [] and without_prune.modules.changed == ["greet"]
    assert await store.pool.fetchval("SELECT count(*) FROM knowledge_documents") == 5
    pruned = await ingestion(store, embedder, prune=True).run([tmp_path])
    assert pruned.articles.removed == ["account.html"] and pruned.modules.removed == ["bye"]
    assert await store.pool.fetchval("SELECT count(*) FROM knowledge_documents") == 4
    assert await store.pool.fetchval("SELECT count(*) FROM text_modules") == 1


async def test_bad_files_are_named_and_skipped(
    store: PgKnowledgeStore, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    write_kb(tmp_path, with_pdf=False)
    await ingestion(store, embedder).run([tmp_path])
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really")
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02 binary")
    (tmp_path / "latin1.txt").write_bytes("Grüße aus Köln".encode("latin-1"))
    (tmp_path / "big.md").write_text("x " * 40_000)
    (tmp_path / "zz-dup.md").write_text("---\nurl: https://help.example.com/refunds\n---\nSame url again.")
    (tmp_path / "zz-clash.modules.yaml").write_text("- {shortcut: greet, title: Hi, text: again}\n")
    # A file that breaks keeps its article: --prune does not remove what an unreadable file provided.
    (tmp_path / "passwort.md").write_text("---\ntitle: [broken\n---\ntext")
    report = await ingestion(store, embedder, prune=True, max_file_bytes=50_000).run([tmp_path])
    failed = {Path(name).name: reason for name, reason in report.failed}
    assert set(failed) == {
        "broken.pdf", "binary.md", "latin1.txt", "big.md", "zz-dup.md", "zz-clash.modules.yaml",
        "passwort.md",
    }  # fmt: skip
    assert "too large" in failed["big.md"] and "binary" in failed["binary.md"]
    assert "front matter" in failed["passwort.md"] and "greet" in failed["zz-clash.modules.yaml"]
    assert report.articles.removed == []
    assert len(report.articles.unchanged) == 3
    assert await store.pool.fetchval("SELECT count(*) FROM knowledge_documents") == 4


async def test_failed_write_keeps_the_old_chunks(
    store: PgKnowledgeStore, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    write_kb(tmp_path, with_pdf=False)
    await ingestion(store, embedder).run([tmp_path])
    before = await store.pool.fetch("SELECT id, text FROM knowledge_chunks ORDER BY id")

    class Broken:
        """Same name and dimension, but vectors PostgreSQL refuses: the write fails half way."""

        name, dimension = embedder.name, embedder.dimension

        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[float("nan"), *v[1:]] for v in embedder.embed(texts)]

        def count_tokens(self, text: str) -> int:
            return embedder.count_tokens(text)

    (tmp_path / "refunds.md").write_text((tmp_path / "refunds.md").read_text() + "\nNew paragraph.\n")
    report = await Ingestion(store, make_chunker(embedder), Broken()).run([tmp_path])  # type: ignore[arg-type]
    assert [Path(n).name for n, _ in report.failed] == ["refunds.md"]
    after = await store.pool.fetch("SELECT id, text FROM knowledge_chunks ORDER BY id")
    assert after == before


async def test_another_model_is_refused_until_reembed(
    store: PgKnowledgeStore, embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    write_kb(tmp_path)
    await ingestion(store, embedder).run([tmp_path])
    other = HashEmbedder("hash-8", 8)
    with pytest.raises(EmbeddingMismatch, match="run `reembed`"):
        await ingestion(store, other).run([tmp_path])
    with pytest.raises(EmbeddingMismatch):
        await ingestion(store, other, dry_run=True).run([tmp_path])

    # The configured model's retriever falls back to full text while the vectors are foreign.
    foreign = Retriever(store, other)
    hits = await foreign.search("refund money back")
    assert hits and hits[0].title == "Refund policy"

    articles, chunks, modules = await reembed(store, Chunker(), other)
    assert (articles, modules) == (5, 2) and chunks >= 5
    assert await store.embedding_model() == ("hash-8", 8)
    definition = await store.pool.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'knowledge_chunks_embedding_idx'"
    )
    assert "vector(8)" in definition
    assert {
        r["d"] for r in await store.pool.fetch("SELECT vector_dims(embedding) AS d FROM knowledge_chunks")
    } == {8}
    hits = await Retriever(store, other).search("refund money back")
    assert "Refund policy" in [hit.title for hit in hits]
    again = await ingestion(store, other).run([tmp_path])
    assert len(again.articles.unchanged) == 5


async def test_first_ingest_with_another_dimension_builds_its_indexes(
    store: PgKnowledgeStore, tmp_path: Path
) -> None:
    write_kb(tmp_path, with_pdf=False)
    report = await ingestion(store, HashEmbedder("hash-16", 16)).run([tmp_path])
    assert report.failed == [] and len(report.articles.added) == 4
    definition = await store.pool.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'knowledge_documents_embedding_idx'"
    )
    assert "vector(16)" in definition


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, new_database: Callable[[], str], tmp_path: Path) -> str:
    url = new_database()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return url


def test_ingest_command(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], embedder: SentenceTransformerEmbedder
) -> None:
    kb = write_kb(tmp_path / "kb")
    assert main(["ingest", str(kb)]) == 0
    out = capsys.readouterr().out
    assert "articles: added 5, changed 0, unchanged 0, removed 0" in out
    assert "text modules: added 2" in out and "failed: 0" in out
    (kb / "bad.pdf").write_bytes(b"%PDF-1.4 nothing")
    assert main(["ingest", "--dry-run", str(kb), str(tmp_path / "missing.md")]) == 1
    captured = capsys.readouterr()
    assert "dry run" in captured.out and "unchanged 5" in captured.out
    assert "bad.pdf" in captured.out and "missing.md" in captured.out
    assert "2 file(s) could not be ingested" in captured.err

    async def count() -> int:
        conn = await asyncpg.connect(cli_env)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM knowledge_documents"))
        finally:
            await conn.close()

    from tests.conftest import run_coroutine

    assert run_coroutine(count()) == 5
    assert main(["reembed"]) == 0
    assert "re-embedded 5 articles" in capsys.readouterr().out
    assert main(["ingest", str(kb / "refunds.md")]) == 0
    assert "unchanged 1" in capsys.readouterr().out
    monkeypatch_model = pytest.MonkeyPatch()
    monkeypatch_model.setenv("EMBEDDING_MODEL", "/nonexistent/model")
    try:
        assert main(["ingest", str(kb)]) == 2
        assert "cannot load embedding model" in capsys.readouterr().err
    finally:
        monkeypatch_model.undo()
