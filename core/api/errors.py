"""Every error leaves the API in the Databricks shape `{"error_code": ..., "message": ...}`.

`FloeError`s carry their own code and status. Router misses become 404 ENDPOINT_NOT_FOUND / 405, and
anything unexpected becomes a 500 INTERNAL_ERROR with a generic message: the traceback is logged on the
server, never sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from core.errors import FloeError, RequestLimitExceeded

logger = logging.getLogger("floe.api")

INTERNAL_ERROR_MESSAGE = "Internal error: the request failed unexpectedly; the details are in the server log."


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Response(content.encode(), status_code=status, headers=headers, media_type="application/json")


def error_response(
    error_code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    return json_response({"error_code": error_code, "message": message}, status, headers)


def floe_error_response(exc: FloeError) -> Response:
    headers = None
    if isinstance(exc, RequestLimitExceeded):
        headers = {"Retry-After": str(max(0, int(exc.retry_after_seconds)))}
    elif exc.http_status == 503:
        # Storage is briefly unavailable (SQLite busy, Azure throttling): the SDK and Airflow retry a 503
        # after Retry-After seconds.
        headers = {"Retry-After": "1"}
    return error_response(exc.error_code, exc.message, exc.http_status, headers)


def internal_error_response() -> Response:
    return error_response("INTERNAL_ERROR", INTERNAL_ERROR_MESSAGE, 500)


def _shown_path(request: Request) -> str:
    path = request.url.path
    return path if len(path) <= 200 else path[:197] + "..."


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Router misses (unknown path, wrong method) and any other Starlette HTTPException."""
    assert isinstance(exc, HTTPException)
    where = f"'{request.method} {_shown_path(request)}'"
    if exc.status_code == 404:
        return error_response("ENDPOINT_NOT_FOUND", f"No API found for {where}.", 404)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_response(
            "METHOD_NOT_ALLOWED",
            f"Method {request.method} is not allowed for {_shown_path(request)}; use {allowed}.",
            405,
            {"Allow": allowed} if allowed else None,
        )
    return error_response("BAD_REQUEST", str(exc.detail), exc.status_code)


async def floe_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FloeError)
    return floe_error_response(exc)


async def unexpected_exception_handler(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error in %s %s", request.method, _shown_path(request), exc_info=exc)
    return internal_error_response()
