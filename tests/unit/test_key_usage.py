"""Key usage reporting: which keys are active, still needed, removable or missing."""

from __future__ import annotations

from backend.chat.rotation import Failure, KeyUsage, RotationProgress, RotationResult
from backend.core.crypto import KeyRing

RING = KeyRing.parse(",".join(KeyRing.generate_spec(key_id) for key_id in ("k3", "k2", "k1")))


def test_a_key_is_removable_only_when_no_row_uses_it() -> None:
    usage = KeyUsage.of({"k3": 120, "k2": 4}, RING)
    assert usage.removable == ["k1"]
    assert usage.unknown == []
    assert usage.remaining == 4
    assert usage.lines() == [
        "key k3: 120 messages (active)",
        "key k2: 4 messages (still in use: run rotate-keys)",
        "key k1: 0 messages (used by no message: may be removed from MESSAGE_KEYS)",
    ]


def test_the_active_key_is_never_removable_even_when_unused() -> None:
    usage = KeyUsage.of({}, RING)
    assert usage.removable == ["k2", "k1"]
    assert usage.remaining == 0
    assert usage.lines()[0] == "key k3: 0 messages (active)"


def test_unknown_key_ids_are_listed_last_and_count_as_remaining() -> None:
    usage = KeyUsage.of({"k3": 10, "old": 2, "k1": 1, "a0": 5}, RING)
    assert usage.unknown == ["a0", "old"]
    assert usage.removable == ["k2"]
    assert usage.remaining == 8
    assert usage.lines()[-2:] == [
        "key a0: 5 messages (not in MESSAGE_KEYS: these messages cannot be read)",
        "key old: 2 messages (not in MESSAGE_KEYS: these messages cannot be read)",
    ]


def test_progress_and_summary_lines() -> None:
    step = RotationProgress(batch=3, re_encrypted=500, total=1500, left=12000)
    assert step.line() == "re-encrypted 500 messages (1500 so far), 12000 left"
    done = RotationResult("k3", 1500, 3, [], KeyUsage.of({"k3": 1500}, RING))
    assert done.complete
    assert done.summary_lines()[0] == "re-encrypted 1500 messages with key k3 in 3 batches"
    assert done.summary_lines()[-1] == "a key is retired only when no row uses it"
    failed = RotationResult("k3", 0, 1, [Failure(7, "x", "bad")], KeyUsage.of({"x": 1}, RING))
    assert not failed.complete
    assert "1 messages were skipped (listed above)" in failed.summary_lines()


def test_a_key_archived_chats_use_is_kept() -> None:
    usage = KeyUsage.of({"k3": 50}, RING, archived={"k1": 7, "gone": 2})
    assert usage.removable == ["k2"]
    assert usage.remaining == 0  # rotation covers the main database; the archive keeps its ciphertext
    assert "key k1: 0 messages, 7 archived (still used by archived chats: keep it)" in usage.lines()
    assert usage.unknown == ["gone"]
