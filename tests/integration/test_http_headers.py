"""Security headers on pages, assets and API answers."""

from __future__ import annotations

import pytest

from tests.conftest import Api


@pytest.mark.parametrize("path", ["/", "/console", "/static/js/socket.js", "/api/me", "/healthz"])
def test_every_answer_carries_the_security_headers(api: Api, path: str) -> None:
    response = api.call("GET", path)
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers  # plain HTTP here


@pytest.mark.parametrize("path", ["/", "/console", "/static/js/socket.js"])
def test_pages_and_modules_are_revalidated(api: Api, path: str) -> None:
    response = api.call("GET", path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"


def test_head_on_pages(api: Api) -> None:
    assert api.call("HEAD", "/console").status_code == 200
    assert api.call("HEAD", "/").status_code == 200


def test_api_docs_keep_working(api: Api) -> None:
    response = api.call("GET", "/docs")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
