"""Every HTTP endpoint against every kind of caller, and against other people's ids.

The matrix below names, per endpoint, the status each caller gets: 401 without a token,
403 for a role that may not do this, 404 for someone else's chat (exactly as for a chat that
does not exist). `test_the_matrix_covers_every_route` walks the app's routes, so an endpoint
added without a row here fails the suite. Each cell runs in a fresh world: a victim customer
with a chat and a secret message, and a fresh caller. Whatever a customer or an anonymous
caller gets back never contains the victim's chat id, user id, name or message text.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, Api, LiveServer

ROLES = ("anonymous", "guest", "registered", "other_customer", "supporter", "admin")
CUSTOMERS = ("guest", "registered", "other_customer")
STAFF = ("supporter", "admin")
CODES = {401: "token_invalid", 403: "forbidden", 404: "not_found", 422: "validation_error"}

# --- the world of one cell -----------------------------------------------------------------


@dataclass
class Caller:
    """Who calls: their token (None: anonymous), their own chat, their password if any."""

    role: str
    token: str | None = None
    user_id: str | None = None
    chat_id: str | None = None
    password: str | None = None


@dataclass
class World:
    """The victim (a customer the caller is not) and what the cell needs besides."""

    live_server: LiveServer
    api: Api
    helper: dict[str, Any]  # a supporter who sets things up, never the caller
    victim: dict[str, Any]
    victim_name: str
    victim_chat: str
    secret: str
    archived: dict[str, str] = field(default_factory=dict)

    @property
    def victim_id(self) -> str:
        return str(self.victim["user"]["id"])

    def forbidden_strings(self) -> list[str]:
        return [self.victim_chat, self.victim_id, self.victim_name, self.secret]

    def victim_state(self) -> tuple[str, int, list[str]]:
        chat = self.api.call("GET", f"/api/chats/{self.victim_chat}", self.helper["token"]).json()
        messages = self.api.call(
            "GET", f"/api/chats/{self.victim_chat}/messages", self.helper["token"]
        ).json()
        return chat["status"], chat["last_seq"], [m["text"] for m in messages]

    def archive(self, chat_id: str) -> str:
        """Close, age and archive a chat; returns its id (now only in the archive)."""
        if chat_id in self.archived:
            return chat_id
        from backend.archive import service as archive_service

        self.api.call("POST", f"/api/chats/{chat_id}/close", self.helper["token"])
        server = self.live_server

        async def age() -> None:
            async with server.ctx.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE chats SET closed_at = now() - interval '30 days',"
                    " created_at = now() - interval '31 days' WHERE id = $1",
                    uuid.UUID(chat_id),
                )

        server.run(age())
        deadline = time.monotonic() + 30
        while True:
            server.run(
                archive_service.archive_pass(
                    server.ctx.pool, server.ctx.archive_pool, older_than=timedelta(days=7), batch_size=500
                )
            )
            found = self.api.call("GET", f"/api/archive/chats/{chat_id}", self.helper["token"])
            if found.status_code == 200:
                break
            assert time.monotonic() < deadline, found.text
            time.sleep(0.2)  # another pass held the lock
        self.archived[chat_id] = chat_id
        return chat_id


def _new_world(live_server: LiveServer, api: Api, helper: dict[str, Any]) -> World:
    name = f"Victim {uuid.uuid4().hex[:8]}"
    victim = api.guest(name)
    chat = api.new_chat(victim["token"])
    secret = f"victim secret {uuid.uuid4().hex}"
    posted = api.call(
        "POST",
        f"/api/chats/{chat['id']}/messages",
        victim["token"],
        json={"text": secret, "client_msg_id": "secret"},
    )
    assert posted.status_code == 201, posted.text
    return World(live_server, api, helper, victim, name, chat["id"], secret)


def _caller(role: str, world: World) -> Caller:
    api, server = world.api, world.live_server
    if role == "anonymous":
        return Caller(role)
    if role == "guest":
        session = api.guest("Guest Caller")
    elif role == "registered":
        username = f"reg_{uuid.uuid4().hex[:10]}"
        response = api.call(
            "POST", "/api/auth/register", json={"username": username, "password": TEST_PASSWORD}
        )
        assert response.status_code == 201, response.text
        session = response.json()
    elif role == "other_customer":
        # Another customer, who came in through a supporter's invitation link.
        invited = api.call(
            "POST", "/api/chats", world.helper["token"], json={"customer_display_name": "Invited Caller"}
        ).json()
        token = invited["invite_url"].split("invite=", 1)[1]
        session = api.call("POST", f"/api/invitations/{token}/accept").json()
        return Caller(role, session["token"], session["user"]["id"], session["chat"]["id"])
    else:
        session = api.login(*server.make_staff(role=role))
        return Caller(role, session["token"], session["user"]["id"], None, TEST_PASSWORD)
    chat = api.new_chat(session["token"])
    password = TEST_PASSWORD if role == "registered" else None
    return Caller(role, session["token"], session["user"]["id"], chat["id"], password)


# --- the matrix ----------------------------------------------------------------------------

Request = tuple[str, Any]  # (path, json body or None)


def everyone(status: int, anonymous: int | None = None) -> dict[str, int]:
    return {role: status for role in ROLES} | ({"anonymous": anonymous} if anonymous is not None else {})


def roles(
    *, anonymous: int = 401, customers: int, supporter: int, admin: int | None = None
) -> dict[str, int | None]:
    values: dict[str, int | None] = {"anonymous": anonymous, "supporter": supporter}
    values |= {role: customers for role in CUSTOMERS}
    values["admin"] = supporter if admin is None else admin
    return values


def own_only(customers: int) -> dict[str, int | None]:
    """The caller's own chat: customers have one; anonymous callers and staff do not."""
    return {role: (customers if role in CUSTOMERS else None) for role in ROLES}


@dataclass(frozen=True)
class Row:
    """One endpoint: how to call it for a target, and the status per target and role."""

    method: str
    path: str
    expect: dict[str, dict[str, int | None]]
    build: Callable[[World, Caller, str], Request]
    optional: bool = False  # a section whose routes may not exist yet


def plain(body: Any = None) -> Callable[[World, Caller, str], Request]:
    def build(world: World, caller: Caller, target: str) -> Request:
        return "", body

    return build


def chat_target(world: World, caller: Caller, target: str) -> str:
    if target == "own":
        assert caller.chat_id is not None
        return caller.chat_id
    if target == "foreign":
        return world.victim_chat
    return str(uuid.uuid4())


def on_chat(body: Callable[[Caller], Any] | None = None) -> Callable[[World, Caller, str], Request]:
    def build(world: World, caller: Caller, target: str) -> Request:
        return chat_target(world, caller, target), body(caller) if body else None

    return build


def on_archived_chat(world: World, caller: Caller, target: str) -> Request:
    if target == "random":
        return str(uuid.uuid4()), None
    return world.archive(chat_target(world, caller, target)), None


def on_user(world: World, caller: Caller, target: str) -> Request:
    return (world.victim_id if target == "victim" else str(uuid.uuid4())), None


def new_message(caller: Caller) -> dict[str, Any]:
    return {"text": f"hello from {caller.role}", "client_msg_id": uuid.uuid4().hex}


def new_chat_body(caller: Caller) -> dict[str, Any]:
    return {"customer_display_name": "Someone New"} if caller.role in STAFF else {}


def build_new_chat(world: World, caller: Caller, target: str) -> Request:
    return "", new_chat_body(caller)


def build_register(world: World, caller: Caller, target: str) -> Request:
    return "", {"username": f"new_{uuid.uuid4().hex[:10]}", "password": TEST_PASSWORD}


def build_login(world: World, caller: Caller, target: str) -> Request:
    username = f"login_{uuid.uuid4().hex[:10]}"
    world.api.call("POST", "/api/auth/register", json={"username": username, "password": TEST_PASSWORD})
    return "", {"username": username, "password": TEST_PASSWORD}


def build_password(world: World, caller: Caller, target: str) -> Request:
    current = caller.password or "no password at all"
    return "", {"current_password": current, "new_password": "a changed password"}


def build_invitation(world: World, caller: Caller, target: str) -> Request:
    if target == "random":
        return secrets.token_urlsafe(32), None
    # Someone else's live invitation link: the link itself is the credential (a bearer link).
    invited = world.api.call(
        "POST", "/api/chats", world.helper["token"], json={"customer_display_name": "Link Holder"}
    ).json()
    return invited["invite_url"].split("invite=", 1)[1], None


CHAT_READ = {
    "own": own_only(200),
    "foreign": roles(customers=404, supporter=200),
    "random": roles(customers=404, supporter=404),
}
STAFF_ACTION = {
    "own": own_only(403),
    "foreign": roles(customers=403, supporter=200),
    "random": roles(customers=403, supporter=404),
}
ADMIN_ON_USER = {
    "victim": roles(customers=403, supporter=403, admin=200),
    "random": roles(customers=403, supporter=403, admin=404),
}
ADMIN_ONLY = {"-": roles(customers=403, supporter=403, admin=200)}
ANY_SESSION = {"-": roles(customers=200, supporter=200)}

MATRIX: list[Row] = [
    # auth: open to everyone, a token in the header changes nothing
    Row("POST", "/api/auth/guest", {"-": everyone(201)}, plain({"display_name": "New Guest"})),
    Row(
        "POST", "/api/auth/guest/resume", {"-": everyone(401)}, plain({"resume_token": "not-a-resume-token"})
    ),
    Row("POST", "/api/auth/register", {"-": everyone(201)}, build_register),
    Row("POST", "/api/auth/login", {"-": everyone(200)}, build_login),
    # auth: with a session
    Row("POST", "/api/auth/refresh", ANY_SESSION, plain()),
    Row("POST", "/api/auth/logout", {"-": roles(customers=204, supporter=204)}, plain()),
    Row("POST", "/api/auth/logout-all", {"-": roles(customers=204, supporter=204)}, plain()),
    Row(
        "POST",
        "/api/auth/password",
        {
            "-": {
                "anonymous": 401,
                "guest": 403,  # guests have no password
                "registered": 204,
                "other_customer": 403,
                "supporter": 204,
                "admin": 204,
            }
        },
        build_password,
    ),
    Row("GET", "/api/me", ANY_SESSION, plain()),
    # administration: admins only, and 403 before any lookup (no probing for user ids)
    Row("GET", "/api/admin/users", ADMIN_ONLY, plain()),
    Row("GET", "/api/admin/audit", ADMIN_ONLY, plain()),
    Row("GET", "/api/admin/suggestions/stats", ADMIN_ONLY, plain()),
    Row("POST", "/api/admin/users/{user_id}/disable", ADMIN_ON_USER, on_user),
    Row("POST", "/api/admin/users/{user_id}/enable", ADMIN_ON_USER, on_user),
    # chats
    Row("POST", "/api/chats", {"-": roles(customers=201, supporter=201)}, build_new_chat),
    Row("GET", "/api/chats", ANY_SESSION, plain()),
    Row("GET", "/api/chats/{chat_id}", CHAT_READ, on_chat()),
    Row("GET", "/api/chats/{chat_id}/messages", CHAT_READ, on_chat()),
    Row(
        "POST",
        "/api/chats/{chat_id}/messages",
        {
            "own": own_only(201),
            "foreign": roles(customers=404, supporter=201),
            "random": roles(customers=404, supporter=404),
        },
        on_chat(new_message),
    ),
    Row(
        "POST",
        "/api/chats/{chat_id}/escalate",
        {
            "own": own_only(200),
            "foreign": roles(customers=404, supporter=403),  # it is the customer's button
            "random": roles(customers=404, supporter=404),
        },
        on_chat(),
    ),
    Row("POST", "/api/chats/{chat_id}/assign", STAFF_ACTION, on_chat()),
    # suggested replies and text modules: supporters only, customers 403 before any lookup
    Row(
        "GET",
        "/api/chats/{chat_id}/suggestions",
        {
            "own": own_only(403),
            "foreign": roles(customers=403, supporter=200),
            "random": roles(customers=403, supporter=404),
        },
        on_chat(),
    ),
    Row("GET", "/api/text-modules", {"-": roles(customers=403, supporter=200)}, plain()),
    # the bot: customers rate answers of their own chats; supporters read hand-overs
    Row(
        "POST",
        "/api/chats/{chat_id}/messages/{message_id}/feedback",
        {
            "own": own_only(404),  # message 1 is no bot answer of this chat
            "foreign": roles(customers=404, supporter=403),
            "random": roles(customers=404, supporter=404),
        },
        on_chat(lambda caller: {"rating": "helpful"}),
    ),
    Row(
        "GET",
        "/api/chats/{chat_id}/handover",
        {
            "own": own_only(403),
            "foreign": roles(customers=403, supporter=404),  # never handed over
            "random": roles(customers=403, supporter=404),
        },
        on_chat(),
    ),
    Row("GET", "/api/admin/bot/outcomes", ADMIN_ONLY, plain()),
    Row("GET", "/api/admin/knowledge-gaps", ADMIN_ONLY, plain()),
    Row("POST", "/api/chats/{chat_id}/close", STAFF_ACTION, on_chat()),
    Row(
        "POST",
        "/api/invitations/{token}/accept",
        {"random": everyone(404), "someone-elses-link": everyone(200)},
        build_invitation,
    ),
    # operations and pages: public
    Row("GET", "/healthz", {"-": everyone(200)}, plain()),
    Row("GET", "/readyz", {"-": everyone(200)}, plain()),
    Row("GET", "/metrics", {"-": everyone(200)}, plain()),
    Row("GET", "/", {"-": everyone(200)}, plain()),
    Row("GET", "/console", {"-": everyone(200)}, plain()),
    Row("GET", "/openapi.json", {"-": everyone(200)}, plain()),
    Row("GET", "/docs", {"-": everyone(200)}, plain()),
    Row("GET", "/docs/oauth2-redirect", {"-": everyone(200)}, plain()),
    Row("GET", "/redoc", {"-": everyone(200)}, plain()),
]

# --- the archive and purging (arrived with the archive release) --------------------------------
# Optional rows: the route-coverage check below forces a row here for every archive route the
# app has, and skips these cells where the routes do not exist.
ARCHIVE_MATRIX: list[Row] = [
    Row("GET", "/api/archive/chats", {"-": roles(customers=403, supporter=200)}, plain(), optional=True),
    Row(
        "GET",
        "/api/archive/chats/{chat_id}",
        {
            # Customers do not read the archive, not even their own chats.
            "own": own_only(403),
            "foreign": roles(customers=403, supporter=200),
            "random": roles(customers=403, supporter=404),
        },
        on_archived_chat,
        optional=True,
    ),
    Row("POST", "/api/admin/customers/{user_id}/purge", ADMIN_ON_USER, on_user, optional=True),
]

ALL_ROWS = {(row.method, row.path): row for row in [*MATRIX, *ARCHIVE_MATRIX]}


def app_operations(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every HTTP route the app serves (HEAD comes with GET)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        items = contexts() if callable(contexts) else [route]
        for item in items:
            methods = getattr(item, "methods", None)
            path = getattr(item, "path", None)
            if not methods or path is None:
                continue  # the WebSocket route and the static files mount
            found |= {(method, path) for method in methods if method != "HEAD"}
    return found


def test_the_matrix_covers_every_route(live_server: LiveServer) -> None:
    served = app_operations(live_server.app)
    missing = served - set(ALL_ROWS)
    assert not missing, f"endpoints without a row in the access matrix: {sorted(missing)}"
    stale = {key for key, row in ALL_ROWS.items() if key not in served and not row.optional}
    assert not stale, f"matrix rows for endpoints that no longer exist: {sorted(stale)}"
    # Every row gives every role an answer for every target (None: not applicable).
    for key, row in ALL_ROWS.items():
        for target, by_role in row.expect.items():
            assert set(by_role) == set(ROLES), (key, target)


def _check_error(response: httpx.Response, status: int) -> str | None:
    body = response.json()
    if set(body) != {"detail", "code"}:
        return f"error body {body}"
    if status in CODES and body["code"] != CODES[status]:
        return f"code {body['code']!r}, expected {CODES[status]!r}"
    return None


@pytest.fixture(scope="module")
def helper(live_server: LiveServer, api: Api) -> dict[str, Any]:
    return api.login(*live_server.make_staff(display_name="Matrix Helper"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", list(ALL_ROWS), ids=[f"{m} {p}" for m, p in ALL_ROWS])
def test_access(
    live_server: LiveServer, api: Api, helper: dict[str, Any], key: tuple[str, str], role: str
) -> None:
    row = ALL_ROWS[key]
    if row.optional and key not in app_operations(live_server.app):
        pytest.skip(f"{key} is not served (yet)")
    world = _new_world(live_server, api, helper)
    caller = _caller(role, world)
    problems: list[str] = []
    for target, by_role in row.expect.items():
        expected = by_role[role]
        if expected is None:
            continue
        param, body = row.build(world, caller, target)
        path = row.path
        for name in ("{chat_id}", "{user_id}", "{token}"):
            path = path.replace(name, param)
        path = path.replace("{message_id}", "1")  # never a bot answer of the target chat
        response = api.call(row.method, path, caller.token, json=body)
        where = f"{row.method} {row.path} as {role} on {target}"
        if response.status_code != expected:
            problems.append(f"{where}: {response.status_code}, expected {expected}: {response.text[:300]}")
            continue
        if expected >= 400:
            problem = _check_error(response, expected)
            if problem:
                problems.append(f"{where}: {problem}")
        if role not in STAFF:
            # Never another customer's data: not in errors, lists, pages or metrics.
            leaked = [s for s in world.forbidden_strings() if s in response.text]
            if leaked:
                problems.append(f"{where}: the answer contains the victim's {leaked}")
    if role not in STAFF and world.victim_chat not in world.archived:
        # Nothing a non-staff caller did changed the victim's chat.
        assert world.victim_state() == ("open", 1, [world.secret])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", CUSTOMERS)
def test_chat_lists_hold_only_the_callers_own_chats(
    live_server: LiveServer, api: Api, helper: dict[str, Any], role: str
) -> None:
    world = _new_world(live_server, api, helper)
    caller = _caller(role, world)
    for status in (None, "open", "assigned", "closed", "bot"):
        params = {"status": status, "limit": 500} if status else {"limit": 500}
        listed = api.call("GET", "/api/chats", caller.token, params=params).json()
        assert {chat["customer"]["id"] for chat in listed} <= {caller.user_id}
        assert world.victim_chat not in str(listed)


def test_not_yours_answers_exactly_like_does_not_exist(
    live_server: LiveServer, api: Api, helper: dict[str, Any]
) -> None:
    """Same status, same body, for every chat endpoint: no oracle for which chat ids exist."""
    world = _new_world(live_server, api, helper)
    caller = _caller("registered", world)
    for method, suffix, body in [
        ("GET", "", None),
        ("GET", "/messages", None),
        ("GET", "/messages?after=0&limit=200", None),
        ("POST", "/messages", {"text": "hi", "client_msg_id": "probe"}),
        ("POST", "/escalate", None),
    ]:
        foreign = api.call(method, f"/api/chats/{world.victim_chat}{suffix}", caller.token, json=body)
        unknown = api.call(method, f"/api/chats/{uuid.uuid4()}{suffix}", caller.token, json=body)
        assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
        assert foreign.status_code == 404


async def test_someone_elses_chat_over_the_socket(
    live_server: LiveServer, api: Api, helper: dict[str, Any]
) -> None:
    """The socket applies the same rule: subscribe, type and write to a foreign chat -> not_found."""
    from tests.integration.wsclient import WsClient

    world = _new_world(live_server, api, helper)
    caller = _caller("guest", world)
    assert caller.token is not None
    client = await WsClient.connect(live_server.ws_url, caller.token)
    for frame in [
        {"type": "subscribe", "chat_id": world.victim_chat, "after": 0},
        {"type": "typing", "chat_id": world.victim_chat},
        {"type": "message", "chat_id": world.victim_chat, "client_msg_id": "x1", "text": "intrusion"},
        {"type": "unsubscribe", "chat_id": world.victim_chat},
        {"type": "subscribe", "chat_id": world.victim_chat, "after": 0},
    ]:
        await client.send(frame)
    errors = [await client.expect("error") for _ in range(4)]
    assert [e["code"] for e in errors] == ["not_found"] * 4
    assert [e.get("client_msg_id") for e in errors].count("x1") == 1
    await client.send({"type": "ping"})
    await client.expect("pong")
    await asyncio.sleep(0.3)
    await client.send({"type": "ping"})
    await client.expect("pong")
    frames = str([*errors, *client.inbox])
    assert world.secret not in frames and world.victim_name not in frames
    assert not [f for f in client.inbox if f["type"] in ("message", "ack", "typing", "chat", "error")]
    await client.close()
    assert world.victim_state() == ("open", 1, [world.secret])
