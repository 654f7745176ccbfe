"""The command line: create-user, migrate, and serve's refusal of unusable secrets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.__main__ import build_parser, main
from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, new_database: Callable[[], str], tmp_path: Path) -> str:
    url = new_database()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    return url


def test_create_user_then_log_in(
    cli_env: str, capsys: pytest.CaptureFixture[str], start_server: Callable[..., LiveServer]
) -> None:
    assert main(["create-user", "--username", "lena", "--password", "lang genug 123", "--role", "admin"]) == 0
    assert "created admin lena" in capsys.readouterr().out
    server = start_server(database_url=cli_env)
    session = Api(server.url).login("LENA", "lang genug 123")
    assert session["user"]["role"] == "admin" and session["user"]["display_name"] == "lena"


def test_create_user_refuses_bad_input(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create-user", "--username", "kurz", "--password", "short"]) == 1
    assert "at least 8 bytes" in capsys.readouterr().err
    assert main(["create-user", "--username", "bad name!", "--password", "long enough"]) == 1
    assert "username" in capsys.readouterr().err
    assert main(["create-user", "--username", "twice", "--password", "long enough"]) == 0
    assert main(["create-user", "--username", "TWICE", "--password", "long enough"]) == 1
    assert "taken" in capsys.readouterr().err


def test_create_user_without_password_and_terminal(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SUPPORT_CHAT_PASSWORD", raising=False)
    assert main(["create-user", "--username", "nopass"]) == 2
    assert "--password" in capsys.readouterr().err


def test_migrate_is_idempotent(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_serve_refuses_a_short_jwt_secret(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET", "too short")
    assert main(["serve", "--port", "0"]) == 2
    assert "at least 32 bytes" in capsys.readouterr().err


def test_serve_refuses_a_short_message_key(
    cli_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSAGE_KEYS", "k1:c2hvcnQ")
    assert main(["serve", "--port", "0"]) == 2
    assert "at least 32" in capsys.readouterr().err


def test_every_command_has_help() -> None:
    parser = build_parser()
    for command in ("serve", "create-user", "migrate"):
        with pytest.raises(SystemExit) as shown:
            parser.parse_args([command, "--help"])
        assert shown.value.code == 0


async def test_disable_enable_and_audit_from_the_command_line(
    cli_env: str, capsys: pytest.CaptureFixture[str], start_server: Callable[..., LiveServer]
) -> None:
    assert (
        await asyncio.to_thread(main, ["create-user", "--username", "mia", "--password", "lang genug 123"])
        == 0
    )
    server = start_server(database_url=cli_env, revocation_sweep_seconds=0.2)
    api = Api(server.url)
    session = api.login("mia", "lang genug 123")
    socket = await WsClient.connect(server.ws_url, session["token"])
    assert await asyncio.to_thread(main, ["disable-user", "--username", "mia"]) == 0
    assert api.call("GET", "/api/me", session["token"]).status_code == 401
    assert await socket.closed_with(timeout=3) == 4401  # the server's sweep closes it
    assert (
        api.call(
            "POST", "/api/auth/login", json={"username": "mia", "password": "lang genug 123"}
        ).status_code
        == 401
    )
    assert await asyncio.to_thread(main, ["enable-user", "--username", "mia"]) == 0
    assert api.login("mia", "lang genug 123")["user"]["username"] == "mia"
    assert await asyncio.to_thread(main, ["disable-user", "--username", "nobody"]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["audit", "--limit", "20"]) == 0
    out = capsys.readouterr().out
    for action in ("user_created", "user_disabled", "user_enabled", "login_ok", "login_failed"):
        assert action in out
    assert "lang genug" not in out
