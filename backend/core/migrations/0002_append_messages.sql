-- Group commit in one round trip: append a batch of messages, each checked on its own.
-- Chats are locked in id order (no deadlocks between concurrent batches); seq comes from
-- chats.last_seq under that lock, so it is gapless in commit order. A (chat, sender,
-- client_msg_id) already stored, also earlier in the same batch, answers 'duplicate'.
CREATE FUNCTION append_messages(
    p_chat_id uuid[],
    p_sender_id uuid[],
    p_sender_role text[],
    p_kind text[],
    p_content bytea[],
    p_key_id text[],
    p_client_msg_id text[],
    p_suggestion_id bigint[],
    p_text_sha256 bytea[],
    p_sources text[]
) RETURNS TABLE (idx integer, outcome text, message_id bigint, message_seq integer, message_created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    n integer := coalesce(array_length(p_chat_id, 1), 0);
    v_status text;
    v_customer uuid;
    v_reply text;
    v_edited boolean;
BEGIN
    PERFORM 1 FROM chats WHERE id = ANY (p_chat_id) ORDER BY id FOR UPDATE;
    FOR i IN 1 .. n LOOP
        idx := i;
        message_id := NULL;
        message_seq := NULL;
        message_created_at := NULL;
        IF p_client_msg_id[i] IS NOT NULL THEN
            SELECT m.id, m.seq, m.created_at INTO message_id, message_seq, message_created_at
            FROM messages m
            WHERE m.chat_id = p_chat_id[i] AND m.sender_id = p_sender_id[i] AND m.client_msg_id = p_client_msg_id[i];
            IF FOUND THEN
                outcome := 'duplicate';
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        SELECT c.status, c.customer_id INTO v_status, v_customer FROM chats c WHERE c.id = p_chat_id[i];
        IF NOT FOUND OR (p_sender_role[i] = 'user' AND v_customer <> p_sender_id[i]) THEN
            outcome := 'not_found';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF v_status = 'closed' THEN
            outcome := 'closed';
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_edited := NULL;
        IF p_suggestion_id[i] IS NOT NULL THEN
            SELECT sr.reply INTO v_reply
            FROM suggested_replies sr JOIN messages m ON m.id = sr.message_id
            WHERE sr.id = p_suggestion_id[i] AND m.chat_id = p_chat_id[i];
            IF NOT FOUND OR p_sender_role[i] = 'user' THEN
                outcome := 'bad_suggestion';
                RETURN NEXT;
                CONTINUE;
            END IF;
            v_edited := sha256(convert_to(v_reply, 'UTF8')) IS DISTINCT FROM p_text_sha256[i];
        END IF;
        UPDATE chats SET last_seq = last_seq + 1, updated_at = now()
        WHERE id = p_chat_id[i]
        RETURNING last_seq INTO message_seq;
        INSERT INTO messages (chat_id, seq, sender_id, kind, content, key_id, client_msg_id,
                              suggestion_id, suggestion_edited, sources)
        VALUES (p_chat_id[i], message_seq, p_sender_id[i], p_kind[i], p_content[i], p_key_id[i],
                p_client_msg_id[i], p_suggestion_id[i], v_edited, p_sources[i]::jsonb)
        RETURNING id, created_at INTO message_id, message_created_at;
        outcome := 'created';
        RETURN NEXT;
    END LOOP;
END;
$$;
