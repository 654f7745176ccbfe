-- Deleting suggested replies (when chats are archived or purged) sets messages.suggestion_id
-- to NULL: without this index every deleted reply would scan all messages.
CREATE INDEX messages_suggestion_id_idx ON messages (suggestion_id) WHERE suggestion_id IS NOT NULL;
