"""Telemetry of the work hosts do outside any one run's steps: queue messages, poison messages, ticks, and
what `tick` measures (trigger lag, run age, active clusters).

Every function here is cheap and never raises into the work it measures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from core.engine.records import Run, TaskRun
from core.telemetry import names
from core.telemetry.context import TraceContext, run_context
from core.telemetry.runs import job_id, task_context
from core.telemetry.setup import current
from core.telemetry.spans import CLIENT, CONSUMER, TickWork, current_context, links_to, span, tick_span

log = logging.getLogger("floe.telemetry")

_HOST_QUEUE = "floe-host-"


def queue_label(queue: str) -> str:
    """A queue's name as a dimension: the per-process host queues (`floe-host-<id>`) are one series, and a
    poison queue is named by the queue its messages failed on."""
    queue = queue.removesuffix("-poison")
    return "floe-host" if queue.startswith(_HOST_QUEUE) else queue


def _fields(body: str) -> dict[str, Any]:
    """The fields of a Floe message body, or {} when it does not parse (its kind is then `unknown`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _kind(data: dict[str, Any]) -> str:
    kind = data.get("kind")
    return kind if isinstance(kind, str) and kind in ("run.advance", "task.start", "task.kill") else "unknown"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@contextlib.contextmanager
def message_span(
    body: str,
    *,
    queue: str,
    host_id: str,
    enqueued_at: datetime | None = None,
    dequeue_count: int | None = None,
) -> Iterator[Any]:
    """The `floe.message` span of handling one message, a child of the run the message is about (its
    `traceparent`), and the message's `floe.queue.age` when the caller knows when it was enqueued."""
    data = _fields(body)
    kind, label = _kind(data), queue_label(queue)
    if enqueued_at is not None:
        delay_ms = _int(data.get("delay_ms")) or 0
        waited = time.time() * 1000 - enqueued_at.timestamp() * 1000 - delay_ms
        current().record(names.QUEUE_AGE, waited, {names.QUEUE_NAME: label, names.MESSAGE_KIND: kind})
    traceparent = data.get("traceparent")
    parent = TraceContext.parse(traceparent if isinstance(traceparent, str) else None)
    attributes = {
        names.QUEUE_NAME: label,
        names.MESSAGE_KIND: kind,
        names.DEQUEUE_COUNT: dequeue_count,
        names.RUN_ID: _int(data.get("run_id")),
        names.TASK_RUN_ID: _int(data.get("task_run_id")),
        names.HOST_ID: host_id,
        "messaging.system": "floe",  # for generic tools; App Insights drops `messaging.*` keys
        "messaging.destination.name": label,
        "messaging.operation.type": "process",
    }
    # The run is the parent; what delivered the message (a Functions invocation's span) is a link.
    links = links_to(current_context()) if parent is not None else []
    with span(names.MESSAGE_SPAN, kind=CONSUMER, parent=parent, attributes=attributes, links=links) as opened:
        yield opened


def message_poisoned(queue: str, body: str) -> None:
    """Count a message moved to (or taken from) a poison queue: `floe.messages.poisoned`."""
    current().count(
        names.POISON_MESSAGES,
        {names.QUEUE_NAME: queue_label(queue), names.MESSAGE_KIND: _kind(_fields(body))},
    )


@contextlib.contextmanager
def tick(host_id: str, *, scheduled_ms: float | None = None) -> Iterator[TickWork]:
    """Around one tick: its lag behind `scheduled_ms` (epoch ms, when its schedule says it should have
    started) as `floe.tick.lag`, and its `floe.tick` span, exported only if the caller sets `worked`."""
    if scheduled_ms is not None:
        current().record(names.TICK_LAG, time.time() * 1000 - scheduled_ms, {})
    with tick_span(names.TICK_SPAN, {names.HOST_ID: host_id}) as work:
        yield work


def trigger_fired(trigger_type: str, due_ms: int, now_ms: int) -> None:
    """A due trigger started its run at `now_ms`; it was due at `due_ms`: `floe.trigger.lag`."""
    current().record(names.TRIGGER_LAG, now_ms - due_ms, {names.TRIGGER_TYPE: trigger_type})


def run_seen(run: Run, now_ms: int) -> None:
    """`tick` reconciled an active run: its age, `floe.run.age`."""
    if run.created_time and not run.is_final:
        current().record(names.RUN_AGE, now_ms - run.created_time, {names.JOB_ID: job_id(run)})


def clusters_seen(active: int) -> None:
    """`tick` listed the clusters: how many are not TERMINATED, `floe.clusters.active`."""
    current().record(names.ACTIVE_CLUSTERS, active, {})


# ------------------------------------------------------------------------------ operations inside a run


def redrive_span(run: Run, task: TaskRun, host_id: str) -> contextlib.AbstractContextManager[Any]:
    """`tick` sending a lost `task.start` again: `floe.run.redrive`, a child of the run's span."""
    return span(
        names.REDRIVE_SPAN,
        parent=run_context(run),
        attributes={
            names.JOB_ID: job_id(run),
            names.RUN_ID: run.run_id,
            names.TASK_KEY: task.task_key,
            names.TASK_RUN_ID: task.run_id,
            names.HOST_ID: host_id,
        },
    )


def cluster_span(
    name: str, cluster_id: str, *, run_id: int | None, host_id: str, traceparent: str | None = None
) -> contextlib.AbstractContextManager[Any]:
    """`floe.cluster.create` / `floe.cluster.terminate`: under `traceparent` when given (the run's),
    else under the current span (the `floe.message` starting a task)."""
    parent: TraceContext | bool | None = TraceContext.parse(traceparent) if traceparent else True
    attributes = {names.CLUSTER_ID: cluster_id, names.RUN_ID: run_id, names.HOST_ID: host_id}
    return span(name, parent=parent or True, attributes=attributes)


def libraries_span(
    *, job_id: int, run_id: int, task_key: str, task_run_id: int, traceparent: str | None
) -> contextlib.AbstractContextManager[Any]:
    """`floe.libraries.install` of one attempt, under its `floe.task` span (`traceparent`)."""
    parent = TraceContext.parse(traceparent)
    return span(
        names.LIBRARIES_SPAN,
        parent=parent or True,
        attributes={
            names.JOB_ID: job_id,
            names.RUN_ID: run_id,
            names.TASK_KEY: task_key,
            names.TASK_RUN_ID: task_run_id,
        },
    )


def notification_span(
    run: Run, task: TaskRun | None, event: str, target: str, host_id: str
) -> contextlib.AbstractContextManager[Any]:
    """One delivery try of a notification (`target`: `email` or `destination`), under the span of the
    attempt or of the run it is about."""
    parent = task_context(run, task) if task is not None else run_context(run)
    return span(
        names.NOTIFICATION_SPAN,
        kind=CLIENT,
        parent=parent,
        attributes={
            names.JOB_ID: job_id(run),
            names.RUN_ID: run.run_id,
            names.TASK_KEY: task.task_key if task is not None else None,
            names.TASK_RUN_ID: task.run_id if task is not None else None,
            names.NOTIFICATION_EVENT: event,
            names.NOTIFICATION_TARGET: target,
            names.HOST_ID: host_id,
        },
    )
