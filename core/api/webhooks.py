"""The webhook trigger's routes (the service is `floe.webhooks`, a `core.webhooks.WebhookService`).

- `POST /api/floe/jobs/webhook-secret` `{"job_id": N}`, with a bearer token like every `/api/` call:
  gives the job a new secret and answers
  `{"job_id": N, "secret": "whsec_...", "url": "<base>/webhooks/jobs/N"}`. The secret is shown this
  once; asking again replaces it.
- `POST /webhooks/jobs/{job_id}`, with no bearer token (the signature is the credential): the body signed
  in `X-Floe-Signature`, an optional `X-Floe-Delivery` id. Answers `{"run_id": ..., "number_in_job": ...}`,
  the same run for a replayed delivery id. A path that names no valid job id is answered like a job that
  does not exist: 401, the message every bad signature gets.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from core.api.call import Call
from core.api.errors import error_response, floe_error_response, internal_error_response, json_response
from core.api.service import FloeService
from core.errors import FloeError, InvalidParameterValue, MalformedRequest
from core.model import parse_id
from core.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER

logger = logging.getLogger("floe.api")

SECRET_PATH = "/api/floe/jobs/webhook-secret"
DELIVERY_PATH = "/webhooks/jobs/{job_id}"


def delivery_url(base_url: str, job_id: int) -> str:
    return f"{base_url.rstrip('/')}/webhooks/jobs/{job_id}"


def rotate_secret(call: Call) -> dict[str, Any]:
    """The bearer-authenticated endpoint (served like the Jobs API routes)."""
    job_id = call.get_id("job_id")
    secret = call.floe.webhooks.rotate_secret(job_id)
    return {"job_id": job_id, "secret": secret, "url": delivery_url(call.base_url, job_id)}


def delivery_route(floe: FloeService, *, max_body_bytes: int) -> Callable[[Request], Awaitable[Response]]:
    """The unauthenticated delivery endpoint. The body is read on the event loop (at most
    `max_body_bytes`); verifying it and starting the run happen in a worker thread (storage I/O)."""

    async def handle(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes)
            return await run_in_threadpool(
                _deliver,
                floe,
                str(request.path_params.get("job_id", "")),
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(DELIVERY_HEADER),
            )
        except FloeError as exc:
            return floe_error_response(exc)
        except ClientDisconnect:
            return error_response(
                "MALFORMED_REQUEST", "The client disconnected before sending the body.", 400
            )
        except Exception as exc:  # a bug outside _deliver
            logger.error("unhandled error in POST %s", DELIVERY_PATH, exc_info=exc)
            return internal_error_response()

    return handle


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed `limit` (anyone can call this endpoint, so a
    huge body is never buffered whole)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise MalformedRequest(f"The request body is {int(length)} bytes; at most {limit} are accepted.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MalformedRequest(
                f"The request body is more than {limit} bytes; at most {limit} are accepted."
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _deliver(
    floe: FloeService, raw_job_id: str, body: bytes, signature: str | None, delivery_id: str | None
) -> Response:
    try:
        try:
            job_id: int | None = parse_id(raw_job_id, "job_id")
        except InvalidParameterValue:
            job_id = None
        run = floe.webhooks.deliver(job_id, body, signature, delivery_id)
        return json_response({"run_id": run.run_id, "number_in_job": run.run_id})
    except FloeError as exc:
        return floe_error_response(exc)
    except Exception:
        logger.exception("unhandled error in POST %s", DELIVERY_PATH)
        return internal_error_response()
