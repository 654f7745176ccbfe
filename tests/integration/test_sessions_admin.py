"""Login limits, logout everywhere, password change, disabling accounts and the audit log."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import TEST_PASSWORD, Api, LiveServer
from tests.integration.wsclient import WsClient


@pytest.fixture(scope="module")
def strict(start_server: Callable[..., LiveServer]) -> LiveServer:
    """A server with tight login limits and short locks."""
    return start_server(login_account_failures=3, login_address_failures=1000, login_lock_seconds=1.0)


def _login(api: Api, username: str, password: str) -> Any:
    return api.call("POST", "/api/auth/login", json={"username": username, "password": password})


def test_failed_logins_lock_the_account_for_a_while(strict: LiveServer) -> None:
    api = Api(strict.url)
    username, password = strict.make_staff()
    for _ in range(3):
        assert _login(api, username, "wrong password!").status_code == 401
    locked = _login(api, username, password)
    assert locked.status_code == 429 and locked.json()["code"] == "rate_limited"
    assert int(locked.headers["Retry-After"]) >= 1
    time.sleep(1.2)  # the lock is time-bound: the owner gets in once it has passed
    assert _login(api, username, password).status_code == 200
    # Success forgets the failures: one more wrong try does not lock again.
    assert _login(api, username, "wrong password!").status_code == 401
    assert _login(api, username, password).status_code == 200


def test_locks_grow_but_stay_bounded(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(login_account_failures=2, login_lock_seconds=2.0, login_max_lock_seconds=3.0)
    api = Api(server.url)
    username, _ = server.make_staff()
    for _ in range(2):
        _login(api, username, "nope nope nope")
    first = int(_login(api, username, "nope nope nope").headers["Retry-After"])
    assert 1 <= first <= 2


def test_failed_logins_from_one_address_lock_that_address(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(login_account_failures=1000, login_address_failures=4, login_lock_seconds=30.0)
    api = Api(server.url)
    username, password = server.make_staff()
    for i in range(4):
        assert _login(api, f"guess{i}", "wrong password!").status_code == 401
    locked = _login(api, username, password)
    assert locked.status_code == 429 and "Retry-After" in locked.headers


def test_unknown_and_wrong_look_the_same(strict: LiveServer) -> None:
    api = Api(strict.url)
    username, _ = strict.make_staff()
    unknown = _login(api, "nobody_" + uuid.uuid4().hex[:6], "whatever123")
    wrong = _login(api, username, "whatever123")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_logout_everywhere_ends_every_session(live_server: LiveServer, api: Api) -> None:
    username, password = live_server.make_staff()
    first, second = api.login(username, password), api.login(username, password)
    sockets = [await WsClient.connect(live_server.ws_url, s["token"]) for s in (first, second)]
    assert api.call("POST", "/api/auth/logout-all", first["token"]).status_code == 204
    for socket in sockets:
        assert await socket.closed_with(timeout=3) == 4401
    for session in (first, second):
        assert api.call("GET", "/api/me", session["token"]).status_code == 401


async def test_changing_the_password_ends_the_other_sessions(live_server: LiveServer, api: Api) -> None:
    username, password = live_server.make_staff()
    here, elsewhere = api.login(username, password), api.login(username, password)
    here_socket = await WsClient.connect(live_server.ws_url, here["token"])
    other_socket = await WsClient.connect(live_server.ws_url, elsewhere["token"])
    wrong = api.call(
        "POST",
        "/api/auth/password",
        here["token"],
        json={"current_password": "not it!!", "new_password": "x" * 12},
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_password"
    assert api.call("GET", "/api/me", here["token"]).status_code == 200  # the session is fine
    too_long = api.call(
        "POST",
        "/api/auth/password",
        here["token"],
        json={"current_password": password, "new_password": "ü" * 40},
    )
    assert too_long.status_code == 422 and "72" in too_long.json()["detail"]
    changed = api.call(
        "POST",
        "/api/auth/password",
        here["token"],
        json={"current_password": password, "new_password": "ein neues Passwort"},
    )
    assert changed.status_code == 204
    assert await other_socket.closed_with(timeout=3) == 4401
    assert api.call("GET", "/api/me", elsewhere["token"]).status_code == 401
    assert api.call("GET", "/api/me", here["token"]).status_code == 200
    await here_socket.send({"type": "ping"})
    assert (await here_socket.expect("pong"))["type"] == "pong"
    assert _login(api, username, password).status_code == 401
    assert api.login(username, "ein neues Passwort")["user"]["username"] == username


def test_guests_have_no_password_to_change(api: Api) -> None:
    guest = api.guest()
    response = api.call(
        "POST",
        "/api/auth/password",
        guest["token"],
        json={"current_password": "x" * 8, "new_password": "y" * 8},
    )
    assert response.status_code == 403


async def test_admin_disables_and_enables_an_account(live_server: LiveServer, api: Api) -> None:
    admin = api.login(*live_server.make_staff(role="admin"))
    username, password = live_server.make_staff()
    target = api.login(username, password)
    socket = await WsClient.connect(live_server.ws_url, target["token"])
    user_id = target["user"]["id"]
    disabled = api.call("POST", f"/api/admin/users/{user_id}/disable", admin["token"])
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert await socket.closed_with(timeout=3) == 4401
    assert api.call("GET", "/api/me", target["token"]).status_code == 401
    assert _login(api, username, password).status_code == 401
    enabled = api.call("POST", f"/api/admin/users/{user_id}/enable", admin["token"])
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert api.login(username, password)["user"]["id"] == user_id
    listed = api.call("GET", "/api/admin/users", admin["token"], params={"role": "supporter"}).json()
    assert any(u["id"] == user_id and u["disabled"] is False for u in listed)


def test_only_admins_administer(live_server: LiveServer, api: Api, supporter: dict[str, Any]) -> None:
    admin = api.login(*live_server.make_staff(role="admin"))
    customer = api.guest()
    for token in (supporter["token"], customer["token"]):
        for method, path in [
            ("GET", "/api/admin/users"),
            ("GET", "/api/admin/audit"),
            ("POST", f"/api/admin/users/{admin['user']['id']}/disable"),
        ]:
            response = api.call(method, path, token)
            assert response.status_code == 403 and response.json()["code"] == "forbidden"
    self_disable = api.call("POST", f"/api/admin/users/{admin['user']['id']}/disable", admin["token"])
    assert self_disable.status_code == 422
    unknown = api.call("POST", f"/api/admin/users/{uuid.uuid4()}/disable", admin["token"])
    assert unknown.status_code == 404


def test_the_audit_log_records_security_events(live_server: LiveServer, api: Api) -> None:
    admin = api.login(*live_server.make_staff(role="admin"))
    username, password = live_server.make_staff()
    _login(api, username, "definitely wrong")
    staff = api.login(username, password)
    chat = api.new_chat(api.guest()["token"])
    api.call("POST", f"/api/chats/{chat['id']}/assign", staff["token"])
    api.call("POST", f"/api/chats/{chat['id']}/close", staff["token"])
    api.call("POST", "/api/auth/logout", staff["token"])
    events = api.call("GET", "/api/admin/audit", admin["token"], params={"limit": 1000}).json()
    mine = [
        e for e in events if e["actor_id"] == staff["user"]["id"] or e["target"] in (username, chat["id"])
    ]
    actions = {e["action"] for e in mine}
    assert {"login_failed", "login_ok", "chat_assigned", "chat_closed", "logout"} <= actions
    assert all(e["address"] for e in mine if e["action"].startswith("login"))
    created = api.call("GET", "/api/admin/audit", admin["token"], params={"action": "user_created"}).json()
    assert created and all(e["action"] == "user_created" for e in created)
    flat = str(events)
    assert password not in flat and TEST_PASSWORD not in flat  # never a password in the log
    page = api.call("GET", "/api/admin/audit", admin["token"], params={"limit": 2}).json()
    older = api.call("GET", "/api/admin/audit", admin["token"], params={"before_id": page[-1]["id"]}).json()
    assert older and older[0]["id"] < page[-1]["id"]


def test_guessing_the_current_password_is_limited_like_logins(strict: LiveServer) -> None:
    api = Api(strict.url)
    username, password = strict.make_staff()
    session = api.login(username, password)
    guesses = [
        api.call(
            "POST",
            "/api/auth/password",
            session["token"],
            json={"current_password": f"guess{i:04}", "new_password": "x" * 10},
        )
        for i in range(4)
    ]
    assert [g.status_code for g in guesses] == [403, 403, 403, 429]
    assert "Retry-After" in guesses[-1].headers
    same = api.call(
        "POST",
        "/api/auth/password",
        session["token"],
        json={"current_password": password, "new_password": password},
    )
    assert same.status_code in (422, 429)


async def test_logout_everywhere_also_retires_a_guests_way_back(live_server: LiveServer, api: Api) -> None:
    guest = api.guest()
    assert api.call("POST", "/api/auth/logout-all", guest["token"]).status_code == 204
    resumed = api.call("POST", "/api/auth/guest/resume", json={"resume_token": guest["resume_token"]})
    assert resumed.status_code == 401


async def test_an_overlong_token_in_a_second_auth_frame_closes_the_socket(
    live_server: LiveServer, api: Api
) -> None:
    socket = await WsClient.connect(live_server.ws_url, api.guest()["token"])
    await socket.send({"type": "auth", "token": "x" * 5000})
    assert await socket.closed_with() == 4401


def test_a_body_that_is_not_json_is_415(api: Api) -> None:
    response = api.call(
        "POST",
        "/api/auth/guest",
        content=b"display_name=Anna",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
