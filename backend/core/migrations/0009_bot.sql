-- The bot: its user, what it did with every customer message, and customers' ratings.

-- The bot writes its answers as this user (one well-known id on every installation).
INSERT INTO users (id, username, display_name, role)
VALUES ('00000000-0000-4000-8000-000000000b07', NULL, 'Assistant', 'bot')
ON CONFLICT (id) DO NOTHING;

ALTER TABLE chats ADD COLUMN escalated_at timestamptz;

-- One row per customer message the bot handled. No text is stored here: the question is the
-- (encrypted) message itself, so erasure and archiving take these rows with the chat.
CREATE TABLE bot_turns (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id           uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    message_id        bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    answer_message_id bigint REFERENCES messages (id) ON DELETE SET NULL,
    -- answered | clarified | smalltalk | handed_over
    outcome           text NOT NULL CHECK (outcome IN ('answered', 'clarified', 'smalltalk', 'handed_over')),
    reason            text,
    confidence        real CHECK (confidence IS NULL OR (confidence >= 0 AND confidence <= 1)),
    top_title         text,
    sources           jsonb,
    via_llm           boolean NOT NULL DEFAULT false,
    latency_ms        integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id)
);
CREATE INDEX bot_turns_chat_id_idx ON bot_turns (chat_id, id);
CREATE INDEX bot_turns_gaps_idx ON bot_turns (created_at) WHERE outcome IN ('clarified', 'handed_over');

-- A customer's rating of one bot answer (the latest rating counts).
CREATE TABLE bot_feedback (
    message_id bigint PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    chat_id    uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    rating     text NOT NULL CHECK (rating IN ('helpful', 'not_helpful')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bot_feedback_chat_id_idx ON bot_feedback (chat_id);
