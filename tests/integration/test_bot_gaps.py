"""The knowledge-gap report: what the bot could not help with, grouped, for admins and on the command line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from backend.__main__ import main
from backend.bot.gaps import service as gaps_service
from backend.bot.gaps.schemas import GapReportRead
from backend.chat.automation import BOT_USER_ID
from backend.core.timefmt import SERVER_ZONE
from backend.knowledge.embedder import SentenceTransformerEmbedder
from tests.conftest import Api, LiveServer

LIMITS: dict[str, Any] = {
    "guest_rate_per_minute": 100_000,
    "http_message_rate": 1000,
    "http_message_burst": 1000,
}
PATH = "/api/admin/knowledge-gaps"


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> Iterator[LiveServer]:
    """A server of its own (a fresh database): every test sees only the turns it records."""
    live = start_server(**LIMITS)
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[Api]:
    api = Api(server.url)
    yield api
    api.http.close()


def admin_token(server: LiveServer, api: Api) -> str:
    token: str = api.login(*server.make_staff(role="admin"))["token"]
    return token


def ask(api: Api, text: str) -> tuple[str, int]:
    """A guest opens a chat and asks over HTTP; returns (chat id, message id)."""
    customer = api.guest()
    chat = api.new_chat(customer["token"])
    sent = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        customer["token"],
        json={"text": text, "client_msg_id": uuid.uuid4().hex},
    )
    assert sent.status_code == 201, sent.text
    return chat["id"], sent.json()["id"]


def record_turn(
    server: LiveServer,
    chat_id: str,
    message_id: int,
    outcome: str,
    reason: str | None = None,
    *,
    title: str | None = None,
    rating: str | None = None,
    at: datetime | None = None,
) -> None:
    """What the bot would store: its answer (a bot message), the turn, and the customer's rating."""
    ctx = server.ctx
    chat = uuid.UUID(chat_id)

    async def write() -> None:
        content, key_id = ctx.keyring.encrypt("Here is what I found.", chat, BOT_USER_ID)
        async with ctx.pool.acquire() as conn, conn.transaction():
            seq = await conn.fetchval(
                "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", chat
            )
            answer_id = await conn.fetchval(
                "INSERT INTO messages (chat_id, seq, sender_id, kind, content, key_id)"
                " VALUES ($1, $2, $3, 'bot', $4, $5) RETURNING id",
                chat,
                seq,
                BOT_USER_ID,
                content,
                key_id,
            )
            await conn.execute(
                "INSERT INTO bot_turns (chat_id, message_id, answer_message_id, outcome, reason, confidence,"
                " top_title, created_at) VALUES ($1, $2, $3, $4, $5, 0.3, $6, coalesce($7, now()))",
                chat,
                message_id,
                answer_id,
                outcome,
                reason,
                title,
                at,
            )
            if rating is not None:
                await conn.execute(
                    "INSERT INTO bot_feedback (message_id, chat_id, rating) VALUES ($1, $2, $3)",
                    answer_id,
                    chat,
                    rating,
                )

    server.run(write())


def seed(server: LiveServer, api: Api) -> None:
    """Three ways of not knowing how to cancel, two of a missing parcel, and turns that are no gap."""
    now = datetime.now().astimezone()
    cases: list[tuple[str, str, str | None, str | None, str | None, int]] = [
        ("Wie kann ich meinen Vertrag kündigen?", "handed_over", "low_confidence", "Kündigung", None, 50),
        ("wie kann ich meinen  Vertrag kündigen?", "clarified", "tie", "Kündigung", None, 40),
        ("WIE KANN ICH MEINEN VERTRAG KÜNDIGEN?", "answered", None, "Widerruf", "not_helpful", 30),
        ("Wo bleibt mein Paket?", "handed_over", "no_knowledge", None, None, 20),
        ("Wo bleibt mein Paket?", "handed_over", "repeated_failure", "Versand", None, 10),
        # Not knowledge gaps: a person asked for, a broken bot, answers that helped or were not rated.
        ("Ich will mit einem Menschen sprechen", "handed_over", "customer_request", None, None, 5),
        ("Geheimnis bot_error", "handed_over", "bot_error", None, None, 4),
        ("Wann habt ihr geöffnet?", "answered", None, "Öffnungszeiten", "helpful", 3),
        ("Was kostet der Versand?", "answered", None, "Versand", None, 2),
        ("Hallo!", "smalltalk", "greeting", None, None, 1),
    ]
    for text, outcome, reason, title, rating, minutes_ago in cases:
        chat_id, message_id = ask(api, text)
        at = now - timedelta(minutes=minutes_ago)
        record_turn(server, chat_id, message_id, outcome, reason, title=title, rating=rating, at=at)


def test_admins_get_the_gaps_most_frequent_first(server: LiveServer, client: Api) -> None:
    seed(server, client)
    response = client.call("GET", PATH, admin_token(server, client))
    assert response.status_code == 200, response.text
    report = response.json()
    # The test server loads no embedding model: grouped by identical text (casefolded, spaces).
    assert report["grouping"] == "text" and gaps_service.current_embedder(server.ctx) is None
    assert report["questions"] == 5
    assert [c["size"] for c in report["clusters"]] == [3, 2]
    cancel, parcel = report["clusters"]
    assert cancel["examples"] == ["WIE KANN ICH MEINEN VERTRAG KÜNDIGEN?"]  # decrypted, the newest spelling
    assert cancel["reasons"] == {"clarified": 1, "low_confidence": 1, "not_helpful": 1}
    assert cancel["top_titles"] == {"Kündigung": 2, "Widerruf": 1}
    assert parcel["examples"] == ["Wo bleibt mein Paket?"]
    assert parcel["reasons"] == {"no_knowledge": 1, "repeated_failure": 1}
    # ISO 8601 with the server's offset (Europe/Berlin: +01:00 or +02:00).
    last_seen = datetime.fromisoformat(cancel["last_seen_at"])
    assert cancel["last_seen_at"][-6:] in ("+01:00", "+02:00")
    assert abs(last_seen - datetime.now().astimezone()) < timedelta(minutes=35)
    assert datetime.fromisoformat(report["generated_at"]).utcoffset() in (
        timedelta(hours=1),
        timedelta(hours=2),
    )
    shown = json.dumps(report, ensure_ascii=False)
    for not_a_gap in ("Menschen", "bot_error", "geöffnet", "kostet", "Hallo", "customer_request"):
        assert not_a_gap not in shown


def test_since_and_limit(server: LiveServer, client: Api) -> None:
    now = datetime.now().astimezone()
    for text, days_ago in (("Alte Frage zur Rechnung", 3), ("Neue Frage zur Rechnung", 0)):
        chat_id, message_id = ask(client, text)
        record_turn(
            server, chat_id, message_id, "handed_over", "low_confidence", at=now - timedelta(days=days_ago)
        )
    token = admin_token(server, client)
    everything = client.call("GET", PATH, token).json()
    assert everything["questions"] == 2
    yesterday = (now - timedelta(days=1)).isoformat()
    recent = client.call("GET", PATH, token, params={"since": yesterday}).json()
    assert [c["examples"] for c in recent["clusters"]] == [["Neue Frage zur Rechnung"]]
    # Without an offset the time is the server's (Europe/Berlin), like everything the API says.
    local = (now - timedelta(days=1)).astimezone(SERVER_ZONE).replace(tzinfo=None)
    assert client.call("GET", PATH, token, params={"since": local.isoformat()}).json()["questions"] == 1
    newest = client.call("GET", PATH, token, params={"limit": 1}).json()
    assert newest["questions"] == 1 and newest["clusters"][0]["examples"] == ["Neue Frage zur Rechnung"]
    for bad in ({"limit": 0}, {"limit": 10**6}, {"since": "gestern"}):
        refused = client.call("GET", PATH, token, params=bad)
        assert refused.status_code == 422 and refused.json()["code"] == "validation_error"


def test_only_admins_see_the_report(server: LiveServer, client: Api) -> None:
    assert client.call("GET", PATH).status_code == 401
    assert client.call("GET", PATH, "not-a-token").status_code == 401
    supporter = client.login(*server.make_staff())
    denied = client.call("GET", PATH, supporter["token"])
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    assert client.call("GET", PATH, client.guest()["token"]).status_code == 403


def test_an_empty_database_gives_an_empty_report(server: LiveServer, client: Api) -> None:
    response = client.call("GET", PATH, admin_token(server, client))
    assert response.status_code == 200
    report = response.json()
    assert report["questions"] == 0 and report["clusters"] == []


def test_a_question_that_does_not_decrypt_is_left_out(server: LiveServer, client: Api) -> None:
    chat_id, message_id = ask(client, "Wo ist meine Rechnung?")
    record_turn(server, chat_id, message_id, "handed_over", "low_confidence")
    chat_id, message_id = ask(client, "Kaputt")
    record_turn(server, chat_id, message_id, "handed_over", "low_confidence")

    async def corrupt() -> None:
        async with server.ctx.pool.acquire() as conn:
            await conn.execute(
                "UPDATE messages SET content = '\\x00'::bytea || content WHERE id = $1", message_id
            )

    server.run(corrupt())
    report = client.call("GET", PATH, admin_token(server, client)).json()
    assert report["questions"] == 1 and report["clusters"][0]["examples"] == ["Wo ist meine Rechnung?"]


def test_similar_questions_in_other_words_form_one_gap(
    server: LiveServer, client: Api, embedder: SentenceTransformerEmbedder
) -> None:
    questions = [
        "How do I reset my password?",
        "Where is my parcel?",
        "I forgot my password, how can I change it?",
        "Where is my package? It has not arrived",
        "Password reset is not working for me",
        "My parcel has still not been delivered",
        "Can I pay with PayPal?",
    ]
    for text in questions:
        chat_id, message_id = ask(client, text)
        record_turn(server, chat_id, message_id, "handed_over", "low_confidence")
    ctx = server.ctx
    report = server.run(gaps_service.report(ctx.pool, ctx.keyring, embedder, ctx.settings.gaps_similarity))
    assert isinstance(report, GapReportRead) and report.grouping == "similarity"
    assert [c.size for c in report.clusters] == [3, 3, 1]
    topics = [
        {("password" if "password" in e.lower() else "parcel") for e in c.examples}
        for c in report.clusters[:2]
    ]
    assert sorted(map(sorted, topics)) == [["parcel"], ["password"]]
    assert all(len(c.examples) == 3 for c in report.clusters[:2])
    assert report.clusters[2].examples == ["Can I pay with PayPal?"]


def test_the_gaps_command_prints_the_report(
    server: LiveServer,
    client: Api,
    embedder: SentenceTransformerEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(server, client)
    assert server.settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", server.settings.database_url.get_secret_value())
    monkeypatch.setenv("DATA_DIR", str(server.settings.data_dir))  # the server's message keys
    # The command loads the model with the embedder's loader; here it gets the one already loaded.
    monkeypatch.setattr("backend.knowledge.embedder.load_embedder", lambda name: embedder)
    assert main(["gaps"]) == 0
    out = capsys.readouterr().out
    assert "5 questions in 2 groups, grouped by similarity" in out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("1 "))
    assert lines[first].split()[1] == "3" and "not_helpful 1" in lines[first]
    assert "vertrag kündigen?" in lines[first + 1].lower()
    assert "Wo bleibt mein Paket?" in out and "Menschen" not in out
    assert "articles: Kündigung (2), Widerruf (1)" in out

    assert main(["gaps", "--json", "--limit", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 2 and report["grouping"] == "similarity"
    assert [c["examples"] for c in report["clusters"]] == [["Wo bleibt mein Paket?"]]

    assert main(["gaps", "--since", "2999-01-01"]) == 0
    assert "no unanswered questions" in capsys.readouterr().out


def test_the_gaps_command_without_a_model_groups_by_text(
    server: LiveServer, client: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(server, client)
    assert server.settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", server.settings.database_url.get_secret_value())
    monkeypatch.setenv("DATA_DIR", str(server.settings.data_dir))
    monkeypatch.setenv("EMBEDDING_MODEL", "/nonexistent/model")
    assert main(["gaps", "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert "grouping questions by identical text" in captured.err
    assert "5 questions in 2 groups, grouped by identical text" in captured.out
    assert "1 more groups" in captured.out
    monkeypatch.setenv("DATA_DIR", str(server.settings.data_dir / "elsewhere"))
    assert main(["gaps"]) == 2
    assert "MESSAGE_KEYS is not set" in capsys.readouterr().err
