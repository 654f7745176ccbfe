"""Property: whatever the interleaving of writers and resends, a chat's seq is 1..n without gaps."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.auth.service import CurrentUser
from backend.chat import service as chat_service
from backend.core.errors import AppError
from tests.conftest import Api, LiveServer

# Each step: (writer index, client message number); repeats of a pair are resends.
schedules = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 15)), min_size=1, max_size=60)


def _as_user(session: dict[str, Any]) -> CurrentUser:
    user = session["user"]
    return CurrentUser(
        id=uuid.UUID(user["id"]),
        role=user["role"],
        display_name=user["display_name"],
        username=user["username"],
        jti=uuid.uuid4(),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=schedules, pause_every=st.integers(1, 10))
def test_seq_is_gapless_under_concurrent_writers(
    live_server: LiveServer,
    api: Api,
    supporter: dict[str, Any],
    schedule: list[tuple[int, int]],
    pause_every: int,
) -> None:
    customer = api.guest("Prop")
    chat = api.new_chat(customer["token"])
    chat_id = uuid.UUID(chat["id"])
    writers = [_as_user(customer), _as_user(supporter)] * 2

    async def run() -> list[Any]:
        futures = []
        for step, (writer, number) in enumerate(schedule):
            # Writers 0/2 and 1/3 share a user: the same number from the same user is a resend.
            key = f"{writer % 2}-{number}"
            futures.append(
                chat_service.submit_message(live_server.ctx, writers[writer], chat_id, f"text {key}", key)
            )
            if step % pause_every == 0:
                await asyncio.sleep(0)  # let a group commit start mid-schedule
        return await asyncio.gather(*futures, return_exceptions=True)

    results = live_server.run(run())
    assert not [r for r in results if isinstance(r, (AppError, Exception))]
    unique_keys = {f"{w % 2}-{n}" for w, n in schedule}
    stored = api.call("GET", f"/api/chats/{chat_id}/messages?limit=200", customer["token"]).json()
    assert [m["seq"] for m in stored] == list(range(1, len(unique_keys) + 1))
    assert sorted(m["client_msg_id"] for m in stored) == sorted(unique_keys)
    # Every ack of the same key names the same stored message.
    by_key: dict[str, tuple[int, int]] = {}
    for (writer, number), result in zip(schedule, results, strict=True):
        key = f"{writer % 2}-{number}"
        assert by_key.setdefault(key, (result.id, result.seq)) == (result.id, result.seq)
