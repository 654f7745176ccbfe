"""Retrieval on the vendored development knowledge base: right articles, calibrated, robust input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from backend.__main__ import main
from backend.core import db
from backend.knowledge.cli import make_chunker
from backend.knowledge.embedder import SentenceTransformerEmbedder
from backend.knowledge.ingest import Ingestion
from backend.knowledge.ranking import load_params
from backend.knowledge.repository import PgKnowledgeStore
from backend.knowledge.schemas import SearchQuery
from backend.knowledge.service import Retriever, open_retriever
from backend.knowledge.terms import MATCH_BUDGET, tsquery_lexeme
from tests.conftest import run_coroutine

DEV = Path(__file__).resolve().parent.parent / "data" / "support-dev"


@pytest.fixture(scope="module")
def dev_database(new_database: Callable[[], str], embedder: SentenceTransformerEmbedder) -> str:
    """A database with the 27 development articles ingested (once for this module)."""
    url = new_database()

    async def load() -> None:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            report = await Ingestion(PgKnowledgeStore(pool), make_chunker(embedder), embedder).run(
                [DEV / "kb"]
            )
            assert report.failed == [] and len(report.articles.added) == 27
        finally:
            await pool.close()

    run_coroutine(load())
    return url


@pytest.fixture
async def retriever(dev_database: str, embedder: SentenceTransformerEmbedder) -> AsyncIterator[Retriever]:
    pool = await db.create_pool(dev_database, min_size=1, max_size=4)
    yield Retriever(PgKnowledgeStore(pool), embedder)
    await pool.close()


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("how do I cancel my order?", "Cancel an order"),
        ("i forgot my password, help", "Recover your password"),
        ("which payment methods do you accept", "Accepted payment methods"),
        ("how can I track my order", "Track your order"),
        ("I want to speak to a real person", "Talk to a human agent"),
        ("unsubscribe me from the newsletter", "Subscribe to or unsubscribe from the newsletter"),
    ],
)
async def test_fixture_questions_find_their_article(retriever: Retriever, question: str, title: str) -> None:
    hits = await retriever.search(question, limit=3)
    assert title in [hit.title for hit in hits]
    best = hits[0]
    assert best.url is not None and best.url.startswith("https://help.example.com/")
    assert best.passages and all(p.text for p in best.passages)
    assert all(0.0 <= hit.confidence <= 1.0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


async def test_confidence_separates_in_and_out_of_scope(retriever: Retriever) -> None:
    inside = await retriever.search("I need to cancel the order I placed yesterday")
    outside = await retriever.search("how do I add a column to a spreadsheet in google docs")
    assert inside[0].title == "Cancel an order"
    assert inside[0].confidence > 0.5 > outside[0].confidence


async def test_every_mode_answers(retriever: Retriever) -> None:
    for mode in ("vector", "fulltext", "hybrid"):
        hits = await retriever.search("refund status", mode=mode)  # type: ignore[arg-type]
        assert hits, mode
        assert any("refund" in hit.title.lower() for hit in hits[:3]), mode


@pytest.mark.parametrize(
    "question",
    [
        "🙂🙂🙂",
        "x" * 4000,
        "Wie kann ich meine Bestellung stornieren? " * 100,
        "Ich möchte mein Passwort zurücksetzen",
        "the of and",  # stop words only: the full-text query is empty
        "'; DROP TABLE knowledge_chunks; -- & | ! ( ) :* <->",
        "\x00\u202e\ufeff",
        "   ",
    ],
)
async def test_any_input_is_answered_without_error(retriever: Retriever, question: str) -> None:
    hits = await retriever.search(question)
    assert len(hits) <= 5
    assert all(0.0 <= hit.confidence <= 1.0 for hit in hits)


async def test_empty_knowledge_base(
    new_database: Callable[[], str], embedder: SentenceTransformerEmbedder
) -> None:
    pool = await db.create_pool(new_database(), min_size=1, max_size=2)
    try:
        store = PgKnowledgeStore(pool)
        assert await Retriever(store, embedder).search("cancel my order") == []
        assert await Retriever(store, None).search("cancel my order") == []
        opened = await open_retriever(pool, "all-MiniLM-L6-v2")
        assert opened.embedder is not None and opened.embedder.dimension == 384
        assert await opened.search("cancel my order") == []
        assert await store.search(SearchQuery("cancel", [0.0] * 384)) == []
    finally:
        await pool.close()


async def test_vector_search_uses_the_hnsw_index(retriever: Retriever) -> None:
    store = retriever.store
    assert isinstance(store, PgKnowledgeStore)
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN SELECT document_id FROM knowledge_chunks WHERE vector_dims(embedding) = 384"
                " ORDER BY embedding::vector(384) <=> $1::vector(384) LIMIT 10",
                "[" + ",".join(["0.1"] * 384) + "]",
            )
        )
    assert "knowledge_chunks_embedding_idx" in plan


def test_eval_and_calibrate_commands(
    pg_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    embedder: SentenceTransformerEmbedder,
) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", pg_server)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    plot = tmp_path / "eval.png"
    params = tmp_path / "params.json"
    args = ["--kb", str(DEV / "kb"), "--questions", str(DEV / "questions.jsonl"), "--sample", "100"]
    assert (
        main(["eval", *args, "--plot", str(plot), "--latency-questions", "10", "--write-params", str(params)])
        == 0
    )
    out = capsys.readouterr().out
    for expected in ("| vector only |", "| full text only |", "| hybrid |", "ECE", "p95", "| 0.5 |"):
        assert expected in out
    hybrid = next(line for line in out.splitlines() if line.startswith("| hybrid |"))
    recall_at_3 = float(hybrid.split("|")[3])
    assert recall_at_3 >= 0.9
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert load_params(params).weights.mean == 1.0

    target = tmp_path / "calibrated.json"
    assert main(["calibrate", *args, "--output", str(target)]) == 0
    assert "written to" in capsys.readouterr().out
    assert len(load_params(target).calibration.answer.coefficients) == 9

    async def leftovers() -> int:
        import asyncpg

        conn = await asyncpg.connect(pg_server)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_database WHERE datname LIKE 'support_chat_eval_%'"
                )
            )
        finally:
            await conn.close()

    assert run_coroutine(leftovers()) == 0


async def test_words_in_most_chunks_leave_the_full_text_search_working(retriever: Retriever) -> None:
    store = retriever.store
    assert isinstance(store, PgKnowledgeStore)
    await store.pool.execute("ANALYZE knowledge_chunks")
    store._frequencies = None  # the statistics just gathered, not a cached view of none
    async with store.pool.acquire() as conn:
        frequencies = await store._term_frequencies(conn)
    english = frequencies["tsv_en"]
    common = max(english.shares, key=english.shares.__getitem__)
    assert english.matches(common) > english.matches("zzzunseen")
    # A budget this small leaves every common word out of the full-text candidate query: the most
    # common word alone still answers in every mode, and a question still finds its article.
    store.match_budget = 1.0
    try:
        assert english.rare_query([common], False, store.match_budget) is None
        for mode in ("fulltext", "hybrid"):
            assert await retriever.search(common, mode=mode), mode  # type: ignore[arg-type]
        hits = await retriever.search("I need to cancel the order I placed yesterday")
        assert hits[0].title == "Cancel an order"
    finally:
        store.match_budget = MATCH_BUDGET


@pytest.mark.parametrize("lexeme", ["o'neil", "back\\slash", "a:b & c | !d", "''", "\\'", "ünïcödé"])
async def test_any_lexeme_is_one_literal_term_to_postgresql(retriever: Retriever, lexeme: str) -> None:
    store = retriever.store
    assert isinstance(store, PgKnowledgeStore)
    quoted = tsquery_lexeme(lexeme)
    # PostgreSQL prints a one-term query exactly as quoted: nothing was read as an operator.
    assert await store.pool.fetchval("SELECT $1::tsquery::text", quoted) == quoted
