"""The chat contract over HTTP: chats, messages, assignment, closing, escalation, storage."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from backend.core.config import Settings
from tests.conftest import Api, LiveServer
from tests.integration.test_http_auth import assert_berlin_time, assert_error

Session = dict[str, Any]


def post(api: Api, chat_id: str, token: str, text: str, client_msg_id: str | None = None) -> httpx.Response:
    body = {"text": text, "client_msg_id": client_msg_id or uuid.uuid4().hex}
    return api.call("POST", f"/api/chats/{chat_id}/messages", token, json=body)


def send(api: Api, chat_id: str, token: str, text: str, client_msg_id: str | None = None) -> dict[str, Any]:
    response = post(api, chat_id, token, text, client_msg_id)
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


def messages(api: Api, chat_id: str, token: str, **params: Any) -> list[dict[str, Any]]:
    response = api.call("GET", f"/api/chats/{chat_id}/messages", token, params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def get_chat(api: Api, chat_id: str, token: str) -> dict[str, Any]:
    response = api.call("GET", f"/api/chats/{chat_id}", token)
    assert response.status_code == 200, response.text
    chat: dict[str, Any] = response.json()
    return chat


def action(api: Api, chat_id: str, token: str, verb: str) -> httpx.Response:
    return api.call("POST", f"/api/chats/{chat_id}/{verb}", token)


@pytest.fixture
def customer(api: Api) -> Session:
    return api.guest("Kim Kunde")


@pytest.fixture
def chat(api: Api, customer: Session) -> dict[str, Any]:
    return api.new_chat(customer["token"])


@pytest.fixture(scope="module")
def other_supporter(live_server: LiveServer, api: Api) -> Session:
    name, password = live_server.make_staff()
    return api.login(name, password)


# --- chats ---------------------------------------------------------------------------------


def test_create_chat(api: Api, customer: Session) -> None:
    response = api.call("POST", "/api/chats", customer["token"], json={})
    assert response.status_code == 201, response.text
    chat = response.json()
    uuid.UUID(chat["id"])
    assert chat["status"] == "open"  # no bot configured on the test server
    assert chat["last_seq"] == 0
    assert chat["customer"] == customer["user"]
    assert chat["supporter"] is None
    assert chat["closed_at"] is None
    assert_berlin_time(chat["created_at"])
    assert get_chat(api, chat["id"], customer["token"]) == chat


def test_create_chat_bad_body(api: Api, customer: Session) -> None:
    assert_error(
        api.call("POST", "/api/chats", customer["token"], json={"status": "closed"}), 422, "validation_error"
    )
    assert_error(api.call("POST", "/api/chats", customer["token"], json=[]), 422, "validation_error")


def test_supporter_creates_chat_with_invitation(api: Api, supporter: Session) -> None:
    response = api.call(
        "POST", "/api/chats", supporter["token"], json={"customer_display_name": "Invited Ida"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["invite_url"], str) and body["invite_url"]
    assert body["chat"]["customer"]["display_name"] == "Invited Ida"
    assert body["chat"]["status"] in ("bot", "open", "assigned")


def test_customers_list_only_their_own_chats(api: Api) -> None:
    anna, bert = api.guest("Anna"), api.guest("Bert")
    assert api.call("GET", "/api/chats", anna["token"]).json() == []
    a1, a2 = api.new_chat(anna["token"]), api.new_chat(anna["token"])
    b1 = api.new_chat(bert["token"])
    listed = api.call("GET", "/api/chats", anna["token"]).json()
    assert [c["id"] for c in listed] == [a2["id"], a1["id"]]  # newest first
    assert [c["id"] for c in api.call("GET", "/api/chats", bert["token"]).json()] == [b1["id"]]


def test_supporters_list_all_chats(api: Api, supporter: Session) -> None:
    a = api.new_chat(api.guest("Cem")["token"])
    b = api.new_chat(api.guest("Dana")["token"])
    listed = api.call("GET", "/api/chats", supporter["token"], params={"limit": 500}).json()
    ids = [c["id"] for c in listed]
    assert a["id"] in ids and b["id"] in ids


def test_list_status_filter(api: Api, supporter: Session, customer: Session) -> None:
    open_chat = api.new_chat(customer["token"])
    closed_chat = api.new_chat(customer["token"])
    assert action(api, closed_chat["id"], supporter["token"], "close").status_code == 200
    for status, expected, unexpected in [
        ("open", open_chat, closed_chat),
        ("closed", closed_chat, open_chat),
    ]:
        for token in (customer["token"], supporter["token"]):
            listed = api.call("GET", "/api/chats", token, params={"status": status, "limit": 500}).json()
            assert listed and all(c["status"] == status for c in listed)
            ids = {c["id"] for c in listed}
            assert expected["id"] in ids and unexpected["id"] not in ids


@pytest.mark.parametrize(
    "params", [{"status": "archived"}, {"status": ""}, {"limit": 0}, {"limit": 501}, {"limit": "ten"}]
)
def test_list_bad_query(api: Api, customer: Session, params: dict[str, Any]) -> None:
    assert_error(api.call("GET", "/api/chats", customer["token"], params=params), 422, "validation_error")


def test_someone_elses_chat_is_not_found(api: Api, chat: dict[str, Any]) -> None:
    stranger = api.guest("Eve")["token"]
    chat_id = chat["id"]
    assert_error(api.call("GET", f"/api/chats/{chat_id}", stranger), 404, "not_found")
    assert_error(api.call("GET", f"/api/chats/{chat_id}/messages", stranger), 404, "not_found")
    assert_error(post(api, chat_id, stranger, "let me in"), 404, "not_found")
    assert_error(action(api, chat_id, stranger, "escalate"), 404, "not_found")
    unknown = str(uuid.uuid4())
    # "not yours" answers exactly like "does not exist"
    assert (
        api.call("GET", f"/api/chats/{chat_id}", stranger).json()
        == api.call("GET", f"/api/chats/{unknown}", stranger).json()
    )


def test_foreign_write_is_not_stored(api: Api, chat: dict[str, Any], customer: Session) -> None:
    stranger = api.guest("Eve")["token"]
    post(api, chat["id"], stranger, "injected")
    assert messages(api, chat["id"], customer["token"]) == []
    assert get_chat(api, chat["id"], customer["token"])["last_seq"] == 0


def test_supporter_sees_any_chat(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    send(api, chat["id"], customer["token"], "Hallo?")
    assert get_chat(api, chat["id"], supporter["token"])["id"] == chat["id"]
    assert [m["text"] for m in messages(api, chat["id"], supporter["token"])] == ["Hallo?"]


def test_unknown_chat(api: Api, customer: Session, supporter: Session) -> None:
    unknown = str(uuid.uuid4())
    for token in (customer["token"], supporter["token"]):
        assert_error(api.call("GET", f"/api/chats/{unknown}", token), 404, "not_found")
        assert_error(api.call("GET", f"/api/chats/{unknown}/messages", token), 404, "not_found")
        assert_error(post(api, unknown, token, "hello?"), 404, "not_found")
    assert_error(action(api, unknown, supporter["token"], "assign"), 404, "not_found")
    assert_error(action(api, unknown, supporter["token"], "close"), 404, "not_found")
    assert_error(action(api, unknown, customer["token"], "escalate"), 404, "not_found")


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
def test_malformed_chat_id(api: Api, customer: Session, bad_id: str) -> None:
    token = customer["token"]
    assert_error(api.call("GET", f"/api/chats/{bad_id}", token), 422, "validation_error")
    assert_error(api.call("GET", f"/api/chats/{bad_id}/messages", token), 422, "validation_error")
    assert_error(post(api, bad_id, token, "x"), 422, "validation_error")
    assert_error(action(api, bad_id, token, "escalate"), 422, "validation_error")


# --- messages ------------------------------------------------------------------------------


def test_post_message(api: Api, chat: dict[str, Any], customer: Session) -> None:
    response = post(api, chat["id"], customer["token"], "Mein Paket ist nicht angekommen 📦", "c-1")
    assert response.status_code == 201, response.text
    message = response.json()
    assert isinstance(message["id"], int)
    assert message["seq"] == 1
    assert message["chat_id"] == chat["id"]
    assert message["sender"] == customer["user"]
    assert message["text"] == "Mein Paket ist nicht angekommen 📦"
    assert message["client_msg_id"] == "c-1"
    assert message["kind"] == "text"
    assert_berlin_time(message["created_at"])
    assert messages(api, chat["id"], customer["token"]) == [message]
    assert get_chat(api, chat["id"], customer["token"])["last_seq"] == 1


def test_supporter_message_names_the_supporter(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    message = send(api, chat["id"], supporter["token"], "Guten Tag, wie kann ich helfen?")
    assert message["sender"] == supporter["user"]
    assert message["sender"]["role"] == "supporter"
    assert messages(api, chat["id"], customer["token"])[0]["sender"] == supporter["user"]


def test_repeated_client_msg_id(api: Api, chat: dict[str, Any], customer: Session) -> None:
    first = send(api, chat["id"], customer["token"], "einmal", "dup-1")
    again = post(api, chat["id"], customer["token"], "einmal", "dup-1")
    assert again.status_code == 200, again.text
    assert again.json() == first
    # Even with another text the stored message answers.
    changed = post(api, chat["id"], customer["token"], "zweimal", "dup-1")
    assert changed.status_code == 200
    assert (changed.json()["id"], changed.json()["seq"], changed.json()["text"]) == (first["id"], 1, "einmal")
    assert [m["id"] for m in messages(api, chat["id"], customer["token"])] == [first["id"]]
    assert get_chat(api, chat["id"], customer["token"])["last_seq"] == 1
    assert send(api, chat["id"], customer["token"], "next")["seq"] == 2


def test_client_msg_id_belongs_to_its_sender(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    mine = send(api, chat["id"], customer["token"], "from customer", "1")
    theirs = send(api, chat["id"], supporter["token"], "from supporter", "1")
    assert (mine["seq"], theirs["seq"]) == (1, 2)
    assert [m["text"] for m in messages(api, chat["id"], customer["token"])] == [
        "from customer",
        "from supporter",
    ]


def test_client_msg_id_belongs_to_its_chat(api: Api, customer: Session) -> None:
    one, two = api.new_chat(customer["token"]), api.new_chat(customer["token"])
    send(api, one["id"], customer["token"], "in one", "same")
    assert send(api, two["id"], customer["token"], "in two", "same")["text"] == "in two"


def test_seq_counts_from_one_without_gaps(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    seqs = [
        send(api, chat["id"], (customer, supporter)[i % 2]["token"], f"message {i}")["seq"] for i in range(8)
    ]
    assert seqs == list(range(1, 9))
    listed = messages(api, chat["id"], customer["token"])
    assert [m["seq"] for m in listed] == list(range(1, 9))
    assert [m["text"] for m in listed] == [f"message {i}" for i in range(8)]
    assert get_chat(api, chat["id"], customer["token"])["last_seq"] == 8


def test_concurrent_posts_get_distinct_gapless_seqs(
    live_server: LiveServer, api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    count = 40
    barrier = threading.Barrier(8)

    def worker(index: int) -> list[dict[str, Any]]:
        token = (customer, supporter)[index % 2]["token"]
        out = []
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            barrier.wait()
            for i in range(index, count, 8):
                response = http.post(
                    f"/api/chats/{chat['id']}/messages",
                    json={"text": f"m{i}", "client_msg_id": f"c{i}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 201, response.text
                out.append(response.json())
        return out

    with ThreadPoolExecutor(8) as pool:
        posted = [m for batch in pool.map(worker, range(8)) for m in batch]
    assert sorted(m["seq"] for m in posted) == list(range(1, count + 1))
    listed = messages(api, chat["id"], customer["token"], limit=200)
    assert [m["seq"] for m in listed] == list(range(1, count + 1))
    by_seq = {m["seq"]: m["text"] for m in posted}
    assert {m["seq"]: m["text"] for m in listed} == by_seq
    # Ids follow commit order too: a later seq never has a smaller id.
    ids = [m["id"] for m in listed]
    assert ids == sorted(ids)


def test_pagination(api: Api, chat: dict[str, Any], customer: Session) -> None:
    for i in range(7):
        send(api, chat["id"], customer["token"], f"n{i}")
    token = customer["token"]
    assert [m["seq"] for m in messages(api, chat["id"], token, after=3, limit=2)] == [4, 5]
    assert [m["seq"] for m in messages(api, chat["id"], token, after=5)] == [6, 7]
    assert messages(api, chat["id"], token, after=7) == []
    assert messages(api, chat["id"], token, after=1000) == []
    assert [m["seq"] for m in messages(api, chat["id"], token, limit=1)] == [1]
    assert len(messages(api, chat["id"], token, limit=200)) == 7


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 201},
        {"limit": 0},
        {"limit": -1},
        {"after": -1},
        {"after": "x"},
        {"after": 2**31},
        {"limit": 1.5},
    ],
)
def test_pagination_bad_query(
    api: Api, chat: dict[str, Any], customer: Session, params: dict[str, Any]
) -> None:
    response = api.call("GET", f"/api/chats/{chat['id']}/messages", customer["token"], params=params)
    assert_error(response, 422, "validation_error")


def test_default_limit_is_100(
    live_server: LiveServer, api: Api, chat: dict[str, Any], customer: Session
) -> None:
    token = customer["token"]

    def one(i: int) -> int:
        return post(api, chat["id"], token, f"bulk {i}", f"bulk-{i}").status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(105))) == {201}
    first = messages(api, chat["id"], token)
    assert [m["seq"] for m in first] == list(range(1, 101))
    assert [m["seq"] for m in messages(api, chat["id"], token, after=100)] == list(range(101, 106))


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("  hallo  ", "hallo"), ("\n\tZeile 1\nZeile 2\n ", "Zeile 1\nZeile 2"), ("ä", "ä")],
)
def test_text_is_trimmed(api: Api, chat: dict[str, Any], customer: Session, sent: str, stored: str) -> None:
    assert send(api, chat["id"], customer["token"], sent)["text"] == stored
    assert messages(api, chat["id"], customer["token"])[-1]["text"] == stored


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n"], ids=["empty", "space", "whitespace"])
def test_empty_text(api: Api, chat: dict[str, Any], customer: Session, text: str) -> None:
    assert_error(post(api, chat["id"], customer["token"], text), 422, "validation_error")
    assert messages(api, chat["id"], customer["token"]) == []


def test_nul_in_text(api: Api, chat: dict[str, Any], customer: Session) -> None:
    assert_error(post(api, chat["id"], customer["token"], "a\x00b"), 422, "validation_error")


def test_nul_in_client_msg_id(
    live_server: LiveServer, api: Api, chat: dict[str, Any], customer: Session
) -> None:
    response = httpx.post(
        f"{live_server.url}/api/chats/{chat['id']}/messages",
        json={"text": "hallo", "client_msg_id": "abc\u0000"},
        headers={"Authorization": f"Bearer {customer['token']}"},
        timeout=30,
    )
    assert_error(response, 422, "validation_error")


def test_one_bad_message_does_not_fail_others_sent_at_the_same_time(
    live_server: LiveServer, api: Api, customer: Session
) -> None:
    # Messages are committed in groups; a message the database cannot take must fail alone.
    chats = [api.new_chat(customer["token"]) for _ in range(3)]
    barrier = threading.Barrier(24)

    def one(index: int) -> tuple[int, int]:
        chat_id = chats[index % 3]["id"]
        client_msg_id = f"bad\u0000{index}" if index % 4 == 0 else f"good-{index}"
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            barrier.wait()
            response = http.post(
                f"/api/chats/{chat_id}/messages",
                json={"text": f"m{index}", "client_msg_id": client_msg_id},
                headers={"Authorization": f"Bearer {customer['token']}"},
            )
            return index, response.status_code

    with ThreadPoolExecutor(24) as pool:
        results = dict(pool.map(one, range(24)))
    good = {i: status for i, status in results.items() if i % 4}
    assert set(good.values()) == {201}, good
    assert {status for i, status in results.items() if i % 4 == 0} == {422}
    stored = sum(len(messages(api, c["id"], customer["token"])) for c in chats)
    assert stored == len(good)


@pytest.mark.parametrize(
    "raw",
    [b'{"text": "a\\ud800b", "client_msg_id": "s1"}', b'{"text": "ok", "client_msg_id": "\\udfff"}'],
    ids=["text", "client-msg-id"],
)
def test_lone_surrogate_is_a_client_error(
    live_server: LiveServer, chat: dict[str, Any], customer: Session, raw: bytes
) -> None:
    # Valid JSON escapes, but no UTF-8 text: the server must refuse them, not fail on them.
    response = httpx.post(
        f"{live_server.url}/api/chats/{chat['id']}/messages",
        content=raw,
        headers={"Authorization": f"Bearer {customer['token']}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code in (400, 422), response.text
    assert set(response.json()) == {"detail", "code"}


def test_text_length_limit(api: Api, chat: dict[str, Any], customer: Session) -> None:
    token = customer["token"]
    assert_error(post(api, chat["id"], token, "x" * 4001), 413, "too_large")
    assert messages(api, chat["id"], token) == []
    assert send(api, chat["id"], token, "x" * 4000)["text"] == "x" * 4000
    # The limit is in characters, after trimming.
    assert send(api, chat["id"], token, "ä" * 4000)["text"] == "ä" * 4000
    assert send(api, chat["id"], token, "  " + "y" * 4000 + "\n")["text"] == "y" * 4000


@pytest.mark.parametrize("length", [65537, 200_000], ids=["64k+1", "200k"])
def test_text_far_over_the_limit_is_too_large(
    api: Api, chat: dict[str, Any], customer: Session, length: int
) -> None:
    # The contract has one answer for every text over 4000 characters, however long: 413.
    assert_error(post(api, chat["id"], customer["token"], "x" * length), 413, "too_large")


def test_body_over_one_mib(api: Api, chat: dict[str, Any], customer: Session) -> None:
    body = b'{"text": "' + b"x" * (1024 * 1024 + 10) + b'", "client_msg_id": "big"}'
    response = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        customer["token"],
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "too_large")


def test_chunked_body_over_one_mib(api: Api, chat: dict[str, Any], customer: Session) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'", "client_msg_id": "chunked"}'

    response = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        customer["token"],
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "too_large")
    assert messages(api, chat["id"], customer["token"]) == []


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"text": "a", "client_msg_id": "b",}', b"\xff\xfe", b'{"text": "a" "b"}'],
    ids=["open-brace", "words", "trailing-comma", "bad-utf8", "missing-comma"],
)
def test_invalid_json(api: Api, chat: dict[str, Any], customer: Session, raw: bytes) -> None:
    response = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        customer["token"],
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        {"text": 5, "client_msg_id": "a"},
        {"text": "a", "client_msg_id": 5},
        {"text": ["a"], "client_msg_id": "a"},
        {"text": None, "client_msg_id": "a"},
        {"text": "a"},
        {"client_msg_id": "a"},
        {"text": "a", "client_msg_id": ""},
        {"text": "a", "client_msg_id": "c" * 101},
        {"text": "a", "client_msg_id": "a", "suggestion_id": "x"},
        {"text": "a", "client_msg_id": "a", "suggestion_id": 0},
        [],
        "text",
        None,
    ],
    ids=[
        "int-text",
        "int-id",
        "list-text",
        "null-text",
        "no-id",
        "no-text",
        "empty-id",
        "long-id",
        "str-suggestion",
        "zero-suggestion",
        "array",
        "string",
        "null",
    ],
)
def test_wrong_types(api: Api, chat: dict[str, Any], customer: Session, body: Any) -> None:
    response = api.call("POST", f"/api/chats/{chat['id']}/messages", customer["token"], json=body)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "extra", [{"sender_id": str(uuid.uuid4())}, {"seq": 1}, {"kind": "bot"}, {"chat_id": str(uuid.uuid4())}]
)
def test_extra_fields(api: Api, chat: dict[str, Any], customer: Session, extra: dict[str, Any]) -> None:
    body = {"text": "a", "client_msg_id": "x", **extra}
    response = api.call("POST", f"/api/chats/{chat['id']}/messages", customer["token"], json=body)
    assert_error(response, 422, "validation_error")
    assert messages(api, chat["id"], customer["token"]) == []


def test_unknown_suggestion(api: Api, chat: dict[str, Any], supporter: Session) -> None:
    response = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        supporter["token"],
        json={"text": "a", "client_msg_id": "s", "suggestion_id": 999_999_999},
    )
    assert_error(response, 422, "validation_error")


def test_message_rate_limit(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(http_message_rate=0.01, http_message_burst=3)
    api = Api(server.url)
    try:
        token = api.guest()["token"]
        chat = api.new_chat(token)
        for i in range(3):
            assert post(api, chat["id"], token, f"m{i}").status_code == 201
        refused = post(api, chat["id"], token, "one too many")
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
        assert len(messages(api, chat["id"], token)) == 3
    finally:
        api.http.close()


# --- assign, close, escalate -----------------------------------------------------------------


def test_customer_cannot_assign_or_close(api: Api, chat: dict[str, Any], customer: Session) -> None:
    assert_error(action(api, chat["id"], customer["token"], "assign"), 403, "forbidden")
    assert_error(action(api, chat["id"], customer["token"], "close"), 403, "forbidden")
    assert get_chat(api, chat["id"], customer["token"])["status"] == "open"


def test_assign(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session, other_supporter: Session
) -> None:
    response = action(api, chat["id"], supporter["token"], "assign")
    assert response.status_code == 200, response.text
    assigned = response.json()
    assert assigned["status"] == "assigned"
    assert assigned["supporter"] == supporter["user"]
    assert assigned["customer"] == customer["user"]
    assert get_chat(api, chat["id"], customer["token"]) == assigned

    assert_error(action(api, chat["id"], other_supporter["token"], "assign"), 409, "already_assigned")
    assert get_chat(api, chat["id"], customer["token"])["supporter"] == supporter["user"]

    again = action(api, chat["id"], supporter["token"], "assign")
    assert again.status_code == 200
    assert again.json() == assigned


def test_concurrent_assign_has_one_winner(live_server: LiveServer, api: Api, chat: dict[str, Any]) -> None:
    sessions = [api.login(*live_server.make_staff()) for _ in range(10)]
    barrier = threading.Barrier(len(sessions))

    def take(session: Session) -> tuple[int, dict[str, Any]]:
        with httpx.Client(base_url=live_server.url, timeout=30) as http:
            barrier.wait()
            response = http.post(
                f"/api/chats/{chat['id']}/assign", headers={"Authorization": f"Bearer {session['token']}"}
            )
            return response.status_code, response.json()

    with ThreadPoolExecutor(len(sessions)) as pool:
        results = list(pool.map(take, sessions))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 9
    winner = next(body for status, body in results if status == 200)
    assert all(body["code"] == "already_assigned" for status, body in results if status == 409)
    assert get_chat(api, chat["id"], sessions[0]["token"])["supporter"] == winner["supporter"]


def test_close(api: Api, chat: dict[str, Any], customer: Session, supporter: Session) -> None:
    send(api, chat["id"], customer["token"], "Danke!")
    response = action(api, chat["id"], supporter["token"], "close")
    assert response.status_code == 200, response.text
    closed = response.json()
    assert closed["status"] == "closed"
    assert closed["last_seq"] == 1
    closed_at = assert_berlin_time(closed["closed_at"])
    assert closed_at >= assert_berlin_time(closed["created_at"])
    assert get_chat(api, chat["id"], customer["token"]) == closed
    # The history stays readable.
    assert [m["text"] for m in messages(api, chat["id"], customer["token"])] == ["Danke!"]


def test_closed_chat_refuses_writes_and_changes(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    assert action(api, chat["id"], supporter["token"], "close").status_code == 200
    assert_error(post(api, chat["id"], customer["token"], "noch was"), 409, "chat_closed")
    assert_error(post(api, chat["id"], supporter["token"], "noch was"), 409, "chat_closed")
    assert_error(action(api, chat["id"], supporter["token"], "close"), 409, "chat_closed")
    assert_error(action(api, chat["id"], supporter["token"], "assign"), 409, "chat_closed")
    assert_error(action(api, chat["id"], customer["token"], "escalate"), 409, "chat_closed")
    assert messages(api, chat["id"], customer["token"]) == []
    assert get_chat(api, chat["id"], customer["token"])["status"] == "closed"


def test_close_assigned_chat(
    api: Api, chat: dict[str, Any], supporter: Session, other_supporter: Session
) -> None:
    assert action(api, chat["id"], supporter["token"], "assign").status_code == 200
    closed = action(api, chat["id"], supporter["token"], "close").json()
    assert closed["status"] == "closed"
    assert closed["supporter"] == supporter["user"]


def test_escalate_open_chat_is_unchanged(api: Api, chat: dict[str, Any], customer: Session) -> None:
    response = action(api, chat["id"], customer["token"], "escalate")
    assert response.status_code == 200, response.text
    assert response.json() == chat


def test_escalate_by_supporter(api: Api, chat: dict[str, Any], supporter: Session) -> None:
    assert_error(action(api, chat["id"], supporter["token"], "escalate"), 403, "forbidden")


def test_escalate_assigned_chat_keeps_supporter(
    api: Api, chat: dict[str, Any], customer: Session, supporter: Session
) -> None:
    assigned = action(api, chat["id"], supporter["token"], "assign").json()
    response = action(api, chat["id"], customer["token"], "escalate")
    assert response.status_code == 200
    assert response.json() == assigned


# --- what is stored --------------------------------------------------------------------------


def test_message_content_is_encrypted_at_rest(
    live_server: LiveServer, api: Api, chat: dict[str, Any], customer: Session
) -> None:
    secret_text = "Meine IBAN ist DE89 3704 0044 0532 0130 00"
    message = send(api, chat["id"], customer["token"], secret_text)

    async def row() -> Any:
        async with live_server.ctx.pool.acquire() as conn:
            return await conn.fetchrow(
                "SELECT content, key_id, seq, chat_id FROM messages WHERE id = $1", message["id"]
            )

    stored = live_server.run(row())
    content = bytes(stored["content"])
    assert secret_text.encode() not in content
    assert b"DE89" not in content
    assert stored["key_id"] == live_server.ctx.keyring.active_id
    assert stored["seq"] == 1 and str(stored["chat_id"]) == chat["id"]
    assert len(content) >= 12 + 16 + len(secret_text.encode())


def test_password_is_stored_as_bcrypt(live_server: LiveServer, api: Api) -> None:
    name = f"hash_{uuid.uuid4().hex[:8]}"
    password = "sicheres passwort"
    response = api.call("POST", "/api/auth/register", json={"username": name, "password": password})
    assert response.status_code == 201

    async def stored_hash() -> Any:
        async with live_server.ctx.pool.acquire() as conn:
            return await conn.fetchval("SELECT password_hash FROM users WHERE username = $1", name)

    hashed = live_server.run(stored_hash())
    assert hashed.startswith("$2b$04$")  # the test server's cost
    assert password not in hashed
    assert Settings.model_fields["bcrypt_rounds"].default == 12  # what production uses


def test_guest_has_no_password_hash(live_server: LiveServer, api: Api) -> None:
    guest = api.guest("Gast")

    async def row() -> Any:
        async with live_server.ctx.pool.acquire() as conn:
            return await conn.fetchrow(
                "SELECT password_hash, username, role FROM users WHERE id = $1",
                uuid.UUID(guest["user"]["id"]),
            )

    stored = live_server.run(row())
    assert stored["password_hash"] is None and stored["username"] is None and stored["role"] == "user"
