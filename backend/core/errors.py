"""Typed application errors and the one handler that turns them into the contract's body."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorOut(BaseModel):
    """The body of every error response."""

    detail: str
    code: str


class AppError(Exception):
    """An error with an HTTP status and a machine-readable code."""

    status = 400
    code = "bad_request"
    detail = "Bad request."

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = headers


class BadRequest(AppError):
    status, code, detail = 400, "bad_request", "Bad request."


class Invalid(AppError):
    status, code, detail = 422, "validation_error", "The request is not valid."


class TokenInvalid(AppError):
    status, code, detail = 401, "token_invalid", "The session token is missing or invalid."


class TokenExpired(AppError):
    status, code, detail = 401, "token_expired", "The session token has expired; log in again."


class InvalidCredentials(AppError):
    status, code, detail = 401, "invalid_credentials", "Wrong username or password."


class Forbidden(AppError):
    status, code, detail = 403, "forbidden", "You are not allowed to do this."


class NotFound(AppError):
    status, code, detail = 404, "not_found", "Not found."


class Conflict(AppError):
    status, code, detail = 409, "conflict", "Conflict."


class UsernameTaken(AppError):
    status, code, detail = 409, "username_taken", "This username is taken."


class AlreadyAssigned(AppError):
    status, code, detail = 409, "already_assigned", "Another supporter has already taken this chat."


class ChatClosed(AppError):
    status, code, detail = 409, "chat_closed", "This chat is closed."


class TooLarge(AppError):
    status, code, detail = 413, "too_large", "Too large."


class RateLimited(AppError):
    status, code, detail = 429, "rate_limited", "Too many requests; slow down."

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})


class Unavailable(AppError):
    status, code, detail = 503, "unavailable", "The service is not ready."


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Build the contract's error body."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring the error body for each status."""
    return {status: {"model": ErrorOut} for status in statuses}


_HTTP_CODES = {
    400: "bad_request",
    401: "token_invalid",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        where = ".".join(str(item) for item in err.get("loc", ()) if item != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "The request is not valid."


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, including framework ones, answer with the contract's body."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "").lower()
        if content_type and "json" not in content_type and request.method in ("POST", "PUT", "PATCH"):
            return error_response(415, "unsupported_media_type", "Send the body as application/json.")
        errors = list(exc.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            return error_response(400, "invalid_json", "The request body is not valid JSON.")
        return error_response(422, "validation_error", _describe(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return error_response(exc.status_code, code, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.scope.get("route_path", "?"))
        return error_response(500, "internal_error", "Something went wrong on our side.")
