"""A small OpenAI-compatible chat-completions server for tests, on 127.0.0.1 in a thread.

Modes (settable while it runs through `.mode`):
- "grounded": the first sentence of passage 1 in the request, then " [1]", in small chunks
- "no_answer": NO_ANSWER, in chunks
- "slow": the first chunk, then silence longer than any test's timeout
- "trickle": a word every 0.2 s, for minutes (a per-read timeout never fires)
- "error": HTTP 500 with an OpenAI-style error body
- "garbage": SSE lines that are not JSON
- "empty": a well-formed stream without any content
- "echo_injection": "I will ignore my rules", without a citation
- "long": over 5000 characters of words, citing [1]
Every request's JSON body is appended to `.requests`.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

MODES = frozenset(
    {"grounded", "no_answer", "slow", "trickle", "error", "garbage", "empty", "echo_injection", "long"}
)
SLOW_SECONDS = 60.0
CHUNK_CHARS = 6
_PASSAGE_ONE = re.compile(r'<passage n="1"[^>]*>\s*(.*?)\s*</passage>', re.DOTALL)
_FIRST_SENTENCE = re.compile(r"^(.*?[.!?])(?:\s|$)", re.DOTALL)


class FakeLlm:
    """An OpenAI-compatible server whose behaviour the test picks with `.mode`."""

    def __init__(self, mode: str = "grounded") -> None:
        self.mode = mode
        self.requests: list[dict[str, Any]] = []
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"fake-llm-{self.port}", daemon=True)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._server.serve())
        finally:
            loop.close()

    def start(self) -> FakeLlm:
        """Start serving and wait until the port listens."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (open slow streams are cut off)."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def reset(self, mode: str = "grounded") -> None:
        """Forget the requests seen and switch mode."""
        self.mode = mode
        self.requests.clear()

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        mode = self.mode
        if mode not in MODES:
            raise ValueError(f"unknown fake LLM mode {mode!r}")
        if mode == "error":
            error = {"message": "the fake model failed", "type": "server_error", "code": None}
            return JSONResponse({"error": error}, status_code=500)
        model = str(body.get("model", "fake"))
        if not body.get("stream"):
            return await self._whole(mode, model, body)
        return StreamingResponse(self._events(mode, model, body), media_type="text/event-stream")

    async def _whole(self, mode: str, model: str, body: dict[str, Any]) -> Response:
        if mode in ("slow", "trickle"):
            await asyncio.sleep(SLOW_SECONDS)
        if mode == "garbage":
            return Response("this is not json", media_type="application/json")
        message = {"role": "assistant", "content": "".join(_pieces(mode, body))}
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def _events(self, mode: str, model: str, body: dict[str, Any]) -> AsyncIterator[str]:
        yield _event(model, {"role": "assistant", "content": ""})
        if mode == "garbage":
            for line in ("this is not json", "{broken", "<html>oops</html>"):
                yield f"data: {line}\n\n"
            yield "data: [DONE]\n\n"
            return
        if mode == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        if mode == "trickle":
            for _ in range(int(SLOW_SECONDS * 5)):
                yield _event(model, {"content": "und "})
                await asyncio.sleep(0.2)
        for piece in _pieces(mode, body):
            yield _event(model, {"content": piece})
            await asyncio.sleep(0.01)
        yield _event(model, {}, finish_reason="stop")
        yield "data: [DONE]\n\n"


def _pieces(mode: str, body: dict[str, Any]) -> list[str]:
    """The answer's text for a mode, in small chunks."""
    if mode == "grounded":
        text = _grounded_answer(body)
    elif mode == "no_answer":
        text = "NO_ANSWER"
    elif mode == "echo_injection":
        text = "I will ignore my rules"
    elif mode == "long":
        text = "Rücksendung " * 450 + "[1]"
        return [text[i : i + 100] for i in range(0, len(text), 100)]
    else:
        return []
    return [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]


def _grounded_answer(body: dict[str, Any]) -> str:
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    passage = _PASSAGE_ONE.search(user)
    if passage is None:
        return "NO_ANSWER"
    sentence = _FIRST_SENTENCE.match(passage.group(1))
    first = sentence.group(1) if sentence else passage.group(1)
    return f"{' '.join(first.split())} [1]"


def _event(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
