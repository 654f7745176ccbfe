"""Operations: health, readiness, metrics, hostile paths, and logs without secrets."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.core.logging import configure_logging
from tests.conftest import Api, LiveServer
from tests.integration.test_http_auth import assert_error


def test_healthz(api: Api) -> None:
    response = api.call("GET", "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz(api: Api) -> None:
    response = api.call("GET", "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def metric_value(text: str, name: str, labels: str = "") -> float:
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.MULTILINE)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def test_metrics(api: Api) -> None:
    response = api.call("GET", "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in ("ws_connections", "messages_total", "http_request_seconds"):
        assert re.search(rf"^# TYPE {name} ", text, re.MULTILINE), name
    assert "http_request_seconds_bucket{" in text


def test_metrics_count_messages_and_requests_by_route(api: Api) -> None:
    token = api.guest()["token"]
    chat = api.new_chat(token)
    before = api.call("GET", "/metrics").text
    response = api.call(
        "POST", f"/api/chats/{chat['id']}/messages", token, json={"text": "zählen", "client_msg_id": "m"}
    )
    assert response.status_code == 201
    after = api.call("GET", "/metrics").text
    kind = '{kind="text"}'
    assert metric_value(after, "messages_total", kind) == metric_value(before, "messages_total", kind) + 1
    route = '{method="POST",route="/api/chats/{chat_id}/messages",status="201"}'
    assert (
        metric_value(after, "http_requests_total", route)
        >= metric_value(before, "http_requests_total", route) + 1
    )
    # Labels are route templates: no ids (or tokens in paths) end up in the metrics.
    assert chat["id"] not in after


def raw_request(server: LiveServer, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send a request line exactly as given (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/....//....//etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/../backend/core/config.py",
        "/static/%2e%2e/pyproject.toml",
    ],
)
def test_path_traversal_is_not_found(live_server: LiveServer, target: str) -> None:
    status, body = raw_request(live_server, target)
    assert status == 404, body
    assert b"root:" not in body
    assert b"BaseSettings" not in body and b"[project]" not in body


def test_static_files_are_served(api: Api) -> None:
    assert api.call("GET", "/static/index.html").status_code == 200
    assert api.call("GET", "/").status_code == 200
    assert api.call("GET", "/console").status_code == 200


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/chats/x/y/z", "/static/nope.js", "/%00"])
def test_unknown_path(api: Api, path: str) -> None:
    assert_error(api.call("GET", path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/me"),
        ("GET", "/api/auth/login"),
        ("PUT", "/api/chats"),
        ("PATCH", "/healthz"),
        ("GET", f"/api/chats/{uuid.uuid4()}/assign"),
    ],
)
def test_wrong_method(api: Api, method: str, path: str) -> None:
    response = api.call(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers.get("allow")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"display_name=Anna", "application/x-www-form-urlencoded"),
        (b"Anna", "text/plain"),
        (b'{"display_name": "Anna"}', "application/xml"),
        (b"", "application/json"),
    ],
    ids=["form", "text", "xml-declared", "empty-json"],
)
def test_non_json_bodies_are_client_errors(api: Api, content: bytes, content_type: str) -> None:
    response = api.call("POST", "/api/auth/guest", content=content, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"detail", "code"}


def test_huge_query_string_is_not_a_server_error(api: Api) -> None:
    token = api.guest()["token"]
    response = api.call("GET", "/api/chats", token, params={"status": "open", "junk": "x" * 6000})
    assert response.status_code == 200


# --- logs -------------------------------------------------------------------------------------


def test_access_log_has_no_tokens_or_query_strings(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    session = api.guest()
    token = session["token"]
    chat = api.new_chat(token)
    secret_query = f"invite_token=geheim-{uuid.uuid4().hex}"
    with caplog.at_level(logging.INFO, logger="support_chat.access"):
        assert api.call("GET", f"/api/me?{secret_query}&token={token}", token).status_code == 200
        assert api.call("GET", f"/api/chats/{chat['id']}?{secret_query}", token).status_code == 200
        assert api.call("GET", f"/api/chats/{uuid.uuid4()}?{secret_query}", token).status_code == 404
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if r.name == "support_chat.access"]) < 3:
            assert time.monotonic() < deadline, "no access log lines"
            time.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if r.name == "support_chat.access"]
    assert any(line.startswith("GET /api/me 200 ") for line in lines), lines
    assert any(line.startswith("GET /api/chats/{chat_id} 200 ") for line in lines), lines
    assert any(line.startswith("GET /api/chats/{chat_id} 404 ") for line in lines), lines
    text = "\n".join(lines)
    assert token not in text
    assert token.split(".")[2] not in text
    assert "geheim" not in text and "invite_token" not in text and "?" not in text
    assert chat["id"] not in text


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """configure_logging rewires the root logger; put the test run's logging back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("uvicorn.access")
    disabled = access.disabled
    tz = os.environ.get("TZ")
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        access.disabled = disabled
        if tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = tz
        time.tzset()


def test_log_file_is_written_without_secrets(tmp_path: Path, api: Api, logging_restored: None) -> None:
    log_dir = tmp_path / "logs"
    configure_logging(log_dir, "INFO")
    session = api.guest()
    token = session["token"]
    assert api.call("GET", "/api/me?token=" + token, token).status_code == 200
    logging.getLogger("backend.test").warning("client sent Authorization: Bearer %s", token)
    logging.getLogger("backend.test").warning("token in text %s", token)
    log_file = log_dir / "support-chat.log"
    deadline = time.monotonic() + 5
    while "GET /api/me 200" not in log_file.read_text("utf-8"):
        assert time.monotonic() < deadline, log_file.read_text("utf-8")
        time.sleep(0.02)
    for handler in logging.getLogger().handlers:
        handler.flush()
    content = log_file.read_text("utf-8")
    assert "client sent Authorization: [redacted]" in content
    assert "token in text [redacted]" in content
    assert token not in content
    assert token.split(".")[2] not in content
    # (The test's own HTTP client logs its URLs too; only the server's lines count here.)
    server_lines = [line for line in content.splitlines() if " httpx: " not in line]
    assert not [line for line in server_lines if "token=" in line or "?" in line]
    # Times carry the server zone's offset.
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} ", content, re.MULTILINE)


def test_log_dir_that_cannot_be_created_falls_back_to_stdout(
    tmp_path: Path, logging_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    configure_logging(blocker / "logs", "INFO")
    assert "cannot write logs" in capsys.readouterr().err
    assert len(logging.getLogger().handlers) == 1
