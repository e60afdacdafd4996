"""The names of Floe's telemetry: spans, their attributes, metrics and their dimensions.

This module is a contract. The code that emits telemetry uses these constants, and the alert rules and the
workbook in `infra/` query them. `tests/infra` checks that every name a query reads is defined here. A
renamed metric would leave a chart empty and an alert that never fires, with no error anywhere. So never
rename a name in place: add the new one, move `infra/` to it, then drop the old one.

Where each name lands in Application Insights (the Azure Monitor exporter; classic table names, as seen
from the Application Insights resource, which is what the alerts and the workbook are scoped to):

- **Spans.** A span of kind SERVER or CONSUMER becomes a row of `requests`. CLIENT, PRODUCER and INTERNAL
  spans become rows of `dependencies`. The span name is the `name` column, the span's length is `duration`
  (milliseconds), and `success` is false when the span status is ERROR. The attributes are in
  `customDimensions`, as strings: `tostring(customDimensions["floe.job.id"])`.
- **Attributes that survive.** The exporter leaves attributes out of `customDimensions` when they start
  with one of `DROPPED_PREFIXES` (`http.`, `messaging.`, `code.`, ...). So every queryable key here is
  `floe.*` or one of OpenTelemetry's CI/CD keys, `cicd.pipeline.*`. Floe may also set the standard keys
  for other tools (`messaging.destination.name`, ...), but a query must never need them.
- **Metrics.** A metric becomes rows of `customMetrics`, and `name` is the instrument's name
  (`name == "floe.runs.finished"`). Floe exports one row per export interval (60 s by default), per process
  and per set of attribute values. The attributes are in `customDimensions`. Counters and histograms are
  exported as deltas (the Azure Monitor exporter's default; keep it), so `sum(valueSum)` over a window is
  the total for that window. A histogram keeps only `valueSum`, `valueCount`, `valueMin` and `valueMax` per
  row, never its buckets. The mean is `sum(valueSum) / sum(valueCount)`. A percentile can only be taken
  over rows (of `valueMax`, say). Exact percentiles of run durations come from the run spans' `duration`
  column.

Values: ids (job, run, task run) are integers. Result states, termination codes and trigger types use the
Jobs API's own names (`FAILED`, `USER_CANCELED`, `PERIODIC`), as in `core.engine.states`. Durations are
milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

# ------------------------------------------------------------------------------------------ attributes

JOB_ID: Final = "floe.job.id"
"""The job's id. Not set for one-time runs (`runs/submit`), which have no job."""
RUN_ID: Final = "cicd.pipeline.run.id"
"""The run's id (`run_id` in the Jobs API)."""
RUN_NAME: Final = "cicd.pipeline.name"
"""The run's name: the job's name, or `run_name` of a one-time run. Only on spans: as a metric dimension it
would make one series per one-time run."""
TRIGGER_TYPE: Final = "floe.trigger.type"
"""What started the run (`trigger` in the Jobs API): PERIODIC, ONE_TIME, RETRY, RUN_JOB_TASK, FILE_ARRIVAL,
TABLE, CONTINUOUS, CONTINUOUS_RESTART, JOB_COMPLETION."""
RESULT_STATE: Final = "floe.run.result_state"
"""`state.result_state` of a finished run: SUCCESS, SUCCESS_WITH_FAILURES, FAILED, TIMEDOUT, CANCELED,
MAXIMUM_CONCURRENT_RUNS_REACHED, ..."""
TERMINATION_CODE: Final = "floe.run.termination_code"
"""`status.termination_details.code` of a finished run: SUCCESS, RUN_EXECUTION_ERROR, USER_CANCELED, ..."""
PIPELINE_RESULT: Final = "cicd.pipeline.result"
"""The run's result in OpenTelemetry's CI/CD words (`CICD_RESULT[result_state]`), for generic tools."""

TASK_KEY: Final = "cicd.pipeline.task.name"
"""The task's `task_key`."""
TASK_RUN_ID: Final = "cicd.pipeline.task.run.id"
"""The id of one attempt of a task (`run_id` of a task run in the Jobs API)."""
TASK_ATTEMPT: Final = "floe.task.attempt"
"""`attempt_number` of the task run: 0 for the first try, then 1, 2, ... for retries."""
TASK_TYPE: Final = "floe.task.type"
"""The task's type, named after its Jobs API field: `notebook_task`, `spark_python_task`,
`condition_task`, ... (a `floe.*` key: the CI/CD `cicd.pipeline.task.type` means build/test/deploy)."""
TASK_RESULT_STATE: Final = "floe.task.result_state"
"""`state.result_state` of a finished task run: SUCCESS, FAILED, TIMEDOUT, UPSTREAM_FAILED, EXCLUDED, ..."""
TASK_TERMINATION_CODE: Final = "floe.task.termination_code"
"""`status.termination_details.code` of a finished task run."""
TASK_RESULT: Final = "cicd.pipeline.task.run.result"
"""The task run's result in OpenTelemetry's CI/CD words (`CICD_RESULT[task_result_state]`)."""
CLUSTER_ID: Final = "floe.cluster.id"
"""The cluster a task run ran on, when it used one."""

QUEUE_NAME: Final = "floe.queue.name"
"""The name of the queue a message was received from, such as `floe-work` (without Floe's storage prefix).
For a poison message, this is the queue it failed on, not `<queue>-poison`."""
MESSAGE_KIND: Final = "floe.message.kind"
"""The `kind` of a Floe queue message (`run.advance`, `task.start`, `task.kill`), or `unknown` when the
body does not parse."""
DEQUEUE_COUNT: Final = "floe.message.dequeue_count"
"""How many times the message has been delivered, this time included."""
HOST_ID: Final = "floe.host.id"
"""The id of the Floe host (process) that did the work."""
REPAIR_ID: Final = "floe.run.repair_id"
"""The `repair_id` of the repair a span belongs to (a repair's `floe.run` span and its children)."""
NOTIFICATION_EVENT: Final = "floe.notification.event"
"""What a notification tells: `on_start`, `on_success`, `on_failure`,
`on_duration_warning_threshold_exceeded`."""
NOTIFICATION_TARGET: Final = "floe.notification.target"
"""Where a notification goes: `email` or `destination` (never the address itself)."""

# ----------------------------------------------------------------------------------------------- spans

RUN_SPAN: Final = "floe.run"
"""One per job run, kind CONSUMER, so a row of `requests`. It is the root of the run's trace. The exported
span starts when the run was created and ends when the run became final, so `duration` is the run's
duration. A run outlives the process that created it, so the span is exported once, when the run is final
(its context, stored on the run as `traceparent`, parents everything else). Status ERROR unless the result
is SUCCESS or SUCCESS_WITH_FAILURES."""
TASK_SPAN: Final = "floe.task"
"""One per task attempt (a retry is a new span), kind CONSUMER, so a row of `requests`, a child of the
run's span. It starts when the attempt is claimed and ends when the attempt is final. (An attempt that never
started, such as an UPSTREAM_FAILED one or one whose cluster did not come up, spans from when it was queued,
or has no length.) A for-each iteration is a child of its for-each task's span."""
TICK_SPAN: Final = "floe.tick"
"""One per tick that had something to do (started a run, re-drove work), kind CONSUMER (`requests`).
The local runtime ticks every second, so a tick that finds nothing due is not recorded."""
MESSAGE_SPAN: Final = "floe.message"
"""One per queue message handled, kind CONSUMER (`requests`), a child of the run the message is about."""
RUN_TRIGGER_SPAN: Final = "floe.run.trigger"
"""The creation of a run by its trigger (run-now, a schedule's tick, a file arrival, a webhook, a parent
run), kind PRODUCER (`dependencies`), a child of the run's span, emitted by the process that created the
run. It links to the span that was current there (the tick's, or an instrumented HTTP request's)."""
RUN_QUEUED_SPAN: Final = "floe.run.queued"
"""The time a run waited in the QUEUED state (`max_concurrent_runs`), kind INTERNAL (`dependencies`), a
child of the run's span, emitted when the run leaves the queue."""
REDRIVE_SPAN: Final = "floe.run.redrive"
"""`tick` sending a lost `task.start` again (an attempt PENDING for too long), kind INTERNAL
(`dependencies`), a child of the run's span."""
CLUSTER_CREATE_SPAN: Final = "floe.cluster.create"
"""Starting a job cluster for a task attempt, kind INTERNAL (`dependencies`), in the trace of the run
(under the `floe.message` that starts the attempt). Only the process that starts the cluster emits it."""
CLUSTER_TERMINATE_SPAN: Final = "floe.cluster.terminate"
"""Terminating a job cluster at the end of its run, kind INTERNAL (`dependencies`), in the run's trace."""
LIBRARIES_SPAN: Final = "floe.libraries.install"
"""Finding or building the Python environment of a task attempt's libraries, kind INTERNAL
(`dependencies`), a child of the attempt's `floe.task` span. Short when the environment is cached."""
NOTIFICATION_SPAN: Final = "floe.notification"
"""One delivery try of a notification (an email, a destination), kind CLIENT (`dependencies`), a child of
the span of the run (or of the task attempt) it is about."""

# --------------------------------------------------------------------------------------------- metrics

RUNS_STARTED: Final = "floe.runs.started"
"""Counter of runs created, by trigger. A run that is queued or skipped under `max_concurrent_runs`
counts too: it was triggered."""
RUNS_FINISHED: Final = "floe.runs.finished"
"""Counter of runs that reached a final state, by result state and termination code."""
RUN_DURATION: Final = "floe.run.duration"
"""Histogram (ms) of how long finished runs took, from creation to final state, by job and result."""
RUN_AGE: Final = "floe.run.age"
"""Histogram (ms) of the age of runs that are not final yet. `tick` records every active run it reconciles
(every 30 s on some host), so `valueMax` shows a run still going long after its usual duration, before it
ends."""
TASK_DURATION: Final = "floe.task.duration"
"""Histogram (ms) of how long finished task attempts took, from claim to final state, by type and result."""
QUEUE_AGE: Final = "floe.queue.age"
"""Histogram (ms) of how long a message waited: from the moment it could first be received (enqueued, plus
its delay when it was sent delayed) to the moment a worker received it. Recorded on every delivery."""
TICK_LAG: Final = "floe.tick.lag"
"""Histogram (ms) of how late a tick started compared with its schedule. The Functions timer fires at
second 0 of every minute, so its lag is how far past that instant the tick started. For the local runtime,
the scheduled instant is the previous tick plus its interval."""
TRIGGER_LAG: Final = "floe.trigger.lag"
"""Histogram (ms) of how late a due trigger was handled: from the instant it was due (a cron fire time, a
periodic slot, the end of a file-arrival wait) to the tick that started its run."""
POISON_MESSAGES: Final = "floe.messages.poisoned"
"""Counter of messages moved to a poison queue, by the queue they failed on, counted once each. Where Floe
moves the message itself (`core.runtime.host.deliver`: the local runtime, and the per-process host queues
under Azure Functions), it counts the move. Where the Functions host moves it (the `work` queue trigger
after maxDequeueCount deliveries), the `work_poison` function counts it as it takes it from the poison
queue. That function also counts the unreadable messages `work` sends there at once."""

TASK_RETRIES: Final = "floe.task.retries"
"""Counter of retry attempts created (a task's `max_retries` at work), by job and task type. The new
attempts a repair makes are not retries."""
ACTIVE_CLUSTERS: Final = "floe.clusters.active"
"""Histogram of how many clusters (job and all-purpose) are up or coming up (not TERMINATED or ERROR),
recorded by `tick` each time it reconciles (every 30 s on every host): `valueMax` over a window is the most
clusters up at once."""

# ------------------------------------------------------------------------------------ the whole contract

SpanKindName = Literal["CONSUMER", "SERVER", "INTERNAL", "CLIENT", "PRODUCER"]
Instrument = Literal["counter", "histogram"]


@dataclass(frozen=True)
class SpanSpec:
    name: str
    kind: SpanKindName
    attributes: tuple[str, ...]

    @property
    def table(self) -> str:
        """The Application Insights table the span lands in."""
        return "requests" if self.kind in ("CONSUMER", "SERVER") else "dependencies"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    instrument: Instrument
    unit: str
    attributes: tuple[str, ...]
    """The dimensions, which land in `customDimensions`. Keep them few and bounded: each set of values is a
    series of its own."""


_RUN_ATTRIBUTES = (
    JOB_ID,
    RUN_ID,
    RUN_NAME,
    TRIGGER_TYPE,
    RESULT_STATE,
    TERMINATION_CODE,
    PIPELINE_RESULT,
    REPAIR_ID,
    HOST_ID,
)
_TASK_ATTRIBUTES = (
    JOB_ID,
    RUN_ID,
    TASK_KEY,
    TASK_RUN_ID,
    TASK_ATTEMPT,
    TASK_TYPE,
    TASK_RESULT_STATE,
    TASK_TERMINATION_CODE,
    TASK_RESULT,
    CLUSTER_ID,
    HOST_ID,
    REPAIR_ID,
)

SPANS: Final[Mapping[str, SpanSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            SpanSpec(RUN_SPAN, "CONSUMER", _RUN_ATTRIBUTES),
            SpanSpec(TASK_SPAN, "CONSUMER", _TASK_ATTRIBUTES),
            SpanSpec(TICK_SPAN, "CONSUMER", (HOST_ID,)),
            SpanSpec(
                MESSAGE_SPAN,
                "CONSUMER",
                (QUEUE_NAME, MESSAGE_KIND, DEQUEUE_COUNT, RUN_ID, TASK_RUN_ID, HOST_ID),
            ),
            SpanSpec(RUN_TRIGGER_SPAN, "PRODUCER", (JOB_ID, RUN_ID, TRIGGER_TYPE, HOST_ID)),
            SpanSpec(RUN_QUEUED_SPAN, "INTERNAL", (JOB_ID, RUN_ID, HOST_ID)),
            SpanSpec(REDRIVE_SPAN, "INTERNAL", (JOB_ID, RUN_ID, TASK_KEY, TASK_RUN_ID, HOST_ID)),
            SpanSpec(CLUSTER_CREATE_SPAN, "INTERNAL", (CLUSTER_ID, RUN_ID, HOST_ID)),
            SpanSpec(CLUSTER_TERMINATE_SPAN, "INTERNAL", (CLUSTER_ID, RUN_ID, HOST_ID)),
            SpanSpec(LIBRARIES_SPAN, "INTERNAL", (JOB_ID, RUN_ID, TASK_KEY, TASK_RUN_ID, HOST_ID)),
            SpanSpec(
                NOTIFICATION_SPAN,
                "CLIENT",
                (JOB_ID, RUN_ID, TASK_KEY, TASK_RUN_ID, NOTIFICATION_EVENT, NOTIFICATION_TARGET, HOST_ID),
            ),
        )
    }
)
"""Every span Floe emits, by name, with the attributes it may carry (an attribute that does not apply,
such as `floe.cluster.id` of a task run without a cluster, is left out)."""

METRICS: Final[Mapping[str, MetricSpec]] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            MetricSpec(RUNS_STARTED, "counter", "{run}", (JOB_ID, TRIGGER_TYPE)),
            MetricSpec(
                RUNS_FINISHED, "counter", "{run}", (JOB_ID, TRIGGER_TYPE, RESULT_STATE, TERMINATION_CODE)
            ),
            MetricSpec(RUN_DURATION, "histogram", "ms", (JOB_ID, TRIGGER_TYPE, RESULT_STATE)),
            MetricSpec(RUN_AGE, "histogram", "ms", (JOB_ID,)),
            MetricSpec(TASK_DURATION, "histogram", "ms", (JOB_ID, TASK_TYPE, TASK_RESULT_STATE)),
            MetricSpec(QUEUE_AGE, "histogram", "ms", (QUEUE_NAME, MESSAGE_KIND)),
            MetricSpec(TICK_LAG, "histogram", "ms", ()),
            MetricSpec(TRIGGER_LAG, "histogram", "ms", (TRIGGER_TYPE,)),
            MetricSpec(POISON_MESSAGES, "counter", "{message}", (QUEUE_NAME, MESSAGE_KIND)),
            MetricSpec(TASK_RETRIES, "counter", "{attempt}", (JOB_ID, TASK_TYPE)),
            MetricSpec(ACTIVE_CLUSTERS, "histogram", "{cluster}", ()),
        )
    }
)
"""Every metric Floe emits, by name."""

ATTRIBUTES: Final[frozenset[str]] = frozenset(
    key for specs in (SPANS.values(), METRICS.values()) for spec in specs for key in spec.attributes
)
"""Every attribute key a span or a metric may carry."""

DROPPED_PREFIXES: Final = (
    "http.",
    "db.",
    "message.",
    "messaging.",
    "rpc.",
    "enduser.",
    "net.",
    "peer.",
    "exception.",
    "thread.",
    "faas.",
    "code.",
    "url.",
    "server.",
    "client.",
)
"""Key prefixes the Azure Monitor exporter leaves out of `customDimensions` (or may, for `url.`,
`server.` and `client.`), so no key above uses them."""

CICD_RESULT: Final[Mapping[str, str]] = MappingProxyType(
    {
        "SUCCESS": "success",
        "SUCCESS_WITH_FAILURES": "success",
        "FAILED": "failure",
        "TIMEDOUT": "timeout",
        "CANCELED": "cancellation",
        "UPSTREAM_CANCELED": "skip",
        "MAXIMUM_CONCURRENT_RUNS_REACHED": "skip",
        "EXCLUDED": "skip",
        "DISABLED": "skip",
        "UPSTREAM_FAILED": "skip",
    }
)
"""The value of `cicd.pipeline.result` / `cicd.pipeline.task.run.result` for each Jobs API result state.
A run that ends without a result (an internal error) is `error`."""
