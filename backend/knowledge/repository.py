"""The knowledge store in PostgreSQL: pgvector HNSW for vectors, GIN full text in English and German."""

from __future__ import annotations

import re
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

# Any constant works: it serialises the first claim of the embedding model and `reembed`.
_MODEL_LOCK_ID = 7_420_113_101
_TOKEN = re.compile(r"[^\W_]+")
_MAX_QUERY_TOKENS = 64
# The HNSW candidate list; pgvector's default (40) would cap the neighbours a query can return.
_EF_SEARCH = 200
PASSAGES_PER_ARTICLE = 3


def vector_literal(values: Sequence[float]) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{value:.7g}" for value in values) + "]"


def or_query(text: str) -> str | None:
    """The query's words joined by OR for to_tsquery (None without words).

    Only letters and digits survive, so nothing in the result is tsquery syntax; OR rather than
    websearch's AND because customers write many words, few of which an article repeats.
    """
    words = list(dict.fromkeys(word[:100] for word in _TOKEN.findall(text.lower())))
    return " | ".join(words[:_MAX_QUERY_TOKENS]) or None


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

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

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
            "INSERT INTO knowledge_chunks (document_id, ordinal, heading_path, heading, text, embedding)"
            " VALUES ($1, $2, $3, $4, $5, $6::vector)",
            [
                (document_id, chunk.ordinal, list(chunk.heading_path), chunk.heading, chunk.text,
                 vector_literal(vector))
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
        )  # fmt: skip
        return document_id

    async def delete(self, identity: str) -> bool:
        """Remove an article (its chunks go with it); whether it existed."""
        status: str = await self.pool.execute("DELETE FROM knowledge_documents WHERE identity = $1", identity)
        return status.endswith(" 1")

    async def search(self, query: SearchQuery, *, candidates: int = 50) -> list[ArticleCandidate]:
        """Candidate articles by chunk and article vectors and by full text, with every chunk's signals."""
        terms = or_query(query.text) if query.use_fulltext else None
        if query.vector is None and terms is None:
            return []
        vector = vector_literal(query.vector) if query.vector is not None else None
        dim = len(query.vector) if query.vector is not None else 0
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL hnsw.ef_search = {_EF_SEARCH}")
            ids: set[int] = set()
            if vector is not None:
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
                ids.update(row["document_id"] for row in rows)
                rows = await conn.fetch(
                    _typed(
                        "SELECT id FROM knowledge_documents WHERE vector_dims(embedding) = DIM"
                        " ORDER BY embedding::vector(DIM) <#> $1::vector(DIM) LIMIT $2",
                        dim,
                    ),
                    vector,
                    candidates,
                )
                ids.update(row["id"] for row in rows)
            if terms is not None:
                # An article is searched in its own language's configuration (both when unknown):
                # German stems of English text only add noise (measured in docs/evaluation.md).
                # One branch per configuration, so each can use its GIN index (an OR across both
                # scanned every chunk); a chunk of unknown language ranks by the better of the two.
                rows = await conn.fetch(
                    "SELECT document_id FROM ("
                    " SELECT c.id, c.document_id, ts_rank(c.tsv_en, to_tsquery('english', $1)) AS rank"
                    " FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
                    " WHERE c.tsv_en @@ to_tsquery('english', $1)"
                    " AND left(d.language, 2) IS DISTINCT FROM 'de'"
                    " UNION ALL"
                    " SELECT c.id, c.document_id, ts_rank(c.tsv_de, to_tsquery('german', $1))"
                    " FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
                    " WHERE c.tsv_de @@ to_tsquery('german', $1)"
                    " AND left(d.language, 2) IS DISTINCT FROM 'en'"
                    ") AS hit GROUP BY id, document_id ORDER BY max(rank) DESC LIMIT $2",
                    terms,
                    candidates * 2,
                )
                ids.update(row["document_id"] for row in rows)
            if not ids:
                return []
            # Without a query vector $3 is NULL and the cosines are 0 (DIM is then any valid number).
            chunk_rows = await conn.fetch(
                _typed(
                    "WITH q AS (SELECT to_tsquery('english', coalesce($2, '')) AS en,"
                    " to_tsquery('german', coalesce($2, '')) AS de)"
                    " SELECT c.id, c.document_id, c.ordinal, c.heading_path, c.text,"
                    " coalesce(CASE WHEN vector_dims(c.embedding) = DIM"
                    " THEN 1 - (c.embedding::vector(DIM) <=> $3::vector(DIM)) END, 0) AS cosine,"
                    " coalesce(CASE WHEN vector_dims(d.lead_embedding) = DIM"
                    " THEN 1 - (d.lead_embedding::vector(DIM) <=> $3::vector(DIM)) END, 0) AS lead,"
                    " CASE WHEN $2::text IS NULL THEN 0"
                    " WHEN left(d.language, 2) = 'en' THEN ts_rank(c.tsv_en, q.en)"
                    " WHEN left(d.language, 2) = 'de' THEN ts_rank(c.tsv_de, q.de)"
                    " ELSE greatest(ts_rank(c.tsv_en, q.en), ts_rank(c.tsv_de, q.de)) END AS rank,"
                    " d.identity, d.title, d.url, d.language"
                    " FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id, q"
                    " WHERE c.document_id = ANY($1::bigint[]) ORDER BY c.document_id, c.ordinal",
                    dim or 1,
                ),
                sorted(ids),
                terms,
                vector,
            )
        return _group(chunk_rows)

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
    """Chunks to articles: mean and max cosine, best full-text rank, best passages."""
    by_document: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        by_document.setdefault(row["document_id"], []).append(row)
    found: list[ArticleCandidate] = []
    for document_id, chunk_rows in by_document.items():
        first = chunk_rows[0]
        cosines = [float(row["cosine"]) for row in chunk_rows]
        best = sorted(chunk_rows, key=lambda row: (-float(row["cosine"]), -float(row["rank"])))
        found.append(
            ArticleCandidate(
                document_id=document_id,
                identity=first["identity"],
                title=first["title"],
                url=first["url"],
                language=first["language"],
                mean_cosine=sum(cosines) / len(cosines),
                max_cosine=max(cosines),
                fulltext=max(float(row["rank"]) for row in chunk_rows),
                lead_cosine=float(first["lead"]),
                passages=[
                    Passage(
                        row["id"],
                        row["ordinal"],
                        tuple(row["heading_path"]),
                        row["text"],
                        float(row["cosine"]),
                    )
                    for row in best[:PASSAGES_PER_ARTICLE]
                ],
            )
        )
    return found
