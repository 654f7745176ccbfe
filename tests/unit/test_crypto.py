"""Message encryption at rest: what the database holds is useless without the key."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.core.crypto import KEY_BYTES, NONCE_BYTES, DecryptionError, KeyConfigError, KeyRing

CHAT = uuid.UUID("11111111-1111-4111-8111-111111111111")
SENDER = uuid.UUID("22222222-2222-4222-8222-222222222222")
OTHER = uuid.UUID("33333333-3333-4333-8333-333333333333")

# Every Unicode text a customer may type: no surrogates (not encodable), no NUL (refused by the API).
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=500
)


def key(fill: int | None = None) -> str:
    """A base64url key of 32 bytes (random unless a fill byte is given)."""
    raw = bytes([fill]) * KEY_BYTES if fill is not None else os.urandom(KEY_BYTES)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.parse(KeyRing.generate_spec())


@settings(deadline=None, max_examples=200)
@given(text=texts)
def test_round_trip_any_text(text: str) -> None:
    ring = KeyRing.parse(f"k1:{key(7)}")
    blob, key_id = ring.encrypt(text, CHAT, SENDER)
    assert key_id == "k1"
    assert ring.decrypt(blob, key_id, CHAT, SENDER) == text


def test_round_trip_emoji_and_umlauts(ring: KeyRing) -> None:
    text = "Grüße 👋🏽 — 你好, straße ß 🇩🇪"
    blob, key_id = ring.encrypt(text, CHAT, SENDER)
    assert ring.decrypt(blob, key_id, CHAT, SENDER) == text


def test_empty_text_round_trips(ring: KeyRing) -> None:
    blob, key_id = ring.encrypt("", CHAT, SENDER)
    assert len(blob) == NONCE_BYTES + 16
    assert ring.decrypt(blob, key_id, CHAT, SENDER) == ""


@settings(deadline=None, max_examples=100)
@given(text=st.text(min_size=8, max_size=300).filter(lambda t: "\x00" not in t))
def test_ciphertext_never_contains_the_plaintext(text: str) -> None:
    ring = KeyRing.parse(f"k1:{key(9)}")
    blob, _ = ring.encrypt(text, CHAT, SENDER)
    assert text.encode("utf-8") not in blob


def test_same_text_encrypts_differently_each_time(ring: KeyRing) -> None:
    first, _ = ring.encrypt("Meine Bestellung 4711", CHAT, SENDER)
    second, _ = ring.encrypt("Meine Bestellung 4711", CHAT, SENDER)
    assert first != second
    assert first[:NONCE_BYTES] != second[:NONCE_BYTES]


def test_other_chat_as_associated_data_fails(ring: KeyRing) -> None:
    blob, key_id = ring.encrypt("moved row", CHAT, SENDER)
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, key_id, OTHER, SENDER)


def test_other_sender_as_associated_data_fails(ring: KeyRing) -> None:
    blob, key_id = ring.encrypt("forged sender", CHAT, SENDER)
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, key_id, CHAT, OTHER)


@settings(deadline=None, max_examples=60)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_tampered_byte_fails(position: int, flip: int) -> None:
    ring = KeyRing.parse(f"k1:{key(3)}")
    blob, key_id = ring.encrypt("Überweisung an IBAN DE00 1234", CHAT, SENDER)
    tampered = bytearray(blob)
    tampered[position % len(blob)] ^= flip
    with pytest.raises(DecryptionError):
        ring.decrypt(bytes(tampered), key_id, CHAT, SENDER)


def test_truncated_blob_fails(ring: KeyRing) -> None:
    blob, key_id = ring.encrypt("hello", CHAT, SENDER)
    for cut in (0, 5, NONCE_BYTES, NONCE_BYTES + 15, len(blob) - 1):
        with pytest.raises(DecryptionError):
            ring.decrypt(blob[:cut], key_id, CHAT, SENDER)


def test_unknown_key_id_fails(ring: KeyRing) -> None:
    blob, _ = ring.encrypt("hello", CHAT, SENDER)
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, "nope", CHAT, SENDER)


def test_wrong_key_with_same_id_fails() -> None:
    blob, key_id = KeyRing.parse(f"k1:{key(1)}").encrypt("hello", CHAT, SENDER)
    with pytest.raises(DecryptionError):
        KeyRing.parse(f"k1:{key(2)}").decrypt(blob, key_id, CHAT, SENDER)


@pytest.mark.parametrize(
    ("spec", "mentions"),
    [
        (f"k1:{base64.urlsafe_b64encode(b'x' * 31).decode()}", "31 bytes"),
        ("k1:not*base64!", "base64"),
        (f"k1:{key(1)},k1:{key(2)}", "twice"),
        ("", "no key"),
        (" , ,", "no key"),
        (key(1), "id:base64key"),
        (f"bad id:{key(1)}", "id:base64key"),
        (f":{key(1)}", "id:base64key"),
    ],
    ids=[
        "short-key",
        "bad-base64",
        "duplicate-id",
        "empty",
        "only-commas",
        "no-id",
        "space-in-id",
        "empty-id",
    ],
)
def test_parse_rejects(spec: str, mentions: str) -> None:
    with pytest.raises(KeyConfigError, match=mentions):
        KeyRing.parse(spec)


def test_parse_error_does_not_echo_the_key() -> None:
    secret = base64.urlsafe_b64encode(b"s" * 20).decode()
    with pytest.raises(KeyConfigError) as info:
        KeyRing.parse(f"k1:{secret}")
    assert secret not in str(info.value)


def test_first_key_is_active() -> None:
    ring = KeyRing.parse(f"new:{key(1)}, old:{key(2)}")
    assert ring.active_id == "new"
    assert set(ring.keys) == {"new", "old"}
    assert ring.encrypt("x", CHAT, SENDER)[1] == "new"


def test_padded_and_unpadded_base64_are_the_same_key() -> None:
    raw = bytes(range(32))
    padded = base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    assert KeyRing.parse(f"k:{padded}").keys["k"] == KeyRing.parse(f"k:{padded.rstrip('=')}").keys["k"] == raw


def test_rotation_keeps_old_messages_readable() -> None:
    old_key, new_key = key(), key()
    before = KeyRing.parse(f"k1:{old_key}")
    old_blob, old_id = before.encrypt("from last year", CHAT, SENDER)
    after = KeyRing.parse(f"k2:{new_key},k1:{old_key}")
    new_blob, new_id = after.encrypt("from today", CHAT, SENDER)
    assert (old_id, new_id) == ("k1", "k2")
    assert after.decrypt(old_blob, old_id, CHAT, SENDER) == "from last year"
    assert after.decrypt(new_blob, new_id, CHAT, SENDER) == "from today"
    with pytest.raises(DecryptionError):
        before.decrypt(new_blob, new_id, CHAT, SENDER)


def test_generated_spec_is_a_valid_fresh_key() -> None:
    first, second = KeyRing.generate_spec(), KeyRing.generate_spec("k7")
    assert first.startswith("k1:") and second.startswith("k7:")
    assert KeyRing.parse(first).keys["k1"] != KeyRing.parse(second).keys["k7"]
    assert len(KeyRing.parse(first).keys["k1"]) == KEY_BYTES
