"""The W3C trace context of runs and task attempts, as plain values (no OpenTelemetry import).

A run outlives the process that created it, so its trace cannot hang on an open span. Instead:

- **The run's span** gets its ids when the run is created (`new_traceparent`), stored on the run as
  `Run.traceparent`. Every queue message about the run carries it, and whichever host sees the run become
  final exports the span with those ids and the run's real start and end times (`core.telemetry.spans`).
- **A task attempt's span** has ids derived from the run's trace and the attempt's task run id
  (`attempt_context`), so every host computes the same ones without storing anything: the host that
  claims the attempt gives them to the task process (`TRACEPARENT`), the host that records its end exports
  the span.
- **A repair** is a new trace: its ids are derived from the original trace and the repair id
  (`run_context`), and its run span links to the original run's span. The run keeps the original
  `traceparent`; the repair's context follows from `repair_history`.

Derived ids are the BLAKE2b hash of the original random trace id and a label, so they are as random as the
ids the OpenTelemetry SDK draws, and as unique.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from core.engine.records import Run

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")
SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One span's W3C trace context: ids as ints, flags, and an optional `tracestate` header value."""

    trace_id: int
    span_id: int
    flags: int = SAMPLED
    tracestate: str = ""

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"

    @classmethod
    def parse(cls, traceparent: str | None, tracestate: str = "") -> TraceContext | None:
        """The context of a `traceparent` header value; None when it is missing or malformed (a bad trace
        context never stops a run: it only loses the trace)."""
        if not traceparent:
            return None
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match is None or match.group(1) == "ff":
            return None
        trace_id, span_id = int(match.group(2), 16), int(match.group(3), 16)
        if not trace_id or not span_id:
            return None
        return cls(trace_id, span_id, int(match.group(4), 16), tracestate)


def new_traceparent() -> str:
    """The `traceparent` of a new run: a new trace, sampled (the exporter's sampler decides again)."""
    return TraceContext(_nonzero(secrets.randbits(128)), _nonzero(secrets.randbits(64))).traceparent


def original_context(run: Run) -> TraceContext | None:
    """The context of the run's first span (its creation), whatever repairs followed."""
    return TraceContext.parse(run.traceparent)


def repair_id(run: Run) -> int | None:
    """The id of the run's latest repair, or None for a run never repaired."""
    repairs = [entry.id for entry in run.repair_history if entry.type == "REPAIR" and entry.id is not None]
    return repairs[-1] if repairs else None


def run_context(run: Run) -> TraceContext | None:
    """The context of the run's current span: the original one, or that of its latest repair."""
    original = original_context(run)
    repair = repair_id(run)
    if original is None or repair is None:
        return original
    label = f"repair/{repair}"
    return TraceContext(
        _derive(original.trace_id, label, 128), _derive(original.trace_id, label, 64), original.flags
    )


def run_traceparent(run: Run) -> str | None:
    """What a queue message about the run carries: the `traceparent` of the run's current span."""
    context = run_context(run)
    return None if context is None else context.traceparent


def attempt_context(run: TraceContext, task_run_id: int) -> TraceContext:
    """The context of a task attempt's span, a child of the run's span `run`."""
    return TraceContext(
        run.trace_id, _derive(run.trace_id, f"task/{task_run_id}", 64), run.flags, run.tracestate
    )


def _derive(trace_id: int, label: str, bits: int) -> int:
    digest = hashlib.blake2b(f"{trace_id:032x}/{label}".encode(), digest_size=bits // 8).digest()
    return _nonzero(int.from_bytes(digest, "big"))


def _nonzero(value: int) -> int:
    return value or 1
