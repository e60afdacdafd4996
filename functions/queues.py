"""Queues: one function per queue the app receives from: `floe-work` and its poison queue.

`work` handles a message as the local runtime does (`core.runtime.host.deliver`), with the Functions host
doing the rest: success returns (the host deletes the message); a message that can never succeed
(`InvalidMessage`) is kept as a poison message at once (`core.poison`) and the function returns; any other
error is raised, so the host makes the message visible again after host.json's `visibilityTimeout` and
moves it to `<queue>-poison` after `maxDequeueCount` (5) deliveries, where `work_poison` keeps it. A kept
message is a blob `poison/<date>/<message id>.json`, counted, logged at ERROR with its kind and run, and
listed by `GET /api/floe/poison-messages`; nothing is dropped silently. `tick` re-drives the work a
poisoned message carried (a pending task's start, a run's advance) once the cause is fixed.

`floe-tasks` (task starts) is received by `floe runner` hosts, never by the app (`functions.root`); they
keep what poisons there themselves. Host queues (`floe-host-<id>`, kills for the attempts of one runner)
are the runners' own.

Queue names: Floe prefixes every queue with `FLOE_STORAGE_PREFIX`, so the bindings name the queues with
the same app setting, `%FLOE_STORAGE_PREFIX%floe-work`; the host resolves it at start-up (the setting must
exist). The connection is `FloeStorage`, Floe's state account (`functions.root`), apart from the Functions
host's own storage (`AzureWebJobsStorage`).
"""

from __future__ import annotations

import logging

import azure.functions as func

from core.messages import POISON_SUFFIX, WORK_QUEUE, InvalidMessage
from functions import root

log = logging.getLogger("floe.functions")

bp = func.Blueprint()

CONNECTION = root.CONNECTION
PREFIX_SETTING = "%FLOE_STORAGE_PREFIX%"
WORK = PREFIX_SETTING + WORK_QUEUE
WORK_POISON = WORK + POISON_SUFFIX


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
        log.warning("message %s on %s cannot be handled: %s", msg.id, WORK_QUEUE, bad.message)
        _keep(msg, body)


@bp.function_name("work_poison")
@bp.queue_trigger(arg_name="msg", queue_name=WORK_POISON, connection=CONNECTION)
def work_poison(msg: func.QueueMessage) -> None:
    _keep(msg, msg.get_body().decode("utf-8", errors="replace"))


def _keep(msg: func.QueueMessage, body: str) -> None:
    from core.poison import Poisoned, keep

    floe = root.floe()
    poisoned = Poisoned(WORK_QUEUE, msg.id or "", body, msg.insertion_time, msg.dequeue_count)
    keep(floe.storage.blobs, poisoned, now=floe.clock.now())
