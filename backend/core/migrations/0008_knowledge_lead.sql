-- A second article-level vector: the article embedded as a whole (title first; the model reads
-- its opening). Measured to add to the mean and max chunk cosines (docs/evaluation.md).
ALTER TABLE knowledge_documents ADD COLUMN lead_embedding vector;
