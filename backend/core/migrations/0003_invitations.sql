-- Invitation links: a supporter opens a chat for a customer and sends them a link.
-- Only the SHA-256 of the link's token is stored; a link works once and expires.
CREATE TABLE invitations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    chat_id     uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    customer_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by  uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX invitations_chat_id_idx ON invitations (chat_id);
