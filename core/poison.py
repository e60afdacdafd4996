"""Poison messages: queue messages Floe can never handle (unreadable, or failing `MAX_DEQUEUE` times).

None is dropped silently. Each is kept as a blob `poison/<date>/<message id>.json` (the queue it failed
on, its delivery facts and its body), counted (`floe.messages.poisoned`), logged at ERROR with its kind and
run, and listed, newest first, by `GET /api/floe/poison-messages`. `tick` re-drives the work such a message
carried once the cause is fixed (a pending attempt's start, a run's advance), so keeping it is all a host
does with it. The hosts of the local runtime keep what fails on their queues (`core.runtime.host.deliver`);
the Functions app keeps what its host moved to `floe-work-poison` and what its `work` function could not
read (`functions.queues`).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidParameterValue
from core.store import BlobExists, BlobStore
from core.telemetry import message_poisoned

log = logging.getLogger("floe")

PREFIX = "poison/"
DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Poisoned:
    queue: str  # the queue the message failed on (not its `-poison` queue)
    message_id: str
    body: str
    inserted: datetime | None = None
    dequeue_count: int | None = None


def keep(blobs: BlobStore, message: Poisoned, *, now: datetime) -> str:
    """Keep a poison message (idempotent: a second delivery of the same message keeps nothing more),
    count and log it; returns its blob path."""
    day = (message.inserted or now).astimezone(UTC)
    path = f"{PREFIX}{day:%Y-%m-%d}/{_safe(message.message_id)}.json"
    record = {
        "queue": message.queue,
        "message_id": message.message_id,
        "inserted": None if message.inserted is None else message.inserted.astimezone(UTC).isoformat(),
        "kept": now.astimezone(UTC).isoformat(),
        "dequeue_count": message.dequeue_count,
        "body": message.body,
    }
    try:
        blobs.put(path, json.dumps(record).encode(), if_absent=True)
    except BlobExists:
        return path  # delivered again after it was kept: counted and logged the first time
    summary = _summary(message.body)
    message_poisoned(message.queue, message.body)
    log.error(
        "poison message %s on %s: kind %s, run %s, task run %s; kept at %s",
        message.message_id,
        message.queue,
        summary.get("kind"),
        summary.get("run_id"),
        summary.get("task_run_id"),
        path,
    )
    return path


def listing(
    blobs: BlobStore, *, limit: int, page_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The kept poison messages, newest day first, and the token of the next page (None at the end)."""
    after = _decode_token(page_token)
    paths = sorted((info.path for info in blobs.list(PREFIX)), reverse=True)
    if after is not None:
        paths = [p for p in paths if p < after]
    page, rest = paths[:limit], paths[limit:]
    messages = []
    for path in page:
        blob = blobs.get(path)
        if blob is None:
            continue  # deleted meanwhile
        try:
            record = json.loads(blob.data)
        except ValueError:
            continue
        messages.append({**_summary(str(record.get("body", ""))), **record})
    next_token = base64.urlsafe_b64encode(page[-1].encode()).decode() if rest and page else None
    return messages, next_token


def _summary(body: str) -> dict[str, Any]:
    """What a reader wants first of a Floe message: its kind, run and task run (when it parses)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in ("kind", "run_id", "task_run_id", "cluster_id") if k in data}


def _safe(message_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in message_id)[:100] or "message"


def _decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        path = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        path = ""
    if not path.startswith(PREFIX):
        raise InvalidParameterValue(f"page_token {token!r} is not a token this endpoint returned")
    return path
