"""Floe's telemetry: OpenTelemetry traces and metrics, exported to Azure Monitor or OTLP.

`core.telemetry.names` is the contract: every span name, attribute key and metric name Floe emits, and
where each lands in Application Insights. The alert rules and the workbook in `infra/` query exactly
those names.

- `context`: the W3C trace context of runs and attempts (plain values; what runs and messages store).
- `setup`: choosing the exporter (`configure`) and the process's current `Telemetry`.
- `spans`: spans exported after the fact with fixed ids, and in-process spans.
- `runs`: the `RunService.on_step` hook that turns committed steps into run and task spans and metrics.
- `work`: queue messages, poison messages, ticks, and what `tick` measures.
- `logs`: log records with trace and span ids, as text or JSON.

One trace per run: its root span `floe.run` has ids from the run's creation and is exported when the run
ends; `floe.task` (one per attempt), `floe.message`, `floe.run.trigger`, cluster, library and notification
spans hang under it, whichever host or Functions invocation emitted them. A repair is a new trace linked
to the original run's.
"""

from core.telemetry.context import (
    TraceContext,
    attempt_context,
    new_traceparent,
    run_context,
    run_traceparent,
)
from core.telemetry.runs import RunTelemetry, task_context
from core.telemetry.setup import Telemetry, configure, current, install, reset
from core.telemetry.work import (
    cluster_span,
    clusters_seen,
    libraries_span,
    message_poisoned,
    message_span,
    notification_span,
    redrive_span,
    run_seen,
    tick,
    trigger_fired,
)

__all__ = [
    "RunTelemetry",
    "Telemetry",
    "TraceContext",
    "attempt_context",
    "cluster_span",
    "clusters_seen",
    "configure",
    "current",
    "install",
    "libraries_span",
    "message_poisoned",
    "message_span",
    "new_traceparent",
    "notification_span",
    "redrive_span",
    "reset",
    "run_context",
    "run_seen",
    "run_traceparent",
    "task_context",
    "tick",
    "trigger_fired",
]
