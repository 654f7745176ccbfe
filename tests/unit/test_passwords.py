"""The password rule counts UTF-8 bytes (bcrypt's limit) and says so; verification never errors."""

from __future__ import annotations

import pytest

from backend.auth.passwords import PasswordHasher, check_password_policy
from backend.core.errors import Invalid


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=4)


@pytest.mark.parametrize("password", ["12345678", "x" * 72, "ä" * 36, "ä" * 4, "😀" * 18, "pass wört"])
def test_policy_accepts_8_to_72_bytes(password: str) -> None:
    assert check_password_policy(password) == password.encode("utf-8")


@pytest.mark.parametrize("password", ["", "1234567", "ä" * 3 + "x"])
def test_policy_refuses_under_8_bytes(password: str) -> None:
    with pytest.raises(Invalid) as info:
        check_password_policy(password)
    assert info.value.status == 422
    assert "8" in info.value.detail


@pytest.mark.parametrize("password", ["x" * 73, "ä" * 37, "😀" * 19])
def test_policy_refuses_over_72_bytes_and_says_72(password: str) -> None:
    with pytest.raises(Invalid) as info:
        check_password_policy(password)
    assert info.value.status == 422
    assert "72" in info.value.detail


async def test_hash_and_verify(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("Grüße aus Köln")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("Grüße aus Köln", hashed) is True
    assert await hasher.verify("Grüsse aus Köln", hashed) is False
    assert await hasher.verify("", hashed) is False


async def test_full_72_bytes_matter(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("ä" * 36)
    assert await hasher.verify("ä" * 36, hashed) is True
    assert await hasher.verify("ä" * 35 + "ö", hashed) is False


async def test_hash_refuses_what_the_policy_refuses(hasher: PasswordHasher) -> None:
    with pytest.raises(Invalid):
        await hasher.hash("ä" * 37)


async def test_unknown_user_is_false(hasher: PasswordHasher) -> None:
    assert await hasher.verify("no-such-user-password", None) is False
    assert await hasher.verify("anything at all", None) is False


async def test_overlong_password_on_verify_is_false(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash("x" * 72)
    # bcrypt would ignore the 73rd byte; we must not let that log anyone in.
    assert await hasher.verify("x" * 73, hashed) is False
    assert await hasher.verify("x" * 500, hashed) is False


async def test_corrupt_hash_is_false(hasher: PasswordHasher) -> None:
    assert await hasher.verify("12345678", "not-a-bcrypt-hash") is False
