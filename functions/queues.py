"""Queues: one function per queue Floe names statically: `floe-work`, its poison queue, and the poison
queue of `floe-tasks`.

`work` handles a message as the local runtime does (`core.runtime.host.deliver`), with the Functions host
doing the rest: success returns (the host deletes the message); a message that can never succeed
(`InvalidMessage`) is sent to the poison queue at once and the function returns; any other error is
raised, so the host makes the message visible again after host.json's `visibilityTimeout` and moves it
to `<queue>-poison` after `maxDequeueCount` (5) deliveries.

`floe-tasks` itself (task starts) is received by `floe runner` hosts, never by the app
(`functions.root`); what fails there five times lands in `floe-tasks-poison`, which `tasks_poison` watches.

`work_poison` and `tasks_poison` surface what lands in a poison queue: each keeps the message in Floe's
blob container (`poison/<date>/<message id>.json`, the body and its delivery facts) and logs one ERROR
line naming its kind and run; nothing is dropped silently. (A message from the poison queue is consumed
by its trigger, so the blob is where it stays.) `tick` re-drives the work a poisoned message carried (a
pending task's start, a run's advance) once the cause is fixed.

Queue names: Floe prefixes every queue with `FLOE_STORAGE_PREFIX`, so the bindings name the queues with
the same app setting, `%FLOE_STORAGE_PREFIX%floe-work`; the host resolves it at start-up (the setting must
exist). The connection is `FloeStorage`, Floe's state account (`functions.root`), apart from the Functions
host's own storage (`AzureWebJobsStorage`).

Host queues (`floe-host-<id>`, kills for the attempts of one runner) are the runners' own.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from core.messages import POISON_SUFFIX, TASK_QUEUE, WORK_QUEUE, InvalidMessage
from functions import root

log = logging.getLogger("floe.functions")

bp = func.Blueprint()

CONNECTION = root.CONNECTION
PREFIX_SETTING = "%FLOE_STORAGE_PREFIX%"
WORK = PREFIX_SETTING + WORK_QUEUE
WORK_POISON = WORK + POISON_SUFFIX
TASKS_POISON = PREFIX_SETTING + TASK_QUEUE + POISON_SUFFIX


@bp.function_name("work")
@bp.queue_trigger(arg_name="msg", queue_name=WORK, connection=CONNECTION)
def work(msg: func.QueueMessage) -> None:
    floe = root.floe()
    body = msg.get_body().decode("utf-8", errors="replace")
    try:
        floe.handle_message(
            body, queue=WORK_QUEUE, enqueued_at=msg.insertion_time, dequeue_count=msg.dequeue_count
        )
    except InvalidMessage as bad:
        log.warning(
            "message %s on %s cannot be handled, moved to its poison queue: %s",
            msg.id,
            WORK_QUEUE,
            bad.message,
        )
        floe.storage.queues.queue(WORK_QUEUE + POISON_SUFFIX).send(body)


@bp.function_name("work_poison")
@bp.queue_trigger(arg_name="msg", queue_name=WORK_POISON, connection=CONNECTION)
def work_poison(msg: func.QueueMessage) -> None:
    _keep_poison(msg, WORK_QUEUE)


@bp.function_name("tasks_poison")
@bp.queue_trigger(arg_name="msg", queue_name=TASKS_POISON, connection=CONNECTION)
def tasks_poison(msg: func.QueueMessage) -> None:
    _keep_poison(msg, TASK_QUEUE)


def _keep_poison(msg: func.QueueMessage, queue: str) -> None:
    from core.store import BlobExists
    from core.telemetry import message_poisoned

    floe = root.floe()
    body = msg.get_body().decode("utf-8", errors="replace")
    arrived = msg.insertion_time or floe.clock.now()
    path = f"poison/{arrived.astimezone(UTC):%Y-%m-%d}/{msg.id}.json"
    record = {
        "queue": queue + POISON_SUFFIX,
        "message_id": msg.id,
        "inserted": _iso(msg.insertion_time),
        "dequeue_count": msg.dequeue_count,
        "body": body,
    }
    try:
        floe.storage.blobs.put(path, json.dumps(record).encode(), if_absent=True)
    except BlobExists:
        pass  # delivered again after it was kept
    summary = _summary(body)
    message_poisoned(queue, body)
    log.error(
        "poison message %s on %s: kind %s, run %s, task run %s; kept at %s",
        msg.id,
        queue,
        summary.get("kind"),
        summary.get("run_id"),
        summary.get("task_run_id"),
        path,
    )


def _summary(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()
