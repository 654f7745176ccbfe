"""Password guessing: account and address locks, their expiry and growth, spellings of a
username, and whether login timing tells which usernames exist.

Each test runs on a server with small limits of its own (backend/auth/limits.py; settings
login_account_failures, login_address_failures, login_lock_seconds, login_max_lock_seconds).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, Api, LiveServer

WRONG = "not the password"


def login(api: Api, username: str, password: str) -> httpx.Response:
    return api.call("POST", "/api/auth/login", json={"username": username, "password": password})


def assert_locked(response: httpx.Response, max_seconds: int | None = None) -> int:
    """429 with the contract's body and a whole-second Retry-After; returns it."""
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.json() == {"detail": response.json()["detail"], "code": "rate_limited"}
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    if max_seconds is not None:
        assert retry_after <= max_seconds, retry_after
    return retry_after


def assert_wrong(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.json()["code"] == "invalid_credentials"


@pytest.fixture(scope="module")
def locking(start_server: Callable[..., LiveServer]) -> LiveServer:
    """Three failures lock an account for 1 s, doubling per further failure, at most 2 s."""
    return start_server(
        login_account_failures=3,
        login_address_failures=100_000,
        login_lock_seconds=1.0,
        login_max_lock_seconds=2.0,
    )


@pytest.fixture(scope="module")
def locking_api(locking: LiveServer) -> Any:
    api = Api(locking.url)
    yield api
    api.http.close()


def test_wrong_passwords_lock_the_account_and_the_lock_expires(locking: LiveServer, locking_api: Api) -> None:
    api = locking_api
    username, password = locking.make_staff(username=f"lock_{uuid.uuid4().hex[:8]}")
    for _ in range(3):
        assert_wrong(login(api, username, WRONG))
    right = login(api, username, password)
    wrong = login(api, username, WRONG)
    # While locked, right and wrong passwords get the same answer: the lock is no oracle.
    assert_locked(right, max_seconds=1)
    assert_locked(wrong, max_seconds=1)
    assert right.json() == wrong.json()
    time.sleep(int(right.headers["Retry-After"]) + 0.2)
    assert login(api, username, password).status_code == 200
    admin = api.login(*locking.make_staff(role="admin"))
    events = api.call("GET", "/api/admin/audit", admin["token"], params={"target": username}).json()
    assert {"login_failed", "login_locked"} <= {event["action"] for event in events}
    assert password not in str(events) and WRONG not in str(events)


def test_unknown_usernames_lock_exactly_like_real_ones(locking: LiveServer, locking_api: Api) -> None:
    """Locks do not tell which usernames exist."""
    api = locking_api
    real, _ = locking.make_staff(username=f"real_{uuid.uuid4().hex[:8]}")
    ghost = f"ghost_{uuid.uuid4().hex[:8]}"
    answers: dict[str, list[tuple[int, Any]]] = {}
    for name in (real, ghost):
        answers[name] = [(r.status_code, r.json()) for r in (login(api, name, WRONG) for _ in range(4))]
    assert answers[real] == answers[ghost]
    assert [status for status, _ in answers[real]] == [401, 401, 401, 429]


def _spelling_username() -> str:
    # With a k and an i: both have capitals outside ASCII that PostgreSQL's lower() folds to them.
    return f"kilo_{uuid.uuid4().hex[:8]}"


def test_case_spellings_share_one_lock(locking: LiveServer, locking_api: Api) -> None:
    api = locking_api
    username, password = locking.make_staff(username=_spelling_username())
    kelvin = "\u212a" + username[1:]  # KELVIN SIGN, lower-cased to "k"
    assert login(api, username.upper(), password).status_code == 200
    assert login(api, kelvin, password).status_code == 200  # it reaches the account...
    for spelling in (username.upper(), username.title(), kelvin):
        assert_wrong(login(api, spelling, WRONG))
    for spelling in (username, username.upper(), kelvin):
        assert_locked(login(api, spelling, password))  # ...and so it shares the account's lock


def test_the_account_lock_holds_for_every_spelling_that_reaches_the_account(
    locking: LiveServer, locking_api: Api
) -> None:
    """LATIN CAPITAL LETTER I WITH DOT ABOVE (U+0130): PostgreSQL's lower() (C.UTF-8) folds it to
    "i" and so logs into the account; Python's str.lower() makes it "i" + U+0307, another
    throttle key. A locked account must stay locked for that spelling too."""
    api = locking_api
    username, password = locking.make_staff(username=_spelling_username())
    dotted = username.replace("i", "\u0130")
    assert login(api, dotted, password).status_code == 200  # the spelling reaches the account
    for _ in range(3):
        assert_wrong(login(api, username, WRONG))
    assert_locked(login(api, username, password))
    # Expected: locked like every other spelling. The right password must not get in during
    # the lock, and wrong ones must not count against a fresh budget of guesses.
    answers = [login(api, dotted, password).status_code]
    answers += [login(api, dotted, WRONG).status_code for _ in range(3)]
    assert answers == [429, 429, 429, 429], (
        f"the locked account {username!r} still answers {answers} when spelled {dotted!r}: "
        "each spelling gets its own budget of guesses"
    )


def test_locks_double_with_each_further_failure_and_stay_capped(
    locking: LiveServer, locking_api: Api
) -> None:
    api = locking_api
    username, password = locking.make_staff(username=f"grow_{uuid.uuid4().hex[:8]}")
    for _ in range(3):
        assert_wrong(login(api, username, WRONG))
    waits = [assert_locked(login(api, username, WRONG), max_seconds=1)]
    for _ in range(2):
        time.sleep(waits[-1] + 0.2)
        # The first failure after a lock locks again, for twice as long, at most 2 s.
        assert_wrong(login(api, username, WRONG))
        waits.append(assert_locked(login(api, username, password), max_seconds=2))
    assert waits == [1, 2, 2]
    time.sleep(waits[-1] + 0.2)
    assert login(api, username, password).status_code == 200
    # Success forgets the account's failures.
    assert_wrong(login(api, username, WRONG))
    assert login(api, username, password).status_code == 200


def test_guessing_many_usernames_from_one_address_locks_the_address(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(
        login_account_failures=100_000,
        login_address_failures=5,
        login_lock_seconds=1.0,
        login_max_lock_seconds=3.0,
    )
    api = Api(server.url)
    try:
        first, password = server.make_staff()
        second, _ = server.make_staff()
        for i in range(5):
            assert_wrong(login(api, f"spray_{i}_{uuid.uuid4().hex[:6]}", WRONG))
        # Every account is locked for this address, right passwords included.
        wait = assert_locked(login(api, first, password), max_seconds=1)
        assert_locked(login(api, second, password), max_seconds=1)
        assert_locked(api.call("POST", "/api/auth/login", json={"username": "x", "password": WRONG}))
        time.sleep(wait + 0.2)
        assert login(api, first, password).status_code == 200
        # A success does not clear the address: its next failure locks it again, for longer.
        assert_wrong(login(api, f"spray_{uuid.uuid4().hex[:6]}", WRONG))
        assert assert_locked(login(api, second, password), max_seconds=2) == 2
    finally:
        api.http.close()


def test_password_spraying_is_stopped_by_the_address_lock_at_default_ratios(
    start_server: Callable[..., LiveServer],
) -> None:
    """One password against many accounts: the account lock never trips, the address lock does."""
    server = start_server(login_account_failures=10, login_address_failures=30, login_lock_seconds=60.0)
    api = Api(server.url)
    try:
        accounts = [server.make_staff()[0] for _ in range(4)]  # at most 8 failures each
        answers = [login(api, accounts[i % 4], "Summer2025!").status_code for i in range(40)]
        assert answers[:30] == [401] * 30
        assert set(answers[30:]) == {429}
    finally:
        api.http.close()


# --- timing -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timed(start_server: Callable[..., LiveServer]) -> LiveServer:
    """bcrypt at cost 8, so one check takes long enough to see; no locks in the way."""
    return start_server(bcrypt_rounds=8, login_account_failures=100_000, login_address_failures=100_000)


def _duration(http: httpx.Client, username: str, password: str) -> float:
    started = time.perf_counter()
    response = http.post("/api/auth/login", json={"username": username, "password": password})
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    return elapsed


def _medians(timed: LiveServer, known: str) -> dict[str, float]:
    samples: dict[str, list[float]] = {
        "unknown user": [],
        "known user, wrong password": [],
        "over 72 bytes": [],
    }
    with httpx.Client(base_url=timed.url, timeout=30) as http:
        for _ in range(2):  # warm up connections and code paths
            _duration(http, known, WRONG)
            _duration(http, f"nobody_{uuid.uuid4().hex[:8]}", WRONG)
        for _ in range(10):  # interleaved, so load on the machine hits all three alike
            samples["unknown user"].append(_duration(http, f"nobody_{uuid.uuid4().hex[:8]}", WRONG))
            samples["known user, wrong password"].append(_duration(http, known, WRONG))
            samples["over 72 bytes"].append(_duration(http, known, "x" * 200))
    return {name: statistics.median(values) for name, values in samples.items()}


def test_unknown_users_and_wrong_passwords_take_about_as_long(timed: LiveServer) -> None:
    """Medians of 10 interleaved samples per kind must lie within 3x of each other. Skipping
    bcrypt for unknown users (or for overlong passwords) would make that kind about 10x faster
    (a check costs ~10-30 ms at cost 8, the rest of a login 1-3 ms) in every round; noise on a
    busy machine does not repeat like that, so a round that misses the bound is measured again,
    up to three rounds, before the test fails."""
    known, _ = timed.make_staff(password=TEST_PASSWORD)
    rounds = []
    for _ in range(3):
        medians = _medians(timed, known)
        rounds.append({name: f"{value * 1000:.1f} ms" for name, value in medians.items()})
        if max(medians.values()) / min(medians.values()) < 3:
            return
    raise AssertionError(f"login timing tells unknown users apart in every round: {rounds}")
