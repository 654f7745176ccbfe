"""The knowledge store in PostgreSQL: pgvector HNSW for vectors, GIN full text in English and German."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import asyncpg

from backend.knowledge.schemas import (
    Article,
    ArticleCandidate,
    Chunk,
    Passage,
    SearchQuery,
    StoredDocument,
    TextModule,
)
from backend.knowledge.store import EmbeddingMismatch
from backend.knowledge.terms import MATCH_BUDGET, TermFrequencies

# Any constant works: it serialises the first claim of the embedding model and `reembed`.
_MODEL_LOCK_ID = 7_420_113_101
_TOKEN = re.compile(r"[^\W_]+")
_MAX_QUERY_TOKENS = 64
# The HNSW candidate list; pgvector's default (40) would cap the neighbours a query can return.
_EF_SEARCH = 200
PASSAGES_PER_ARTICLE = 3
# Seconds the lexeme statistics are reused: they change only when the chunks are analysed again.
_STATISTICS_TTL = 60.0
# Every signal of the candidate articles, aggregated per article in SQL so that only their best
# passages travel. $1 the article ids, $2 the OR query (NULL: no full text), $3 the query vector
# (NULL: cosines 0; DIM is then any valid number), $4 passages per article.
_SIGNALS_SQL = (
    "WITH q AS (SELECT to_tsquery('english', coalesce($2, '')) AS en,"
    " to_tsquery('german', coalesce($2, '')) AS de),"
    " scored AS (SELECT c.id, c.document_id, c.ordinal,"
    " coalesce(CASE WHEN vector_dims(c.embedding) = DIM"
    " THEN 1 - (c.embedding::vector(DIM) <=> $3::vector(DIM)) END, 0) AS cosine,"
    " CASE WHEN $2::text IS NULL THEN 0"
    " WHEN left(c.language, 2) = 'en' THEN ts_rank(c.tsv_en, q.en)"
    " WHEN left(c.language, 2) = 'de' THEN ts_rank(c.tsv_de, q.de)"
    " ELSE greatest(ts_rank(c.tsv_en, q.en), ts_rank(c.tsv_de, q.de)) END AS rank"
    " FROM knowledge_chunks c, q WHERE c.document_id = ANY($1::bigint[])),"
    " placed AS (SELECT scored.*, avg(cosine) OVER article AS mean_cosine,"
    " max(cosine) OVER article AS max_cosine, max(rank) OVER article AS best_rank,"
    " row_number() OVER (PARTITION BY document_id ORDER BY cosine DESC, rank DESC, ordinal) AS place"
    " FROM scored WINDOW article AS (PARTITION BY document_id)),"
    # Materialised: the planner then knows it holds only the candidates, not the whole table.
    " docs AS MATERIALIZED (SELECT id, identity, title, url, language,"
    " coalesce(CASE WHEN vector_dims(lead_embedding) = DIM"
    " THEN 1 - (lead_embedding::vector(DIM) <=> $3::vector(DIM)) END, 0) AS lead"
    " FROM knowledge_documents WHERE id = ANY($1::bigint[]))"
    " SELECT p.id, p.document_id, p.ordinal, p.cosine, p.mean_cosine, p.max_cosine, p.best_rank,"
    " c.heading_path, c.text, d.identity, d.title, d.url, d.language, d.lead"
    " FROM placed p JOIN knowledge_chunks c ON c.id = p.id JOIN docs d ON d.id = p.document_id"
    " WHERE p.place <= $4 ORDER BY p.document_id, p.place"
)


def vector_literal(values: Sequence[float]) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{value:.7g}" for value in values) + "]"


def query_words(text: str) -> list[str]:
    """The query's distinct words, letters and digits only (so none is tsquery syntax), bounded."""
    words = list(dict.fromkeys(word[:100] for word in _TOKEN.findall(text.lower())))
    return words[:_MAX_QUERY_TOKENS]


def or_query(text: str) -> str | None:
    """The query's words joined by OR for to_tsquery (None without words).

    OR rather than websearch's AND because customers write many words, few of which an article
    repeats.
    """
    return " | ".join(query_words(text)) or None


def _dimension(value: int) -> int:
    # The dimension is written into SQL (a type modifier cannot be a parameter): only an int passes.
    dimension = int(value)
    if not 0 < dimension <= 16_000:
        raise ValueError(f"unusable vector dimension {value!r}")
    return dimension


def _typed(sql: str, dimension: int) -> str:
    """Write the vector dimension into SQL where the text says DIM (a validated int, never input)."""
    return sql.replace("DIM", str(_dimension(dimension)))


def _index_sql(dimension: int) -> list[str]:
    dim = _dimension(dimension)
    return [
        "DROP INDEX IF EXISTS knowledge_chunks_embedding_idx",
        "DROP INDEX IF EXISTS knowledge_documents_embedding_idx",
        # Partial: rows of another dimension (the old model's, still visible to other sessions
        # while `reembed` swaps them) are left out instead of failing the cast.
        _typed(
            "CREATE INDEX knowledge_chunks_embedding_idx ON knowledge_chunks"
            " USING hnsw ((embedding::vector(DIM)) vector_cosine_ops) WHERE vector_dims(embedding) = DIM",
            dim,
        ),
        _typed(
            "CREATE INDEX knowledge_documents_embedding_idx ON knowledge_documents"
            " USING hnsw ((embedding::vector(DIM)) vector_ip_ops) WHERE vector_dims(embedding) = DIM",
            dim,
        ),
    ]


def centroid(vectors: Sequence[Sequence[float]]) -> list[float] | None:
    """The mean of unit vectors: its inner product with a query is the mean cosine."""
    if not vectors:
        return None
    size = len(vectors)
    return [sum(column) / size for column in zip(*vectors, strict=True)]


class PgKnowledgeStore:
    """KnowledgeStore on a pool; each write method is one transaction."""

    def __init__(self, pool: asyncpg.Pool, *, match_budget: float = MATCH_BUDGET) -> None:
        self.pool = pool
        self.match_budget = match_budget
        self._frequencies: dict[str, TermFrequencies] | None = None
        self._frequencies_at = 0.0

    async def embedding_model(self) -> tuple[str, int] | None:
        """The model name and dimension of the stored vectors; None before the first ingest."""
        row = await self.pool.fetchrow("SELECT model, dimension FROM knowledge_embedding")
        return (row["model"], row["dimension"]) if row is not None else None

    async def claim_embedding_model(self, name: str, dimension: int) -> None:
        """Record the model on first use (with indexes of its dimension); refuse another one."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MODEL_LOCK_ID)
            row = await conn.fetchrow("SELECT model, dimension FROM knowledge_embedding")
            if row is not None:
                if row["model"] != name or row["dimension"] != dimension:
                    raise EmbeddingMismatch(row["model"], row["dimension"], name, dimension)
                return
            if await self._indexed_dimension(conn) != dimension:
                for statement in _index_sql(dimension):
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO knowledge_embedding (model, dimension) VALUES ($1, $2)", name, dimension
            )

    @staticmethod
    async def _indexed_dimension(conn: asyncpg.Connection) -> int | None:
        definition = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'knowledge_chunks_embedding_idx'"
        )
        match = re.search(r"vector\((\d+)\)", definition or "")
        return int(match.group(1)) if match else None

    async def documents(self) -> list[StoredDocument]:
        """Every stored article's identity, source path and content hash."""
        rows = await self.pool.fetch(
            "SELECT id, identity, source_path, content_hash FROM knowledge_documents ORDER BY identity"
        )
        return [StoredDocument(r["id"], r["identity"], r["source_path"], r["content_hash"]) for r in rows]

    async def index(
        self,
        article: Article,
        content_hash: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        lead: Sequence[float] | None = None,
    ) -> None:
        """Insert or replace an article with its chunks in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._write_document(conn, article, content_hash, chunks, vectors, lead)

    @staticmethod
    async def _write_document(
        conn: asyncpg.Connection,
        article: Article,
        content_hash: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        lead: Sequence[float] | None,
    ) -> int:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        mean = centroid(vectors)
        document_id: int = await conn.fetchval(
            "INSERT INTO knowledge_documents"
            " (identity, source_path, title, url, language, tags, body, content_hash, embedding,"
            " lead_embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::vector, $10::vector)"
            " ON CONFLICT (identity) DO UPDATE SET source_path = EXCLUDED.source_path,"
            " title = EXCLUDED.title, url = EXCLUDED.url, language = EXCLUDED.language,"
            " tags = EXCLUDED.tags, body = EXCLUDED.body, content_hash = EXCLUDED.content_hash,"
            " embedding = EXCLUDED.embedding, lead_embedding = EXCLUDED.lead_embedding, updated_at = now()"
            " RETURNING id",
            article.identity,
            article.source_path,
            article.title,
            article.url,
            article.language,
            list(article.tags),
            article.body,
            content_hash,
            vector_literal(mean) if mean is not None else None,
            vector_literal(lead) if lead is not None else None,
        )
        await conn.execute("DELETE FROM knowledge_chunks WHERE document_id = $1", document_id)
        await conn.executemany(
            "INSERT INTO knowledge_chunks (document_id, ordinal, heading_path, heading, text, embedding,"
            " language) VALUES ($1, $2, $3, $4, $5, $6::vector, $7)",
            [
                (document_id, chunk.ordinal, list(chunk.heading_path), chunk.heading, chunk.text,
                 vector_literal(vector), article.language)
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
        )  # fmt: skip
        return document_id

    async def delete(self, identity: str) -> bool:
        """Remove an article (its chunks go with it); whether it existed."""
        status: str = await self.pool.execute("DELETE FROM knowledge_documents WHERE identity = $1", identity)
        return status.endswith(" 1")

    async def search(self, query: SearchQuery, *, candidates: int = 50) -> list[ArticleCandidate]:
        """Candidate articles by chunk and article vectors and by full text, with their signals."""
        words = query_words(query.text) if query.use_fulltext else []
        terms = " | ".join(words) or None
        if query.vector is None and terms is None:
            return []
        vector = vector_literal(query.vector) if query.vector is not None else None
        dim = len(query.vector) if query.vector is not None else 0
        async with self.pool.acquire() as conn, conn.transaction():
            # One round trip: the HNSW candidate list, plans made for these very parameters (a
            # prepared statement's generic plan cannot know how many chunks a word matches), and
            # the query's lexemes in both configurations.
            lexemes = await conn.fetchrow(
                "SELECT set_config('hnsw.ef_search', $2, true),"
                " set_config('plan_cache_mode', 'force_custom_plan', true),"
                " tsvector_to_array(to_tsvector('english', $1)) AS en,"
                " tsvector_to_array(to_tsvector('german', $1)) AS de",
                " ".join(words),
                str(_EF_SEARCH),
            )
            ids: set[int] = set()
            if vector is not None:
                ids.update(await self._nearest(conn, vector, dim, candidates))
            if terms is not None:
                frequencies = await self._term_frequencies(conn)
                # Without vectors the full text is all there is: it keeps at least its rarest word.
                keep_one = vector is None
                english = frequencies["tsv_en"].rare_query(lexemes["en"], keep_one, self.match_budget)
                german = frequencies["tsv_de"].rare_query(lexemes["de"], keep_one, self.match_budget)
                if english is not None or german is not None:
                    ids.update(await self._fulltext(conn, english, german, candidates * 2))
            if not ids:
                return []
            rows = await conn.fetch(
                _typed(_SIGNALS_SQL, dim or 1), sorted(ids), terms, vector, PASSAGES_PER_ARTICLE
            )
        return _group(rows)

    @staticmethod
    async def _nearest(conn: asyncpg.Connection, vector: str, dim: int, candidates: int) -> set[int]:
        # The casts match the expression indexes, so the planner walks the HNSW graphs.
        rows = await conn.fetch(
            _typed(
                "SELECT document_id FROM knowledge_chunks WHERE vector_dims(embedding) = DIM"
                " ORDER BY embedding::vector(DIM) <=> $1::vector(DIM) LIMIT $2",
                dim,
            ),
            vector,
            candidates * 2,
        )
        found = {row["document_id"] for row in rows}
        rows = await conn.fetch(
            _typed(
                "SELECT id FROM knowledge_documents WHERE vector_dims(embedding) = DIM"
                " ORDER BY embedding::vector(DIM) <#> $1::vector(DIM) LIMIT $2",
                dim,
            ),
            vector,
            candidates,
        )
        found.update(row["id"] for row in rows)
        return found

    @staticmethod
    async def _fulltext(
        conn: asyncpg.Connection, english: str | None, german: str | None, limit: int
    ) -> set[int]:
        # An article is searched in its own language's configuration (both when unknown): German
        # stems of English text only add noise (measured in docs/evaluation.md). One branch per
        # configuration, so each can use its GIN index; a NULL query makes its branch match nothing.
        rows = await conn.fetch(
            "SELECT document_id FROM ("
            " SELECT id, document_id, ts_rank(tsv_en, $1::tsquery) AS rank FROM knowledge_chunks"
            " WHERE tsv_en @@ $1::tsquery AND left(language, 2) IS DISTINCT FROM 'de'"
            " UNION ALL"
            " SELECT id, document_id, ts_rank(tsv_de, $2::tsquery) FROM knowledge_chunks"
            " WHERE tsv_de @@ $2::tsquery AND left(language, 2) IS DISTINCT FROM 'en'"
            ") AS hit GROUP BY id, document_id ORDER BY max(rank) DESC LIMIT $3",
            english,
            german,
            limit,
        )
        return {row["document_id"] for row in rows}

    async def _term_frequencies(self, conn: asyncpg.Connection) -> dict[str, TermFrequencies]:
        """How common each lexeme is in the chunks, from the planner's statistics (cached briefly)."""
        now = time.monotonic()
        if self._frequencies is not None and now - self._frequencies_at < _STATISTICS_TTL:
            return self._frequencies
        rows = await conn.fetch(
            "SELECT s.attname, s.most_common_elems::text::text[] AS lexemes,"
            " s.most_common_elem_freqs AS shares, greatest(c.reltuples, 0) AS chunks"
            " FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename"
            " AND c.relnamespace = to_regnamespace(s.schemaname)"
            " WHERE s.schemaname = current_schema() AND s.tablename = 'knowledge_chunks'"
            " AND s.attname IN ('tsv_en', 'tsv_de')"
        )
        found = {name: TermFrequencies.unknown() for name in ("tsv_en", "tsv_de")}
        for row in rows:
            found[row["attname"]] = TermFrequencies.of(row["lexemes"], row["shares"], float(row["chunks"]))
        self._frequencies, self._frequencies_at = found, now
        return found

    async def text_module_hashes(self) -> dict[str, tuple[str, str]]:
        """shortcut (lower case) -> (content hash, source path) of every stored module."""
        rows = await self.pool.fetch("SELECT shortcut, content_hash, source_path FROM text_modules")
        return {row["shortcut"].lower(): (row["content_hash"], row["source_path"]) for row in rows}

    async def upsert_text_module(
        self, module: TextModule, content_hash: str, vector: Sequence[float] | None
    ) -> None:
        """Insert or replace a text module by its shortcut (case-insensitive)."""
        await self.pool.execute(
            "INSERT INTO text_modules (shortcut, title, text, language, tags, source_path, content_hash,"
            " embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::vector)"
            " ON CONFLICT ((lower(shortcut))) DO UPDATE SET shortcut = EXCLUDED.shortcut,"
            " title = EXCLUDED.title, text = EXCLUDED.text, language = EXCLUDED.language,"
            " tags = EXCLUDED.tags, source_path = EXCLUDED.source_path,"
            " content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding, updated_at = now()",
            module.shortcut,
            module.title,
            module.text,
            module.language,
            list(module.tags),
            module.source_path,
            content_hash,
            vector_literal(vector) if vector is not None else None,
        )

    async def delete_text_module(self, shortcut: str) -> bool:
        """Remove a text module; whether it existed."""
        status: str = await self.pool.execute(
            "DELETE FROM text_modules WHERE lower(shortcut) = lower($1)", shortcut
        )
        return status.endswith(" 1")

    async def stored_articles(self) -> list[Article]:
        """Every article as stored, for re-chunking and re-embedding."""
        rows = await self.pool.fetch(
            "SELECT identity, source_path, title, body, url, language, tags FROM knowledge_documents"
            " ORDER BY identity"
        )
        return [
            Article(
                identity=r["identity"],
                source_path=r["source_path"],
                title=r["title"],
                body=r["body"],
                url=r["url"],
                language=r["language"],
                tags=tuple(r["tags"]),
            )
            for r in rows
        ]

    async def stored_text_modules(self) -> list[TextModule]:
        """Every text module as stored."""
        rows = await self.pool.fetch(
            "SELECT shortcut, title, text, source_path, language, tags FROM text_modules ORDER BY shortcut"
        )
        return [
            TextModule(
                r["shortcut"], r["title"], r["text"], r["source_path"], r["language"], tuple(r["tags"])
            )
            for r in rows
        ]

    async def replace_all_vectors(
        self,
        name: str,
        dimension: int,
        articles: Sequence[
            tuple[Article, str, Sequence[Chunk], Sequence[Sequence[float]], Sequence[float] | None]
        ],
        modules: Sequence[tuple[TextModule, str, Sequence[float]]],
    ) -> None:
        """Swap every vector for another model's in one transaction, indexes rebuilt for its dimension."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MODEL_LOCK_ID)
            await conn.execute("DROP INDEX IF EXISTS knowledge_chunks_embedding_idx")
            await conn.execute("DROP INDEX IF EXISTS knowledge_documents_embedding_idx")
            await conn.execute("UPDATE text_modules SET embedding = NULL")
            await conn.execute("UPDATE knowledge_documents SET lead_embedding = NULL")
            for article, content_hash, chunks, vectors, lead in articles:
                await self._write_document(conn, article, content_hash, chunks, vectors, lead)
            for module, content_hash, vector in modules:
                await conn.execute(
                    "UPDATE text_modules SET embedding = $2::vector, content_hash = $3"
                    " WHERE lower(shortcut) = lower($1)",
                    module.shortcut,
                    vector_literal(vector),
                    content_hash,
                )
            for statement in _index_sql(dimension)[2:]:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO knowledge_embedding (id, model, dimension) VALUES (true, $1, $2)"
                " ON CONFLICT (id) DO UPDATE SET model = EXCLUDED.model, dimension = EXCLUDED.dimension,"
                " updated_at = now()",
                name,
                dimension,
            )


def _group(rows: Sequence[asyncpg.Record]) -> list[ArticleCandidate]:
    """The signal rows (an article's best passages, best first) to candidate articles."""
    found: dict[int, ArticleCandidate] = {}
    for row in rows:
        candidate = found.get(row["document_id"])
        if candidate is None:
            candidate = found[row["document_id"]] = ArticleCandidate(
                document_id=row["document_id"],
                identity=row["identity"],
                title=row["title"],
                url=row["url"],
                language=row["language"],
                mean_cosine=float(row["mean_cosine"]),
                max_cosine=float(row["max_cosine"]),
                fulltext=float(row["best_rank"]),
                lead_cosine=float(row["lead"]),
                passages=[],
            )
        candidate.passages.append(
            Passage(row["id"], row["ordinal"], tuple(row["heading_path"]), row["text"], float(row["cosine"]))
        )
    return list(found.values())
