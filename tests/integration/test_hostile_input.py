"""Hostile input the other tests do not try: deep and huge JSON, odd content types, duplicate
keys, numbers in disguise, huge integers, Unicode edge cases, header injection in names, path
tricks in chat ids, odd WebSocket frames, subscribe storms and message floods.

Every answer is a 4xx with the contract's body (never a 5xx), the server keeps answering, and
nothing stored is lost: the module keeps a ledger of what it stored in one chat and checks at
the end that exactly that is there, in order, and that a normal round trip still works.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import unicodedata
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Api, LiveServer
from tests.integration.wsclient import WsClient

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(start_server: Any) -> LiveServer:
    """A server of this module's own, so its metrics show only what these tests caused."""
    return start_server(
        guest_rate_per_minute=100_000,
        http_message_rate=1000,
        http_message_burst=1000,
        ws_frame_rate=100_000,
        ws_frame_burst=5000,
    )


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[Api]:
    api = Api(server.url)
    yield api
    api.http.close()


class Ledger:
    """One customer's chat and every text this module stored in it, in order."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.customer = api.guest("Ledger Kunde")
        self.token: str = self.customer["token"]
        self.chat_id: str = api.new_chat(self.token)["id"]
        self.texts: list[str] = []
        for text in ("before anything hostile", "zweite Nachricht ✓"):
            self.post_ok(text)

    @property
    def url(self) -> str:
        return f"/api/chats/{self.chat_id}/messages"

    def post_ok(self, text: str) -> dict[str, Any]:
        response = self.api.call(
            "POST", self.url, self.token, json={"text": text, "client_msg_id": uuid.uuid4().hex}
        )
        assert response.status_code == 201, response.text
        self.stored(response.json()["text"])
        message: dict[str, Any] = response.json()
        return message

    def stored(self, text: str) -> None:
        self.texts.append(text)

    def raw(self, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.api.call(
            "POST", self.url, self.token, content=content, headers=JSON if headers is None else headers
        )


@pytest.fixture(scope="module")
def ledger(client: Api) -> Ledger:
    return Ledger(client)


def assert_client_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (400, 413, 415, 422)), (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "code"}, body
    assert isinstance(body["detail"], str) and isinstance(body["code"], str)
    return body


def assert_alive(api: Api) -> None:
    assert api.call("GET", "/healthz").status_code == 200
    assert api.call("GET", "/readyz").status_code == 200


# --- deep and huge JSON ----------------------------------------------------------------------

DEPTH = 10_000


@pytest.mark.parametrize(
    "shape",
    ["array", "object", "inside-text", "inside-suggestion-id", "guest-name", "register"],
)
def test_json_nested_10000_levels_is_a_client_error(client: Api, ledger: Ledger, shape: str) -> None:
    arrays = b"[" * DEPTH + b"]" * DEPTH
    objects = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    started = time.monotonic()
    if shape == "array":
        response = ledger.raw(arrays)
    elif shape == "object":
        response = ledger.raw(objects)
    elif shape == "inside-text":
        response = ledger.raw(b'{"text": ' + arrays + b', "client_msg_id": "deep"}')
    elif shape == "inside-suggestion-id":
        response = ledger.raw(b'{"text": "x", "client_msg_id": "deep2", "suggestion_id": ' + objects + b"}")
    elif shape == "guest-name":
        response = client.call(
            "POST", "/api/auth/guest", content=b'{"display_name": ' + arrays + b"}", headers=JSON
        )
    else:
        body = b'{"username": "deepuser", "password": ' + objects + b"}"
        response = client.call("POST", "/api/auth/register", content=body, headers=JSON)
    assert_client_error(response, 400, 422)
    assert time.monotonic() - started < 10
    assert_alive(client)


@pytest.mark.parametrize(
    "shape", ["top-level-array", "text-is-array", "many-keys", "name-is-array", "long-client-msg-id"]
)
def test_json_of_900_kb_is_a_client_error(client: Api, ledger: Ledger, shape: str) -> None:
    items = b"1," * 450_000 + b"1"  # 900 KB, under the 1 MiB body limit
    if shape == "top-level-array":
        response = ledger.raw(b"[" + items + b"]")
    elif shape == "text-is-array":
        response = ledger.raw(b'{"text": [' + items + b'], "client_msg_id": "big"}')
    elif shape == "many-keys":
        keys = b",".join(b'"k%d": 1' % i for i in range(90_000))
        response = ledger.raw(b'{"text": "x", "client_msg_id": "keys", ' + keys + b"}")
    elif shape == "name-is-array":
        response = client.call(
            "POST", "/api/auth/guest", content=b'{"display_name": [' + items + b"]}", headers=JSON
        )
    else:
        response = ledger.raw(json.dumps({"text": "x", "client_msg_id": "c" * 900_000}).encode())
    assert_client_error(response, 413, 422)
    assert_alive(client)


def test_valid_message_padded_to_900_kb_with_white_space_is_stored_once(ledger: Ledger) -> None:
    body = b" " * 450_000 + json.dumps({"text": "padded", "client_msg_id": "pad"}).encode() + b"\n" * 450_000
    response = ledger.raw(body)
    assert response.status_code == 201, response.text
    ledger.stored("padded")
    assert ledger.raw(body).status_code == 200  # the same client_msg_id: a resend, not a second copy


async def test_deep_and_huge_frames_get_errors_and_the_socket_stays(
    server: LiveServer, ledger: Ledger
) -> None:
    socket_ = await WsClient.connect(server.ws_url, ledger.token)
    for frame, code in [
        ("[" * DEPTH + "]" * DEPTH, "invalid_json"),
        ('{"type": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}", "invalid_json"),
        ('{"type":' * 3000 + '"ping"' + "}" * 3000, "invalid_json"),
        ("[" + "1," * 20_000 + "1]", "bad_frame"),  # 40 KB, under the frame limit
    ]:
        await socket_.send(frame)
        error = await socket_.expect("error")
        assert error["code"] == code, (frame[:40], error)
    await socket_.send({"type": "ping"})
    await socket_.expect("pong")
    await socket_.close()


# --- content types -----------------------------------------------------------------------------

# What a cross-site HTML form can send without a preflight: never read as JSON.
FORM_TYPES = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
]
OTHER_NON_JSON = ["text/json", "application/xml", "application/octet-stream", "image/png", "text/html"]
JSON_FAMILY = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/vnd.api+json",
    "application/merge-patch+json",
]


@pytest.mark.parametrize("content_type", [*FORM_TYPES, *OTHER_NON_JSON, None])
def test_a_json_body_under_another_content_type_is_refused(ledger: Ledger, content_type: str | None) -> None:
    body = json.dumps({"text": f"sent as {content_type}", "client_msg_id": uuid.uuid4().hex}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    assert_client_error(ledger.raw(body, headers), 400, 415, 422)


@pytest.mark.parametrize("content_type", JSON_FAMILY)
def test_json_content_types_are_read(ledger: Ledger, content_type: str) -> None:
    text = f"sent as {content_type}"
    body = json.dumps({"text": text, "client_msg_id": uuid.uuid4().hex}).encode()
    response = ledger.raw(body, {"Content-Type": content_type})
    assert response.status_code == 201, response.text
    assert response.json()["text"] == text
    ledger.stored(text)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_json_in_other_unicode_encodings_is_read_exactly(ledger: Ledger, encoding: str) -> None:
    text = f"encoded as {encoding}: Grüße 😀"
    body = json.dumps({"text": text, "client_msg_id": uuid.uuid4().hex}, ensure_ascii=False).encode(encoding)
    response = ledger.raw(body)
    assert response.status_code in (201, 400), response.text
    if response.status_code == 201:
        assert response.json()["text"] == text
        ledger.stored(text)


def test_form_content_types_cannot_create_guests_or_log_in(client: Api) -> None:
    """A cross-site form cannot start sessions or guess passwords through the API."""
    for content_type in FORM_TYPES:
        for path, body in [
            ("/api/auth/guest", {"display_name": "Form"}),
            ("/api/auth/login", {"username": "nobody_here", "password": "12345678"}),
        ]:
            response = client.call(
                "POST", path, content=json.dumps(body).encode(), headers={"Content-Type": content_type}
            )
            assert_client_error(response, 400, 415, 422)


# --- duplicate keys, numbers as strings, huge integers ------------------------------------------


def test_duplicate_keys_the_last_wins_and_that_is_what_is_stored(client: Api, ledger: Ledger) -> None:
    response = ledger.raw(
        b'{"text": "first", "text": "second", "client_msg_id": "dup-a", "client_msg_id": "dup-b"}'
    )
    assert response.status_code == 201, response.text
    assert (response.json()["text"], response.json()["client_msg_id"]) == ("second", "dup-b")
    ledger.stored("second")
    stored = client.call(
        "GET", ledger.url, ledger.token, params={"after": response.json()["seq"] - 1, "limit": 1}
    )
    assert stored.json()[0]["text"] == "second"  # validated and stored: the same value
    guest = client.call(
        "POST", "/api/auth/guest", content=b'{"display_name": "A", "display_name": "B"}', headers=JSON
    )
    assert guest.json()["user"]["display_name"] == "B"
    # A duplicate key cannot smuggle a field past validation either.
    smuggled = ledger.raw(b'{"text": "x", "client_msg_id": "dup-c", "kind": "bot", "kind": "text"}')
    assert_client_error(smuggled, 422)


async def test_duplicate_type_in_a_frame_the_last_wins(server: LiveServer, client: Api) -> None:
    customer = client.guest("Dup Frame")
    socket_ = await WsClient.connect(server.ws_url, customer["token"])
    await socket_.send('{"type": "subscribe_queue", "type": "ping"}')
    await socket_.expect("pong")
    await socket_.send('{"type": "ping", "type": "subscribe_queue"}')
    assert await socket_.closed_with() == 4403  # the same rule as HTTP: no queue for customers


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": 12345, "client_msg_id": "n1"}, 422),
        ({"text": "n", "client_msg_id": 7}, 422),
        ({"text": "n", "client_msg_id": "n2", "suggestion_id": "5"}, 422),
        ({"text": "n", "client_msg_id": "n3", "suggestion_id": "0x10"}, 422),
        ({"text": "n", "client_msg_id": "n4", "suggestion_id": "1e3"}, 422),
        ({"text": "n", "client_msg_id": "n5", "suggestion_id": " 1 "}, 422),
        ({"text": "n", "client_msg_id": "n6", "suggestion_id": True}, 422),
        ({"text": "n", "client_msg_id": "n7", "suggestion_id": 1.5}, 422),
        ({"text": "n", "client_msg_id": "n8", "suggestion_id": 2**63}, 422),
        ({"text": "n", "client_msg_id": "n9", "suggestion_id": 2**64 + 1}, 422),
        ({"text": "n", "client_msg_id": "n10", "suggestion_id": -(2**63)}, 422),
        ({"text": "n", "client_msg_id": "n11", "suggestion_id": 10**300}, 422),
    ],
    ids=[
        "text-number",
        "id-number",
        "suggestion-string",
        "suggestion-hex-string",
        "suggestion-exponent-string",
        "suggestion-padded-string",
        "suggestion-bool",
        "suggestion-float",
        "suggestion-2^63",
        "suggestion-2^64+1",
        "suggestion-min-int64",
        "suggestion-10^300",
    ],
)
def test_numbers_in_disguise_and_huge_integers_in_bodies(
    ledger: Ledger, body: dict[str, Any], status: int
) -> None:
    assert_client_error(ledger.api.call("POST", ledger.url, ledger.token, json=body), status)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "n", "client_msg_id": "r1", "suggestion_id": ' + b"9" * 5000 + b"}",
        b'{"text": "n", "client_msg_id": "r2", "suggestion_id": NaN}',
        b'{"text": "n", "client_msg_id": "r3", "suggestion_id": Infinity}',
        b'{"text": "n", "client_msg_id": "r4", "suggestion_id": -Infinity}',
        b'{"text": "n", "client_msg_id": "r5", "suggestion_id": 1e400}',
        b'{"text": NaN, "client_msg_id": "r6"}',
    ],
    ids=["5000-digits", "nan", "infinity", "minus-infinity", "1e400", "nan-text"],
)
def test_non_finite_and_giant_numbers_in_bodies(ledger: Ledger, raw: bytes) -> None:
    assert_client_error(ledger.raw(raw), 400, 422)


@pytest.mark.parametrize(
    "query",
    [
        "after=" + "9" * 30,
        "after=" + "9" * 5000,
        "after=2147483648",
        "after=-1",
        "after=1.5",
        "after=1e3",
        "after=0x10",
        "after=NaN",
        "after=Infinity",
        "after=%00",
        "after=1&after=" + "9" * 30,
        "limit=" + "9" * 30,
        "limit=0",
        "limit=201",
        "limit=-1",
    ],
)
def test_huge_and_odd_numbers_in_queries(ledger: Ledger, query: str) -> None:
    response = ledger.api.call("GET", f"{ledger.url}?{query}", ledger.token)
    assert_client_error(response, 422)


def test_the_largest_after_is_an_empty_page(ledger: Ledger) -> None:
    response = ledger.api.call("GET", ledger.url, ledger.token, params={"after": 2**31 - 1, "limit": 200})
    assert response.status_code == 200 and response.json() == []
    listed = ledger.api.call("GET", "/api/chats", ledger.token, params={"limit": "9" * 40})
    assert_client_error(listed, 422)


async def test_huge_integers_in_frames(server: LiveServer, ledger: Ledger) -> None:
    socket_ = await WsClient.connect(server.ws_url, ledger.token)
    chat = ledger.chat_id
    for frame in [
        f'{{"type": "subscribe", "chat_id": "{chat}", "after": 2147483648}}',
        f'{{"type": "subscribe", "chat_id": "{chat}", "after": {"9" * 5000}}}',
        f'{{"type": "subscribe", "chat_id": "{chat}", "after": 1e400}}',
        f'{{"type": "subscribe", "chat_id": "{chat}", "after": NaN}}',
        f'{{"type": "subscribe", "chat_id": "{chat}", "after": 1.5}}',
        json.dumps(
            {"type": "message", "chat_id": chat, "client_msg_id": "h1", "text": "x", "suggestion_id": 2**64}
        ),
        json.dumps(
            {"type": "message", "chat_id": chat, "client_msg_id": "h2", "text": "x", "suggestion_id": "1"}
        ),
    ]:
        await socket_.send(frame)
        error = await socket_.expect("error")
        assert error["code"] in ("bad_frame", "invalid_json", "validation_error"), (frame[:80], error)
    await socket_.send({"type": "ping"})
    await socket_.expect("pong")
    assert not [f for f in socket_.inbox if f["type"] in ("message", "ack")]
    await socket_.close()


# --- Unicode -----------------------------------------------------------------------------------

UNICODE = {
    "rtl-override": "Anna \u202egnp.exe\u202c Kunde",
    "rtl-isolates": "a\u2067\u05e9\u05dc\u05d5\u05dd\u2069b \u0645\u0631\u062d\u0628\u0627",
    "zero-width": "Ze\u200bro\u200c Wi\u200ddth\u2060 \ufeffBOM",
    "zwj-family": "Familie \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
    " und \U0001f3f3\ufe0f\u200d\U0001f308",
    "four-byte": "\U0001f600 \U0001d11e \U00020000 \U0001f9d1\U0001f3fd\u200d\U0001f4bb",
    "combining": "e\u0301 vs \u00e9, A\u030a vs \u212b vs \u00c5,"
    " Z\u0351\u0352\u0353\u0354a\u0300\u0301\u0302\u0303l\u0489go",
    "noncharacters": "x\ufffey\uffffz\ufdd0 \U0010ffff end",
    "separators": "line\u2028para\u2029next\u0085end",
    "controls": "bell\x07 esc\x1b[31m red\x1b[0m del\x7f",
    "fullwidth": "\uff21\uff44\uff4d\uff49\uff4e \U0001d400\U0001d41d\U0001d426\U0001d422\U0001d427",
    "tag-characters": "hidden\U000e0041\U000e0042\U000e007f tags",
}


@pytest.mark.parametrize("name", list(UNICODE))
async def test_unicode_names_and_texts_are_stored_and_returned_exactly(
    server: LiveServer, client: Api, name: str
) -> None:
    value = UNICODE[name]
    if name == "combining":
        assert unicodedata.normalize("NFC", value) != value  # really not normalized
    guest = client.call("POST", "/api/auth/guest", json={"display_name": value})
    assert guest.status_code == 201, guest.text
    session = guest.json()
    token = session["token"]
    assert session["user"]["display_name"] == value
    assert client.call("GET", "/api/me", token).json()["display_name"] == value
    chat = client.new_chat(token)
    assert chat["customer"]["display_name"] == value
    socket_ = await WsClient.connect(server.ws_url, token)
    await socket_.send({"type": "subscribe", "chat_id": chat["id"], "after": 0})
    await socket_.send({"type": "ping"})
    await socket_.expect("pong")
    posted = client.call(
        "POST", f"/api/chats/{chat['id']}/messages", token, json={"text": value, "client_msg_id": name}
    )
    assert posted.status_code == 201, posted.text
    live = (await socket_.expect("message"))["message"]
    stored = client.call("GET", f"/api/chats/{chat['id']}/messages", token).json()
    for message in (posted.json(), live, stored[0]):
        # Byte for byte: no normalization, no stripping of invisible characters.
        assert message["text"].encode("utf-8") == value.encode("utf-8")
        assert message["sender"]["display_name"].encode("utf-8") == value.encode("utf-8")
    await socket_.close()


def test_the_4000_limit_counts_characters_not_bytes_or_graphemes(ledger: Ledger) -> None:
    emoji = "\U0001f600" * 4000  # 16,000 bytes
    assert ledger.post_ok(emoji)["text"] == emoji
    assert_client_error(
        ledger.api.call(
            "POST", ledger.url, ledger.token, json={"text": emoji + "\U0001f600", "client_msg_id": "e"}
        ),
        413,
    )
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, five code points
    assert_client_error(
        ledger.api.call("POST", ledger.url, ledger.token, json={"text": family * 801, "client_msg_id": "f"}),
        413,
    )
    assert ledger.post_ok(family * 800)["text"] == family * 800


# --- header and log injection through names --------------------------------------------------------

INJECTED = [
    "Evil\r\nSet-Cookie: session=stolen\r\nX-Injected: 1",
    "Evil\nX-Injected: 1",
    "Evil\rX-Injected: 1",
    "Evil\r\n\r\n<html>X-Injected</html>",
    "Evil%0d%0aX-Injected:%201",
    "Evil\u2028X-Injected: 1\u2029end",
    "Evil\u010d\u010aX-Injected: 1",  # UTF-8 bytes that some decoders fold to CR LF
]


def _no_injected_headers(response: httpx.Response) -> None:
    names = {name.lower() for name in response.headers}
    assert "x-injected" not in names and "set-cookie" not in names, response.headers
    assert "X-Injected" not in "".join(response.headers.values())


@pytest.mark.parametrize("name", INJECTED)
def test_line_breaks_in_names_stay_data(
    server: LiveServer, client: Api, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    staff = client.login(*server.make_staff())
    guest = client.call("POST", "/api/auth/guest", json={"display_name": name})
    _no_injected_headers(guest)
    assert guest.json()["user"]["display_name"] == name
    invited = client.call("POST", "/api/chats", staff["token"], json={"customer_display_name": name})
    _no_injected_headers(invited)
    assert invited.json()["chat"]["customer"]["display_name"] == name
    assert "\r" not in invited.json()["invite_url"] and "\n" not in invited.json()["invite_url"]
    token = invited.json()["invite_url"].split("invite=", 1)[1]
    accepted = client.call("POST", f"/api/invitations/{token}/accept")
    _no_injected_headers(accepted)
    assert accepted.json()["user"]["display_name"] == name
    registered = client.call(
        "POST",
        "/api/auth/register",
        json={"username": f"crlf_{uuid.uuid4().hex[:8]}", "password": "12345678", "display_name": name},
    )
    _no_injected_headers(registered)
    assert registered.json()["user"]["display_name"] == name
    # A username with line breaks at login: refused, and the log does not grow a forged line.
    login = client.call("POST", "/api/auth/login", json={"username": name, "password": "whatever1"})
    _no_injected_headers(login)
    assert_client_error(login, 401, 422)
    for record in caplog.records:
        assert "X-Injected" not in record.getMessage()
    for response in (guest, invited, accepted, registered):
        # JSON escapes the control characters: the raw body has no bare CR or LF.
        assert b"\r" not in response.content and b"\n" not in response.content


# --- path tricks in chat ids ----------------------------------------------------------------------


def raw_get(server: LiveServer, target: str, token: str) -> tuple[int, bytes]:
    """A GET with the request target exactly as given (no client-side normalization)."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[1]


@pytest.fixture(scope="module")
def victim(client: Api) -> dict[str, Any]:
    customer = client.guest("Path Victim")
    chat = client.new_chat(customer["token"])
    secret = f"path secret {uuid.uuid4().hex}"
    client.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        customer["token"],
        json={"text": secret, "client_msg_id": "s"},
    )
    return {"token": customer["token"], "chat": chat["id"], "secret": secret}


def _spellings(chat_id: str) -> list[str]:
    """Other spellings of the same UUID that a parser may accept."""
    return [
        chat_id.upper(),
        chat_id.replace("-", ""),
        "{" + chat_id + "}",
        "%7B" + chat_id + "%7D",
        "urn:uuid:" + chat_id,
        "urn%3Auuid%3A" + chat_id,
    ]


def _tricks(victim_chat: str, own_chat: str) -> list[str]:
    return [
        f"/api/chats/{own_chat}/..%2F..%2F{victim_chat}",
        f"/api/chats/{own_chat}%2F..%2F{victim_chat}",
        f"/api/chats/{own_chat}/../{victim_chat}",
        f"/api/chats/{own_chat}/..%2f{victim_chat}/messages",
        f"/api/chats/{victim_chat}%2Fmessages",
        f"/api/chats/{victim_chat}%00",
        f"/api/chats/{victim_chat}%00/messages",
        f"/api/chats/{victim_chat}%20",
        f"/api/chats/{victim_chat};{own_chat}",
        f"/api/chats/{victim_chat}%3B{own_chat}/messages",
        f"/api/chats/{victim_chat}?chat_id={own_chat}",
        f"/api/chats/{victim_chat}#{own_chat}",
        "/api/chats/%2e%2e/%2e%2e/admin/users",
        "/api/chats/..%2F..%2Fadmin%2Fusers",
        "/api/chats/%252e%252e%252fadmin%252fusers",
        "/api/chats/..\\..\\admin\\users",
        "/api/chats/%c0%ae%c0%ae/%c0%ae%c0%ae/admin/users",
        f"/api/chats/{victim_chat}/messages/..",
        f"/api/chats//{victim_chat}",
        f"/api/chats/{'a' * 10_000}",
        f"/api//chats/{victim_chat}/messages",
        f"/API/CHATS/{victim_chat}",
        f"/api/chats/{victim_chat}/messages%3Fafter=0",
    ]


def test_path_tricks_never_reach_someone_elses_chat(
    server: LiveServer, client: Api, victim: dict[str, Any]
) -> None:
    stranger = client.guest("Path Stranger")
    own_chat = client.new_chat(stranger["token"])["id"]
    targets = _tricks(victim["chat"], own_chat)
    targets += [f"/api/chats/{alt}" for alt in _spellings(victim["chat"])]
    targets += [f"/api/chats/{alt}/messages" for alt in _spellings(victim["chat"])]
    for target in targets:
        status, body = raw_get(server, target, stranger["token"])
        assert status in (400, 404, 405, 414, 422) or (status == 200 and own_chat.encode() in body), (
            target,
            status,
            body[:200],
        )
        assert victim["secret"].encode() not in body, target
        assert victim["chat"].encode() not in body, target
        assert b"Path Victim" not in body, target
        if status >= 400 and status != 414:
            assert set(json.loads(body)) == {"detail", "code"}, (target, body[:200])
    assert_alive(client)


def test_other_spellings_of_a_chat_id_are_checked_like_the_id(
    server: LiveServer, client: Api, victim: dict[str, Any]
) -> None:
    """Spellings the UUID parser accepts reach the owner's chat; to a stranger they are unknown."""
    stranger = client.guest("Spelling Stranger")
    for alt in _spellings(victim["chat"]):
        owner_status, owner_body = raw_get(server, f"/api/chats/{alt}/messages", victim["token"])
        assert owner_status in (200, 404, 422), (alt, owner_status)
        if owner_status == 200:
            assert victim["secret"].encode() in owner_body
        status, body = raw_get(server, f"/api/chats/{alt}/messages", stranger["token"])
        assert status in (404, 422), (alt, status, body[:200])
        if owner_status == 200:
            # Same as for any chat the stranger may not see.
            assert (status, json.loads(body)["code"]) == (404, "not_found")


# --- odd WebSocket frames -----------------------------------------------------------------------


async def test_binary_frames_are_read_as_utf8_text(server: LiveServer, ledger: Ledger) -> None:
    socket_ = await WsClient.connect(server.ws_url, ledger.token)
    await socket_.conn.send(b'{"type": "ping"}')
    await socket_.expect("pong")
    text = "sent as a binary frame ✓"
    frame = {"type": "message", "chat_id": ledger.chat_id, "client_msg_id": uuid.uuid4().hex, "text": text}
    await socket_.conn.send(json.dumps(frame, ensure_ascii=False).encode("utf-8"))
    assert (await socket_.expect("ack"))["seq"] > 0
    ledger.stored(text)
    for payload in [b"\xff\xfe\xfd", b'{"type": "ping"\xc0\xaf}', b"\xed\xa0\x80", b"", b"\x00" * 100]:
        await socket_.conn.send(payload)
        assert (await socket_.expect("error"))["code"] in ("invalid_json", "bad_frame")
    await socket_.send({"type": "ping"})
    await socket_.expect("pong")
    await socket_.close()


async def test_binary_frame_over_the_limit_closes_with_1009(server: LiveServer, ledger: Ledger) -> None:
    socket_ = await WsClient.connect(server.ws_url, ledger.token)
    await socket_.conn.send(b" " * 70_000)
    assert await socket_.closed_with() == 1009


@pytest.mark.parametrize(
    "payload", [b"\xff\xfe{", b'{"type": "ping", "x": "\xed\xa0\x80"}', b'{"type": "ping"}\xc3']
)
async def test_text_frame_of_invalid_utf8_closes_the_socket_only(
    server: LiveServer, ledger: Ledger, payload: bytes
) -> None:
    socket_ = await WsClient.connect(server.ws_url, ledger.token)
    await socket_.conn.send(payload, text=True)  # a text frame whose bytes are not UTF-8
    assert await socket_.closed_with() == 1007  # invalid frame payload data, per RFC 6455
    other = await WsClient.connect(server.ws_url, ledger.token)
    await other.send({"type": "ping"})
    await other.expect("pong")
    await other.close()


async def test_a_thousand_subscribes_to_random_chats_within_the_rate(server: LiveServer, client: Api) -> None:
    customer = client.guest("Subscriber")
    socket_ = await WsClient.connect(server.ws_url, customer["token"])
    chats = [str(uuid.uuid4()) for _ in range(1000)]
    for chat_id in chats:
        await socket_.send({"type": "subscribe", "chat_id": chat_id, "after": 0})
    errors = [await socket_.expect("error", timeout=20) for _ in chats]
    assert {e["code"] for e in errors} == {"not_found"}
    await socket_.send({"type": "ping"})
    await socket_.expect("pong")
    # Refused subscriptions leave nothing behind in the hub.
    channels = set(server.ctx.hub._channels)
    assert not [c for c in chats if any(c in channel for channel in channels)]
    await socket_.close()


async def test_a_thousand_subscribes_at_default_limits_close_with_4429(
    live_server: LiveServer, api: Api
) -> None:
    customer = api.guest("Storm")
    socket_ = await WsClient.connect(live_server.ws_url, customer["token"])
    try:
        for _ in range(1000):
            await socket_.send({"type": "subscribe", "chat_id": str(uuid.uuid4()), "after": 0})
    except websockets.ConnectionClosed:
        pass  # closed while we were still sending
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(await socket_.recv(timeout=10))
    except websockets.ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
    assert code == 4429, code
    assert all(f["type"] == "error" and f["code"] == "not_found" for f in frames)
    assert len(frames) <= live_server.settings.ws_frame_burst + 5
    # The server is fine and the customer can come back.
    again = await WsClient.connect(live_server.ws_url, customer["token"])
    await again.send({"type": "ping"})
    await again.expect("pong")
    await again.close()


# --- a malicious web page: cross-site requests and cross-site WebSockets ----------------------------


def test_no_cors_headers_for_a_foreign_origin(server: LiveServer, client: Api, ledger: Ledger) -> None:
    """Browsers may send cross-site requests, but without CORS headers they never read the answer."""
    evil = {"Origin": "https://evil.example"}
    for method, path, kwargs in [
        ("GET", "/api/me", {}),
        ("GET", ledger.url, {}),
        ("POST", "/api/auth/guest", {"json": {"display_name": "Cross Site"}}),
        ("OPTIONS", "/api/chats", {"headers": {"Access-Control-Request-Method": "POST"}}),
        ("OPTIONS", ledger.url, {"headers": {"Access-Control-Request-Headers": "authorization"}}),
    ]:
        headers = {**evil, **kwargs.pop("headers", {})}
        token = ledger.token if method == "GET" else None
        response = client.call(method, path, token, headers=headers, **kwargs)
        assert not [name for name in response.headers if name.lower().startswith("access-control-")], (
            method,
            path,
            response.headers,
        )


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://127.0.0.1",
        "http://127.0.0.1:1",
        "http://127.0.0.1.evil.example",
        "http://evil.example/127.0.0.1",
        "http://user@evil.example",
        "file://",
    ],
)
async def test_cross_site_websockets_are_refused_by_default(live_server: LiveServer, origin: str) -> None:
    """With ALLOWED_ORIGINS unset only the page's own origin may open a socket (403 before it opens)."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(live_server.ws_url, origin=origin)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    same = await websockets.connect(live_server.ws_url, origin=live_server.url)  # type: ignore[arg-type]
    await same.close()


# --- logs ----------------------------------------------------------------------------------------


async def test_message_text_names_and_tokens_never_reach_the_logs(
    server: LiveServer, client: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """At the production level (INFO), whatever goes wrong: no message text, name or token is logged."""
    secret = f"geheimer Text {uuid.uuid4().hex}"
    name = f"Geheimer Name {uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO)
    session = client.call("POST", "/api/auth/guest", json={"display_name": name}).json()
    token = session["token"]
    chat = client.new_chat(token)
    url = f"/api/chats/{chat['id']}/messages"
    client.call("POST", url, token, json={"text": secret, "client_msg_id": "log-1"})
    client.call("POST", url, token, json={"text": secret + "x" * 4000, "client_msg_id": "log-2"})  # 413
    client.call("POST", url, token, json={"text": secret, "client_msg_id": "log-3", "suggestion_id": 99})
    client.call(
        "POST", f"/api/chats/{uuid.uuid4()}/messages", token, json={"text": secret, "client_msg_id": "4"}
    )
    client.call("POST", "/api/auth/login", json={"username": name, "password": secret[:60]})
    socket_ = await WsClient.connect(server.ws_url, token)
    await socket_.send_message(chat["id"], secret + " over the socket")
    await socket_.send(
        {"type": "message", "chat_id": str(uuid.uuid4()), "client_msg_id": "5", "text": secret}
    )
    await socket_.expect("error")
    await socket_.send(f"{{not json {secret}")
    await socket_.expect("error")
    await socket_.close()
    client_side = ("httpx", "httpcore", "websockets.client", "asyncio")
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith(client_side)]
    assert lines, "no server log lines were captured"
    for line in lines:
        assert secret not in line and "geheimer Text" not in line, line
        assert name not in line, line
        assert token not in line and token.split(".")[2] not in line, line


# --- floods over HTTP --------------------------------------------------------------------------


def test_a_message_flood_over_http_gets_429_with_retry_after(start_server: Any) -> None:
    flood_server = start_server(http_message_rate=1, http_message_burst=3, guest_rate_per_minute=1000)
    api = Api(flood_server.url)
    try:
        flooder = api.guest("Flooder")
        chat = api.new_chat(flooder["token"])
        url = f"/api/chats/{chat['id']}/messages"

        def post(i: int) -> httpx.Response:
            with httpx.Client(base_url=flood_server.url, timeout=30) as http:
                return http.post(
                    url,
                    json={"text": f"flood {i}", "client_msg_id": f"flood-{i}"},
                    headers={"Authorization": f"Bearer {flooder['token']}"},
                )

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(post, range(40)))
        elapsed = time.monotonic() - started
        accepted = [r for r in responses if r.status_code == 201]
        refused = [r for r in responses if r.status_code == 429]
        assert len(accepted) + len(refused) == 40, [r.status_code for r in responses]
        assert 3 <= len(accepted) <= 3 + int(elapsed) + 1
        for response in refused:
            assert response.json() == {"detail": response.json()["detail"], "code": "rate_limited"}
            assert 1 <= int(response.headers["Retry-After"]) <= 2
        # The limit is per user: someone else writes at once.
        other = api.guest("Bystander")
        other_chat = api.new_chat(other["token"])
        ok = api.call(
            "POST",
            f"/api/chats/{other_chat['id']}/messages",
            other["token"],
            json={"text": "hi", "client_msg_id": "b"},
        )
        assert ok.status_code == 201
        # After Retry-After the flooder may write again, and what was accepted is stored exactly.
        time.sleep(int(refused[-1].headers["Retry-After"]) + 0.1)
        again = api.call(
            "POST", url, flooder["token"], json={"text": "after the wait", "client_msg_id": "late"}
        )
        assert again.status_code == 201, again.text
        stored = api.call("GET", url, flooder["token"]).json()
        assert [m["seq"] for m in stored] == list(range(1, len(accepted) + 2))
        assert sorted(m["text"] for m in stored[:-1]) == sorted(r.json()["text"] for r in accepted)
    finally:
        api.http.close()


# --- and afterwards: nothing lost -----------------------------------------------------------------


def _five_hundreds(server: LiveServer) -> list[str]:
    bad = []
    for metric in server.app.state.metrics.http_requests.collect():
        for sample in metric.samples:
            if (
                sample.name.endswith("_total")
                and sample.labels.get("status", "").startswith("5")
                and sample.value
            ):
                bad.append(f"{sample.labels} x{sample.value}")
    return bad


def _internal_socket_errors(server: LiveServer) -> float:
    total = 0.0
    for metric in server.app.state.metrics.ws_closed.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("code") == "1011":
                total += sample.value
    return total


async def test_zz_after_all_of_it_nothing_is_lost_and_a_round_trip_works(
    server: LiveServer, client: Api, ledger: Ledger
) -> None:
    stored = client.call("GET", ledger.url, ledger.token, params={"limit": 200}).json()
    assert [m["text"] for m in stored] == ledger.texts
    assert [m["seq"] for m in stored] == list(range(1, len(ledger.texts) + 1))
    supporter = client.login(*server.make_staff())
    watcher = await WsClient.connect(server.ws_url, supporter["token"])
    await watcher.send({"type": "subscribe", "chat_id": ledger.chat_id, "after": 0})
    replay = await watcher.messages(len(ledger.texts), timeout=10)
    assert [m["text"] for m in replay] == ledger.texts
    writer = await WsClient.connect(server.ws_url, ledger.token)
    ack = await writer.send_message(ledger.chat_id, "the last word, over the socket")
    assert ack["seq"] == len(ledger.texts) + 1
    assert (await watcher.expect("message"))["message"]["text"] == "the last word, over the socket"
    answer = client.call(
        "POST",
        ledger.url,
        supporter["token"],
        json={"text": "and an answer over HTTP", "client_msg_id": "answer"},
    )
    assert answer.status_code == 201 and answer.json()["seq"] == len(ledger.texts) + 2
    assert (await watcher.expect("message"))["message"]["seq"] == len(ledger.texts) + 2
    await watcher.close()
    await writer.close()
    assert _five_hundreds(server) == []
    assert _internal_socket_errors(server) == 0
