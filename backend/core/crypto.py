"""Message encryption at rest: AES-256-GCM with key ids, bound to chat and sender."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyConfigError(ValueError):
    """MESSAGE_KEYS is malformed or holds a key that is too short."""


class DecryptionError(Exception):
    """A ciphertext does not open with its key and associated data."""


def associated_data(chat_id: UUID, sender_id: UUID) -> bytes:
    """Bind a ciphertext to its chat and sender, so a row copied elsewhere fails to open."""
    return chat_id.bytes + sender_id.bytes


@dataclass(frozen=True)
class KeyRing:
    """The message keys by id; new messages use the active one."""

    keys: dict[str, bytes]
    active_id: str

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Parse `id:base64key[,id:base64key...]`; the first key is the active one."""
        keys: dict[str, bytes] = {}
        for part in (item.strip() for item in spec.split(",")):
            if not part:
                continue
            key_id, sep, encoded = part.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise KeyConfigError(
                    "MESSAGE_KEYS entries look like 'id:base64key' (id: letters, digits, ._-)"
                )
            try:
                raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (binascii.Error, ValueError) as exc:
                raise KeyConfigError(f"MESSAGE_KEYS key {key_id!r} is not valid base64") from exc
            if len(raw) < KEY_BYTES:
                raise KeyConfigError(
                    f"MESSAGE_KEYS key {key_id!r} has {len(raw)} bytes; at least 32 are needed"
                )
            if key_id in keys:
                raise KeyConfigError(f"MESSAGE_KEYS names key {key_id!r} twice")
            keys[key_id] = raw[:KEY_BYTES]
        if not keys:
            raise KeyConfigError("MESSAGE_KEYS holds no key")
        return cls(keys=keys, active_id=next(iter(keys)))

    @staticmethod
    def generate_spec(key_id: str = "k1") -> str:
        """A fresh single-key MESSAGE_KEYS value."""
        return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip('=')}"

    def encrypt(self, plaintext: str, chat_id: UUID, sender_id: UUID) -> tuple[bytes, str]:
        """Encrypt with the active key; returns (nonce + ciphertext, key id)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_id]).encrypt(
            nonce, plaintext.encode("utf-8"), associated_data(chat_id, sender_id)
        )
        return nonce + sealed, self.active_id

    def decrypt(self, blob: bytes, key_id: str, chat_id: UUID, sender_id: UUID) -> str:
        """Open a stored message; raises DecryptionError when it does not authenticate."""
        key = self.keys.get(key_id)
        if key is None or len(blob) < NONCE_BYTES + 16:
            raise DecryptionError(f"no usable key {key_id!r} for this message")
        try:
            plain = AESGCM(key).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data(chat_id, sender_id)
            )
        except InvalidTag as exc:
            raise DecryptionError("message does not authenticate") from exc
        return plain.decode("utf-8")
