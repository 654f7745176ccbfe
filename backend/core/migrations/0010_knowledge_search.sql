-- Search computes a cosine and a full-text rank for every chunk of its candidate articles. A
-- vector is stored out of line by default (its type's storage is EXTERNAL) once a row passes
-- about 2 kB, which a 384-dimension vector with its text and two tsvectors does: every chunk then
-- cost a TOAST lookup. Kept in the row instead (rows up to a page), search reads one heap tuple.
ALTER TABLE knowledge_chunks ALTER COLUMN embedding SET STORAGE MAIN;
ALTER TABLE knowledge_chunks SET (toast_tuple_target = 8160);
ALTER TABLE knowledge_documents ALTER COLUMN embedding SET STORAGE MAIN;
ALTER TABLE knowledge_documents ALTER COLUMN lead_embedding SET STORAGE MAIN;

-- The article's language on each chunk, so that the full-text candidate query filters by it
-- without joining every matching chunk to its article.
ALTER TABLE knowledge_chunks ADD COLUMN language text;
UPDATE knowledge_chunks c SET language = d.language FROM knowledge_documents d WHERE d.id = c.document_id;

-- Each configuration's index holds only the chunks searched in it (an English chunk is never
-- searched with German stems), so neither full-text branch reads the other language's rows.
DROP INDEX knowledge_chunks_tsv_en_idx;
DROP INDEX knowledge_chunks_tsv_de_idx;
CREATE INDEX knowledge_chunks_tsv_en_idx ON knowledge_chunks USING gin (tsv_en)
    WHERE left(language, 2) IS DISTINCT FROM 'de';
CREATE INDEX knowledge_chunks_tsv_de_idx ON knowledge_chunks USING gin (tsv_de)
    WHERE left(language, 2) IS DISTINCT FROM 'en';
