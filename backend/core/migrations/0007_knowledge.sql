-- The knowledge base: articles, their chunks (vector + full text), text modules, and the
-- embedding model every stored vector was made with.
CREATE EXTENSION IF NOT EXISTS vector;

-- One row: the model and dimension of every vector below. A different EMBEDDING_MODEL is refused
-- by ingest until `reembed` has replaced all vectors, so vectors of two models never mix.
CREATE TABLE knowledge_embedding (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    model      text NOT NULL,
    dimension  integer NOT NULL CHECK (dimension > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE knowledge_documents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The article's url, else its path relative to the folder it was ingested from.
    identity     text NOT NULL UNIQUE,
    source_path  text NOT NULL,
    title        text NOT NULL,
    url          text,
    language     text,
    tags         text[] NOT NULL DEFAULT '{}',
    -- The parsed text (Markdown), kept so that `reembed` can re-chunk without the files.
    body         text NOT NULL,
    content_hash text NOT NULL,
    -- The mean of the article's chunk vectors: its inner product with a query is the mean chunk cosine.
    embedding    vector,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX knowledge_documents_source_path_idx ON knowledge_documents (source_path);

CREATE TABLE knowledge_chunks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id  bigint NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
    ordinal      integer NOT NULL,
    heading_path text[] NOT NULL DEFAULT '{}',
    -- "Title > Section > Subsection": weighted above the text in full-text ranking.
    heading      text NOT NULL,
    text         text NOT NULL,
    -- Untyped so that any model's dimension fits; the HNSW indexes cast to the model's dimension.
    embedding    vector NOT NULL,
    tsv_en       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, heading), 'A') || to_tsvector('english'::regconfig, text)
    ) STORED,
    tsv_de       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('german'::regconfig, heading), 'A') || to_tsvector('german'::regconfig, text)
    ) STORED,
    UNIQUE (document_id, ordinal)
);
CREATE INDEX knowledge_chunks_tsv_en_idx ON knowledge_chunks USING gin (tsv_en);
CREATE INDEX knowledge_chunks_tsv_de_idx ON knowledge_chunks USING gin (tsv_de);

-- HNSW needs a fixed dimension: these partial expression indexes fit the default model (384).
-- Another model's first ingest, or `reembed`, replaces them with indexes of its dimension (same
-- names). Queries repeat the cast and the predicate, so only vectors of that dimension are searched.
CREATE INDEX knowledge_chunks_embedding_idx ON knowledge_chunks
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE vector_dims(embedding) = 384;
CREATE INDEX knowledge_documents_embedding_idx ON knowledge_documents
    USING hnsw ((embedding::vector(384)) vector_ip_ops) WHERE vector_dims(embedding) = 384;

-- Canned replies for supporters, from *.modules.yaml files.
CREATE TABLE text_modules (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shortcut     text NOT NULL,
    title        text NOT NULL,
    text         text NOT NULL,
    language     text,
    tags         text[] NOT NULL DEFAULT '{}',
    source_path  text NOT NULL,
    content_hash text NOT NULL,
    -- Title and text embedded with the knowledge model, for matching modules to messages.
    embedding    vector,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX text_modules_shortcut_key ON text_modules (lower(shortcut));
