"""Message key rotation: adding a key, re-encrypting while the chat runs, bad rows, resuming."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from backend.__main__ import build_parser, main
from backend.chat import rotation
from backend.chat.views import UNREADABLE_TEXT
from backend.core import db
from backend.core.crypto import KeyRing
from tests.conftest import Api, LiveServer, run_coroutine
from tests.integration.wsclient import WsClient

LIMITS: dict[str, Any] = {
    "guest_rate_per_minute": 100_000,
    "http_message_rate": 1000,
    "http_message_burst": 1000,
    "ws_frame_rate": 1000,
    "ws_frame_burst": 1000,
}


@dataclass
class Chat:
    id: str
    token: str
    texts: list[str] = field(default_factory=list)


@dataclass
class Setup:
    """A database with messages under k1, served by a node configured with k2 first, then k1."""

    url: str
    k1: str
    k2: str
    server: LiveServer
    api: Api
    staff_token: str
    chats: list[Chat]

    @property
    def keyring(self) -> KeyRing:
        return KeyRing.parse(f"{self.k2},{self.k1}")

    @property
    def old_count(self) -> int:
        return sum(len(chat.texts) for chat in self.chats)


def post(api: Api, chat: Chat, token: str, text: str) -> None:
    response = api.call(
        "POST",
        f"/api/chats/{chat.id}/messages",
        token,
        json={"text": text, "client_msg_id": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    chat.texts.append(text)


def read_texts(api: Api, chat: Chat) -> list[str]:
    texts: list[str] = []
    after = 0
    while True:
        response = api.call(
            "GET", f"/api/chats/{chat.id}/messages", chat.token, params={"after": after, "limit": 200}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        if not page:
            return texts
        texts.extend(message["text"] for message in page)
        after = page[-1]["seq"]


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    rows: list[asyncpg.Record] = run_coroutine(go())
    return rows


def key_counts(url: str) -> dict[str, int]:
    return {
        row["key_id"]: row["n"]
        for row in fetch(url, "SELECT key_id, count(*) AS n FROM messages GROUP BY key_id")
    }


def rotation_events(url: str) -> list[dict[str, Any]]:
    rows = fetch(url, "SELECT details::text AS d FROM audit_log WHERE action = 'keys_rotated' ORDER BY id")
    return [json.loads(row["d"]) for row in rows]


@pytest.fixture
def setup(start_server: Callable[..., LiveServer], new_database: Callable[[], str]) -> Setup:
    """Write 2 chats x 30 messages (customer and supporter) under k1; then restart with k2 first."""
    url = new_database()
    k1, k2 = KeyRing.generate_spec("k1"), KeyRing.generate_spec("k2")
    old = start_server(database_url=url, message_keys=k1, **LIMITS)
    api = Api(old.url)
    username, password = old.make_staff()
    staff = api.login(username, password)["token"]
    chats: list[Chat] = []
    for c in range(2):
        customer = api.guest(f"Kundin {c}")
        chat = Chat(api.new_chat(customer["token"])["id"], customer["token"])
        assert api.call("POST", f"/api/chats/{chat.id}/assign", staff).status_code == 200
        for i in range(30):
            post(api, chat, chat.token if i % 2 == 0 else staff, f"alt {c}/{i}: Grüße ✓")
        chats.append(chat)
    old.stop()
    assert key_counts(url) == {"k1": 60}
    new = start_server(database_url=url, data_dir=old.settings.data_dir, message_keys=f"{k2},{k1}", **LIMITS)
    return Setup(url, k1, k2, new, Api(new.url), staff, chats)


def test_new_messages_use_the_new_key_and_old_ones_still_read(setup: Setup) -> None:
    chat = setup.chats[0]
    post(setup.api, chat, chat.token, "neu unter k2")
    post(setup.api, chat, setup.staff_token, "Antwort unter k2")
    assert key_counts(setup.url) == {"k1": 60, "k2": 2}
    for each in setup.chats:
        assert read_texts(setup.api, each) == each.texts


async def test_rotation_while_messages_are_written(setup: Setup) -> None:
    chat = setup.chats[0]
    old_count = setup.old_count
    written = 0
    ten_written = asyncio.Event()
    seen_while_writing: list[int] = []

    async def writer() -> None:
        nonlocal written
        socket = await WsClient.connect(setup.server.ws_url, chat.token)
        try:
            for i in range(200):
                text = f"live {i}"
                await socket.send_message(chat.id, text)
                chat.texts.append(text)
                written += 1
                if written == 10:
                    ten_written.set()
        finally:
            await socket.close()

    pool = await db.create_pool(setup.url, min_size=1, max_size=4)
    try:

        async def rotate() -> rotation.RotationResult:
            await ten_written.wait()
            return await rotation.rotate_keys(
                pool, setup.keyring, batch_size=5, progress=lambda _: seen_while_writing.append(written)
            )

        result, _ = await asyncio.gather(rotate(), writer())
    finally:
        await pool.close()

    assert any(0 < count < 200 for count in seen_while_writing), "rotation and writes should overlap"
    assert result.complete and not result.failures
    assert result.re_encrypted == old_count == 60
    assert list(result.usage.counts) == ["k2"]  # the writes went on meanwhile, all under k2
    assert result.usage.removable == ["k1"]
    assert key_counts(setup.url) == {"k2": 260}
    for each in setup.chats:
        assert read_texts(setup.api, each) == each.texts
    (event,) = rotation_events(setup.url)
    assert event["re_encrypted"] == 60 and event["failed"] == 0 and event["completed"] is True
    assert event["active_key_id"] == "k2"
    for spec in (setup.k1, setup.k2):
        assert spec.split(":", 1)[1] not in str(event)


def test_rows_that_cannot_be_rotated_are_reported_and_skipped(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [row["id"] for row in fetch(setup.url, "SELECT id FROM messages ORDER BY id")]
    unknown_id, tampered_id = ids[3], ids[7]
    fetch(setup.url, "UPDATE messages SET key_id = 'k0' WHERE id = $1", unknown_id)
    fetch(
        setup.url,
        "UPDATE messages SET content = set_byte(content, 20, get_byte(content, 20) # 1) WHERE id = $1",
        tampered_id,
    )
    monkeypatch.setenv("DATABASE_URL", setup.url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MESSAGE_KEYS", f"{setup.k2},{setup.k1}")

    # Batches of one: a skipped row fetched again would keep the run from ever finishing.
    assert main(["rotate-keys", "--batch-size", "1"]) == 1
    out, err = capsys.readouterr()
    assert f"message {unknown_id} skipped: key id 'k0' is not in MESSAGE_KEYS" in err
    assert f"message {tampered_id} skipped: does not decrypt with key 'k1'" in err
    assert "re-encrypted 1 messages (58 so far), 0 left" in out
    assert "re-encrypted 58 messages with key k2" in out
    assert "key k2: 58 messages (active)" in out
    assert "key k1: 1 messages (still in use: run rotate-keys)" in out
    assert "key k0: 1 messages (not in MESSAGE_KEYS" in out
    assert "could not be re-encrypted" in err
    assert key_counts(setup.url) == {"k2": 58, "k1": 1, "k0": 1}

    # The skipped rows stay as they were: unreadable, every other message reads back.
    shown = read_texts(setup.api, setup.chats[0])
    for index, text in enumerate(shown):
        expected = UNREADABLE_TEXT if ids[index] in (unknown_id, tampered_id) else setup.chats[0].texts[index]
        assert text == expected
    assert read_texts(setup.api, setup.chats[1]) == setup.chats[1].texts

    assert main(["key-usage"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "key k2: 58 messages (active)",
        "key k1: 1 messages (still in use: run rotate-keys)",
        "key k0: 1 messages (not in MESSAGE_KEYS: these messages cannot be read)",
    ]
    assert "k0" in err

    # A second run finds nothing to do but the same two rows.
    assert main(["rotate-keys"]) == 1
    out, err = capsys.readouterr()
    assert "re-encrypted 0 messages with key k2" in out
    assert err.count("skipped") == 2
    events = rotation_events(setup.url)
    assert [(e["re_encrypted"], e["failed"], e["remaining"]) for e in events] == [(58, 2, 2), (0, 2, 2)]


def test_an_interrupted_rotation_resumes(setup: Setup) -> None:
    post(setup.api, setup.chats[1], setup.chats[1].token, "schon unter k2")

    class Crash(Exception):
        pass

    def crash_after_first_batch(step: rotation.RotationProgress) -> None:
        assert step.re_encrypted == 7 and step.left == 53
        raise Crash

    server = setup.server
    with pytest.raises(Crash):
        server.run(
            rotation.rotate_keys(
                server.ctx.pool, server.ctx.keyring, batch_size=7, progress=crash_after_first_batch
            )
        )
    assert key_counts(setup.url) == {"k2": 8, "k1": 53}
    (interrupted,) = rotation_events(setup.url)
    assert interrupted["re_encrypted"] == 7 and interrupted["completed"] is False
    for each in setup.chats:
        assert read_texts(setup.api, each) == each.texts

    steps: list[rotation.RotationProgress] = []
    result = server.run(
        rotation.rotate_keys(server.ctx.pool, server.ctx.keyring, batch_size=7, progress=steps.append)
    )
    assert result.complete and result.re_encrypted == 53
    assert [step.left for step in steps][-1] == 0 and steps[-1].total == 53
    assert result.usage.counts == {"k2": 61} and result.usage.removable == ["k1"]
    assert key_counts(setup.url) == {"k2": 61}
    # Texts read back: no row was encrypted twice, or under a key id other than its own.
    for each in setup.chats:
        assert read_texts(setup.api, each) == each.texts

    again = server.run(rotation.rotate_keys(server.ctx.pool, server.ctx.keyring))
    assert again.complete and again.re_encrypted == 0 and again.batches == 0


def test_a_node_missing_a_used_key_logs_an_error_and_still_serves(
    setup: Setup, start_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="backend.chat.rotation"):
        only_new = start_server(
            database_url=setup.url, data_dir=setup.server.settings.data_dir, message_keys=setup.k2, **LIMITS
        )
    errors = [r.getMessage() for r in caplog.records if r.name == "backend.chat.rotation"]
    assert len(errors) == 1 and "missing from MESSAGE_KEYS: k1" in errors[0]
    assert setup.k1.split(":", 1)[1] not in errors[0]
    chat = setup.chats[0]
    assert set(read_texts(Api(only_new.url), chat)) == {UNREADABLE_TEXT}


def test_the_command_line_generates_keys_and_reports_usage(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", setup.url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MESSAGE_KEYS", f"{setup.k2},{setup.k1}")
    assert main(["generate-key", "--id", "k3"]) == 0
    spec = capsys.readouterr().out.strip()
    ring = KeyRing.parse(f"{spec},{setup.k2}")
    assert ring.active_id == "k3" and len(ring.keys["k3"]) == 32
    assert main(["generate-key"]) == 0
    assert KeyRing.parse(capsys.readouterr().out.strip()).active_id.startswith("k20")
    assert main(["generate-key", "--id", "k1"]) == 2
    assert "already has a key 'k1'" in capsys.readouterr().err
    assert main(["generate-key", "--id", "no spaces"]) == 2

    assert main(["key-usage"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "key k2: 0 messages (active)",
        "key k1: 60 messages (still in use: run rotate-keys)",
    ]
    assert main(["rotate-keys", "--batch-size", "25"]) == 0
    out = capsys.readouterr().out
    assert "re-encrypted 25 messages (25 so far), 35 left" in out
    assert "re-encrypted 10 messages (60 so far), 0 left" in out
    assert "key k1: 0 messages (used by no message: may be removed from MESSAGE_KEYS)" in out
    assert "a key is retired only when no row uses it" in out
    assert main(["key-usage"]) == 0

    monkeypatch.delenv("MESSAGE_KEYS")
    assert main(["key-usage"]) == 2
    assert "MESSAGE_KEYS is not set" in capsys.readouterr().err
    assert not (tmp_path / "secrets").exists(), "maintenance commands never generate a key"


def test_every_key_command_has_help() -> None:
    parser = build_parser()
    for command in ("rotate-keys", "key-usage", "generate-key"):
        with pytest.raises(SystemExit) as shown:
            parser.parse_args([command, "--help"])
        assert shown.value.code == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["rotate-keys", "--batch-size", "0"])
