-- The archive: closed chats moved out of the main database, one row per chat.
-- chat_content holds the chat, its people and every message with its content still
-- encrypted (base64 of nonce + ciphertext, with its key id).
CREATE TABLE archived_chats (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    supporter_id uuid,
    chat_content jsonb NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archived_chats_user_id_idx ON archived_chats (user_id, archived_at DESC);
CREATE INDEX archived_chats_archived_at_idx ON archived_chats (archived_at DESC, id);
