"""Secrets generated on first start and kept in DATA_DIR with owner-only permissions."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backend.core.config import Settings
from backend.core.crypto import KeyRing

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32


class SecretConfigError(ValueError):
    """A configured secret is unusable; the service refuses to start."""


@dataclass(frozen=True)
class Secrets:
    """The JWT signing secret and the message key ring."""

    jwt_secret: bytes
    keyring: KeyRing


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text("utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: when two nodes start at once on one DATA_DIR, exactly one writes the secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text("utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    log.warning("generated %s (mode 0600); back it up: without it stored data cannot be read", path)
    return value


def load_secrets(settings: Settings) -> Secrets:
    """Use configured secrets, else those generated into DATA_DIR on first start."""
    secret_dir = settings.data_dir / "secrets"
    if settings.jwt_secret is not None:
        jwt_text = settings.jwt_secret.get_secret_value()
    else:
        jwt_text = _read_or_create(
            secret_dir / "jwt_secret", lambda: base64.urlsafe_b64encode(os.urandom(48)).decode()
        )
    if len(jwt_text.encode("utf-8")) < MIN_SECRET_BYTES:
        raise SecretConfigError("JWT_SECRET must be at least 32 bytes long")
    if settings.message_keys is not None:
        keys_text = settings.message_keys.get_secret_value()
    else:
        keys_text = _read_or_create(secret_dir / "message_keys", KeyRing.generate_spec)
    try:
        keyring = KeyRing.parse(keys_text)
    except ValueError as exc:
        raise SecretConfigError(str(exc)) from exc
    return Secrets(jwt_secret=jwt_text.encode("utf-8"), keyring=keyring)


def load_keyring(settings: Settings) -> KeyRing:
    """The configured message keys, never generating one (for maintenance commands)."""
    if settings.message_keys is not None:
        keys_text = settings.message_keys.get_secret_value()
    else:
        path = settings.data_dir / "secrets" / "message_keys"
        if not path.exists():
            raise SecretConfigError(f"MESSAGE_KEYS is not set and {path} does not exist")
        keys_text = path.read_text("utf-8").strip()
    try:
        return KeyRing.parse(keys_text)
    except ValueError as exc:
        raise SecretConfigError(str(exc)) from exc
