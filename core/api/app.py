"""The Jobs API app: `/api/{2.0,2.1,2.2}/jobs/...` over the service, plus `/health` and the webhook
trigger's routes (`core.api.webhooks`).

The three versions behave the same except that 2.2 creates jobs with queueing on and pages large arrays
(see `core.api.render`). Clients differ in what they send, and every form is accepted: ids as numbers or
strings, booleans as `true` / `True`, an empty `page_token=`, unknown query parameters, and bodies sent
as `text/json` (the legacy CLI) or with no body at all (`{}`).

Per request the event loop only reads the body; authentication, parsing, the service call and rendering
run together in one worker-thread hop, because the service does blocking storage I/O.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from core.api import clusters, destinations, jobs, runs, webhooks
from core.api.auth import authenticate
from core.api.call import API_VERSIONS, Call, Endpoint
from core.api.errors import (
    error_response,
    floe_error_response,
    floe_exception_handler,
    http_exception_handler,
    internal_error_response,
    json_response,
    unexpected_exception_handler,
)
from core.api.service import FloeService
from core.clock import Clock, SystemClock, to_millis
from core.errors import FloeError, MalformedRequest
from core.model.base import json_type, reject_json_constant

logger = logging.getLogger("floe.api")

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64


def create_app(floe: FloeService, *, clock: Clock | None = None, public_url: str = "") -> FastAPI:
    """The ASGI app serving the Jobs API over `floe`. `clock` (default: the system clock) gives the
    "now" that durations of running runs are measured to. `public_url` (`FLOE_PUBLIC_URL`) is the base of
    the links Floe hands out (`run_page_url`, webhook URLs); without it, each request's own base URL."""
    app = FastAPI(title="Floe Jobs API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(HTTPException, http_exception_handler)
    app.add_exception_handler(FloeError, floe_exception_handler)
    app.add_exception_handler(Exception, unexpected_exception_handler)
    app.add_route("/health", _health, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/.well-known/databricks-config", _no_host_metadata, methods=["GET"], include_in_schema=False
    )
    the_clock = clock or SystemClock()
    for version in API_VERSIONS:
        for method, path, endpoint in (*jobs.ROUTES, *runs.ROUTES, *clusters.ROUTES):
            app.add_route(
                f"/api/{version}/{path}",
                _route(floe, the_clock, public_url, version, method, endpoint),
                methods=[method],
                include_in_schema=False,
            )
    for method, path, endpoint in destinations.ROUTES:  # Databricks serves these under 2.0 only
        app.add_route(
            f"/api/2.0/{path}",
            _route(floe, the_clock, public_url, "2.0", method, endpoint),
            methods=[method],
            include_in_schema=False,
        )
    app.add_route(
        destinations.HISTORY_PATH,
        _route(floe, the_clock, public_url, "floe", "GET", destinations.history),
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_route(
        POISON_PATH,
        _route(floe, the_clock, public_url, "floe", "GET", poison_messages),
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_route(
        webhooks.SECRET_PATH,
        _route(floe, the_clock, public_url, "floe", "POST", webhooks.rotate_secret),
        methods=["POST"],
        include_in_schema=False,
    )
    app.add_route(
        webhooks.DELIVERY_PATH,
        webhooks.delivery_route(floe, max_body_bytes=MAX_BODY_BYTES),
        methods=["POST"],
        include_in_schema=False,
    )
    return app


POISON_PATH = "/api/floe/poison-messages"


def poison_messages(call: Call) -> dict[str, Any]:
    """The queue messages Floe kept as poison, newest first: `GET /api/floe/poison-messages`, with
    `limit` (1..100, default 25) and `page_token`. Each has its queue, message id, delivery facts, body,
    and the kind, run and task run of the body when it parses (`core.poison`)."""
    from core.poison import DEFAULT_LIMIT, MAX_LIMIT

    limit = call.get_int("limit", min=1, max=MAX_LIMIT, default=DEFAULT_LIMIT)
    messages, token = call.floe.poison_messages(limit=limit, page_token=call.page_token())
    body: dict[str, Any] = {"messages": messages}
    if token:
        body["next_page_token"] = token
    return body


async def _health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def _no_host_metadata(request: Request) -> Response:
    # The SDK probes this at construction, unauthenticated, and carries on after a 404.
    return error_response("ENDPOINT_NOT_FOUND", "Floe serves no host metadata", 404)


def _route(
    floe: FloeService, clock: Clock, public_url: str, version: str, method: str, endpoint: Endpoint
) -> Callable[[Request], Awaitable[Response]]:
    is_get = method == "GET"

    async def handle(request: Request) -> Response:
        try:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                return floe_error_response(_too_large(int(length)))
            body = b""
            if not is_get or length not in ("0", ""):
                body = await request.body()
            return await run_in_threadpool(
                _serve,
                floe,
                clock,
                version,
                endpoint,
                request.headers.get("authorization"),
                # GET: the query string and path parameters (`/{id}`); other methods: path parameters
                {**request.query_params, **request.path_params}
                if is_get
                else dict(request.path_params) or None,
                body,
                public_url or str(request.base_url),
            )
        except ClientDisconnect:
            return error_response(
                "MALFORMED_REQUEST", "The client disconnected before sending the body.", 400
            )
        except Exception as exc:  # a bug outside _serve
            logger.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
            return internal_error_response()

    return handle


def _serve(
    floe: FloeService,
    clock: Clock,
    version: str,
    endpoint: Endpoint,
    authorization: str | None,
    query: dict[str, str] | None,
    body: bytes,
    base_url: str,
) -> Response:
    try:
        user = authenticate(floe, authorization)
        params = _parse_body(body)
        if query is not None:  # the query string and path parameters win over a (rare) JSON body
            params.update(query)
        call = Call(floe, version, params, user, base_url, to_millis(clock.now()))
        return json_response(endpoint(call))
    except FloeError as exc:
        return floe_error_response(exc)
    except Exception:
        logger.exception("unhandled error in /api/%s %s", version, getattr(endpoint, "__name__", "endpoint"))
        return internal_error_response()


def _parse_body(body: bytes) -> dict[str, Any]:
    """A JSON object, whatever the Content-Type says; an empty body is `{}`."""
    if len(body) > MAX_BODY_BYTES:
        raise _too_large(len(body))
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body, parse_constant=reject_json_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedRequest(f"The request body is not valid JSON: {_reason(exc)}") from None
    if not isinstance(parsed, dict):
        raise MalformedRequest(f"The request body must be a JSON object, not {json_type(parsed)}.")
    if _too_deep(parsed):
        raise MalformedRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    return parsed


def _too_deep(value: Any) -> bool:
    """Whether JSON nests deeper than MAX_JSON_DEPTH (which no Jobs API shape needs): later stages
    (validation, storage codecs, rendering) recurse, and must never meet a body they cannot handle."""
    level: list[Any] = [value]
    for _ in range(MAX_JSON_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _too_large(size: int) -> MalformedRequest:
    return MalformedRequest(f"The request body is {size} bytes; at most {MAX_BODY_BYTES} are accepted.")


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}."
    if isinstance(exc, RecursionError):
        return "it is nested too deeply."
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text."
    return f"{exc}."
