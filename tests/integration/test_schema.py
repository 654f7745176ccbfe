"""schemathesis over the live server's OpenAPI: no 5xx, no status the schema does not declare."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from backend.app import create_app
from backend.core.config import Settings
from tests.conftest import Api, LiveServer

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def app_openapi() -> dict[str, Any]:
    """The document the server serves at /openapi.json (building it starts nothing)."""
    document: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return document


# Loaded at collection time (schemathesis' fixture-based lazy loading does not run on pytest 9);
# test_served_schema_is_the_tested_one checks that the live server serves this very document.
# Logging out would kill the session the other operations run with; it has its own tests.
schema = schemathesis.openapi.from_dict(app_openapi()).exclude(path="/api/auth/logout")


def test_served_schema_is_the_tested_one(api: Api) -> None:
    assert api.call("GET", "/openapi.json").json() == app_openapi()


@pytest.fixture(scope="module")
def guest_token(api: Api) -> str:
    token: str = api.guest("Schema Gast")["token"]
    return token


@pytest.fixture(scope="module")
def supporter_token(live_server: LiveServer, api: Api) -> str:
    token: str = api.login(*live_server.make_staff())["token"]
    return token


def test_schema_declares_every_operation(api: Api) -> None:
    document = api.call("GET", "/openapi.json").json()
    paths = document["paths"]
    for path, method in [
        ("/api/auth/guest", "post"),
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/logout", "post"),
        ("/api/me", "get"),
        ("/api/chats", "post"),
        ("/api/chats", "get"),
        ("/api/chats/{chat_id}", "get"),
        ("/api/chats/{chat_id}/messages", "get"),
        ("/api/chats/{chat_id}/messages", "post"),
        ("/api/chats/{chat_id}/escalate", "post"),
        ("/api/chats/{chat_id}/assign", "post"),
        ("/api/chats/{chat_id}/close", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in the schema"
    # Every operation that takes a body declares the 400 (invalid JSON) and 422 error bodies.
    for path, operations in paths.items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert {"400", "422"} <= set(operation["responses"]), f"{method.upper()} {path}"
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response.get("content", {}).get("application/json", {})
                    assert "ErrorOut" in str(content.get("schema")), f"{method.upper()} {path} {status}"


@schema.parametrize()
@EXAMPLES
def test_api_as_guest(case: schemathesis.Case, live_server: LiveServer, guest_token: str) -> None:
    case.call_and_validate(
        base_url=live_server.url, headers={"Authorization": f"Bearer {guest_token}"}, checks=CHECKS
    )


@schema.parametrize()
@EXAMPLES
def test_api_as_supporter(case: schemathesis.Case, live_server: LiveServer, supporter_token: str) -> None:
    case.call_and_validate(
        base_url=live_server.url, headers={"Authorization": f"Bearer {supporter_token}"}, checks=CHECKS
    )
