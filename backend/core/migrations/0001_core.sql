-- The chat core: users, their session tokens, chats, messages and suggested replies.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text,
    display_name  text NOT NULL,
    email         text,
    role          text NOT NULL CHECK (role IN ('user', 'supporter', 'admin', 'bot')),
    password_hash text,
    is_guest      boolean NOT NULL DEFAULT false,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Usernames are unique regardless of case, so "Anna" cannot impersonate "anna".
CREATE UNIQUE INDEX users_username_key ON users (lower(username)) WHERE username IS NOT NULL;

-- Every issued session token, so that logout can kill it before it expires.
CREATE TABLE tokens (
    jti        uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX tokens_user_id_idx ON tokens (user_id);
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);

CREATE TABLE chats (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status            text NOT NULL CHECK (status IN ('bot', 'open', 'assigned', 'closed')),
    customer_id       uuid NOT NULL REFERENCES users (id),
    supporter_id      uuid REFERENCES users (id),
    -- The highest seq handed out; bumped under the row lock in the message insert's transaction.
    last_seq          integer NOT NULL DEFAULT 0,
    escalation_reason text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    assigned_at       timestamptz,
    closed_at         timestamptz,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX chats_customer_id_idx ON chats (customer_id, created_at DESC);
CREATE INDEX chats_status_idx ON chats (status, created_at) WHERE status <> 'closed';
CREATE INDEX chats_closed_at_idx ON chats (closed_at) WHERE status = 'closed';

CREATE TABLE messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id       uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq           integer NOT NULL CHECK (seq > 0),
    sender_id     uuid NOT NULL REFERENCES users (id),
    kind          text NOT NULL CHECK (kind IN ('text', 'bot', 'system')),
    -- AES-256-GCM: 12-byte nonce followed by ciphertext and tag; never plaintext.
    content       bytea NOT NULL,
    key_id        text NOT NULL,
    client_msg_id text,
    suggestion_id bigint,
    suggestion_edited boolean,
    sources       jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chat_id, seq),
    UNIQUE (chat_id, sender_id, client_msg_id)
);
CREATE INDEX messages_key_id_idx ON messages (key_id);

CREATE TABLE suggested_replies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    reply       text NOT NULL,
    confidence  real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    source      text NOT NULL,
    title       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suggested_replies_message_id_idx ON suggested_replies (message_id);

ALTER TABLE messages
    ADD CONSTRAINT messages_suggestion_id_fkey
    FOREIGN KEY (suggestion_id) REFERENCES suggested_replies (id) ON DELETE SET NULL;

-- What operators' scripts read as "the active chats".
CREATE VIEW active_chats AS
    SELECT id, status, customer_id, supporter_id, last_seq, created_at, updated_at, assigned_at
    FROM chats
    WHERE status <> 'closed';

-- A guest has no password; a random resume token (stored as its SHA-256) lets them log in again.
ALTER TABLE users ADD COLUMN resume_token_hash bytea UNIQUE;
