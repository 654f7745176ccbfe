"""Generated secrets survive restarts and stay private; unusable configured ones stop the start."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from backend.core.config import Settings
from backend.core.crypto import KeyRing
from backend.core.secrets import SecretConfigError, load_secrets


def make_settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **values)  # type: ignore[call-arg]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_secrets_are_owner_only_and_reused(tmp_path: Path) -> None:
    first = load_secrets(make_settings(tmp_path))
    jwt_file = tmp_path / "secrets" / "jwt_secret"
    keys_file = tmp_path / "secrets" / "message_keys"
    assert mode(jwt_file) == 0o600
    assert mode(keys_file) == 0o600
    assert len(first.jwt_secret) >= 32

    second = load_secrets(make_settings(tmp_path))
    assert second.jwt_secret == first.jwt_secret
    assert second.keyring == first.keyring
    # A message written before the restart is readable after it.
    chat, sender = uuid.uuid4(), uuid.uuid4()
    blob, key_id = first.keyring.encrypt("before restart", chat, sender)
    assert second.keyring.decrypt(blob, key_id, chat, sender) == "before restart"


def test_other_data_dirs_get_other_secrets(tmp_path: Path) -> None:
    one = load_secrets(make_settings(tmp_path / "a"))
    two = load_secrets(make_settings(tmp_path / "b"))
    assert one.jwt_secret != two.jwt_secret
    assert one.keyring.keys != two.keyring.keys


def test_configured_secrets_are_used_and_nothing_is_written(tmp_path: Path) -> None:
    spec = KeyRing.generate_spec("prod")
    loaded = load_secrets(make_settings(tmp_path, jwt_secret="j" * 32, message_keys=spec))
    assert loaded.jwt_secret == b"j" * 32
    assert loaded.keyring == KeyRing.parse(spec)
    assert not (tmp_path / "secrets" / "jwt_secret").exists()
    assert not (tmp_path / "secrets" / "message_keys").exists()


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, "ä" * 15])
def test_short_jwt_secret_refuses_to_start(tmp_path: Path, secret: str) -> None:
    with pytest.raises(SecretConfigError, match="32 bytes"):
        load_secrets(make_settings(tmp_path, jwt_secret=secret))


def test_jwt_secret_length_counts_bytes(tmp_path: Path) -> None:
    # 16 two-byte characters are 32 bytes: accepted.
    assert load_secrets(make_settings(tmp_path, jwt_secret="ä" * 16)).jwt_secret == ("ä" * 16).encode()


def test_bad_message_keys_refuse_to_start(tmp_path: Path) -> None:
    with pytest.raises(SecretConfigError, match="MESSAGE_KEYS"):
        load_secrets(make_settings(tmp_path, jwt_secret="j" * 40, message_keys="k1:c2hvcnQ"))


def test_secret_files_are_not_rewritten_on_load(tmp_path: Path) -> None:
    load_secrets(make_settings(tmp_path))
    jwt_file = tmp_path / "secrets" / "jwt_secret"
    before = jwt_file.read_bytes(), jwt_file.stat().st_mtime_ns
    load_secrets(make_settings(tmp_path))
    assert (jwt_file.read_bytes(), jwt_file.stat().st_mtime_ns) == before
