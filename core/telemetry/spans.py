"""Floe's spans: those exported after the fact with ids fixed in advance (runs, task attempts, ticks), and
ordinary in-process ones (queue messages, cluster operations, library installs, notifications).

**Spans with fixed ids.** A run's span and a task attempt's span have their ids before they are exported
(`core.telemetry.context`), because other spans, other hosts and task processes parent on them long before
they end. The SDK draws ids from its tracer's `IdGenerator`; Floe's tracer gets a `_PinnedIds` generator
that returns the ids pinned on the current thread for one `start_span` call, and the SDK's own otherwise.
The span is then started with its real start time and a parent given explicitly (none for a run), and
ended with its real end time: an ordinary SDK span, going through the provider's processors, sampler and
exporters like any other (Azure Monitor's included). Only the SDK's public API is used: the `IdGenerator`
interface and the tracer's `id_generator` attribute. A tracer that is not the SDK's (no exporter
configured) has nothing to export, and these spans are skipped.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from core.telemetry.context import TraceContext
from core.telemetry.setup import current

CONSUMER, PRODUCER, INTERNAL, CLIENT = (
    SpanKind.CONSUMER,
    SpanKind.PRODUCER,
    SpanKind.INTERNAL,
    SpanKind.CLIENT,
)


class _PinnedIds:
    """The SDK's id generator, except while ids are pinned on the calling thread. (The SDK's `IdGenerator`
    interface, duck-typed: importing the SDK here would cost every cold start.)"""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self._local = threading.local()

    @contextlib.contextmanager
    def pinned(self, trace_id: int, span_id: int) -> Iterator[None]:
        self._local.ids = (trace_id, span_id)
        try:
            yield
        finally:
            self._local.ids = None

    def generate_span_id(self) -> int:
        ids = getattr(self._local, "ids", None)
        return ids[1] if ids else self._fallback.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = getattr(self._local, "ids", None)
        return ids[0] if ids else self._fallback.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        # Pinned ids keep the flags Floe stored with them (task processes saw those).
        ids = getattr(self._local, "ids", None)
        return False if ids else self._fallback.is_trace_id_random()


_pin_lock = threading.Lock()


def _pinned(tracer: Any) -> _PinnedIds | None:
    generator = getattr(tracer, "id_generator", None)
    if generator is None:
        return None
    if not isinstance(generator, _PinnedIds):
        with _pin_lock:
            generator = tracer.id_generator
            if not isinstance(generator, _PinnedIds):
                generator = tracer.id_generator = _PinnedIds(generator)
    return generator


# ------------------------------------------------------------------------------------------ contexts


def span_context(ctx: TraceContext, *, remote: bool = True) -> SpanContext:
    state = TraceState.from_header([ctx.tracestate]) if ctx.tracestate else None
    return SpanContext(ctx.trace_id, ctx.span_id, remote, TraceFlags(ctx.flags & 0xFF), state)


def parent_context(parent: TraceContext | None) -> otel_context.Context:
    """An OpenTelemetry context whose current span is `parent`; an empty one (a new trace) for None."""
    empty = otel_context.Context()
    if parent is None:
        return empty
    return trace.set_span_in_context(NonRecordingSpan(span_context(parent)), empty)


def current_context() -> TraceContext | None:
    """The W3C context of the current span, if there is one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    state = ctx.trace_state.to_header() if ctx.trace_state else ""
    return TraceContext(ctx.trace_id, ctx.span_id, int(ctx.trace_flags), state)


def links_to(*contexts: TraceContext | None) -> list[Link]:
    return [Link(span_context(c)) for c in contexts if c is not None]


def _ns(ms: int) -> int:
    return int(ms) * 1_000_000


# -------------------------------------------------------------------------------------- after the fact


def export_fixed(
    name: str,
    ctx: TraceContext,
    *,
    parent: TraceContext | None,
    start_ms: int,
    end_ms: int,
    kind: SpanKind,
    attributes: Mapping[str, Any],
    error: str | None = None,
    links: Sequence[Link] = (),
) -> None:
    """Export a finished span whose ids are `ctx`'s (see the module docstring)."""
    tracer = current().tracer
    ids = _pinned(tracer)
    if ids is None:
        return
    with ids.pinned(ctx.trace_id, ctx.span_id):
        span = tracer.start_span(
            name,
            context=parent_context(parent),
            kind=kind,
            attributes=_clean(attributes),
            links=links,
            start_time=_ns(start_ms),
        )
    _finish(span, error, max(start_ms, end_ms))


def export_timed(
    name: str,
    *,
    parent: TraceContext | None,
    start_ms: int,
    end_ms: int,
    kind: SpanKind,
    attributes: Mapping[str, Any],
    error: str | None = None,
    links: Sequence[Link] = (),
) -> None:
    """Export a finished span with new ids, a child of `parent`, from `start_ms` to `end_ms`."""
    span = current().tracer.start_span(
        name,
        context=parent_context(parent),
        kind=kind,
        attributes=_clean(attributes),
        links=links,
        start_time=_ns(start_ms),
    )
    _finish(span, error, max(start_ms, end_ms))


def _finish(span: Any, error: str | None, end_ms: int) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error[:1000]))
    span.end(end_time=_ns(end_ms))


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None and v != ""}


# ------------------------------------------------------------------------------------------ in-process


class TickWork:
    """What a tick did, as far as its span goes: the span is exported only when `worked`."""

    def __init__(self) -> None:
        self.worked = False


_tick: contextvars.ContextVar[TickWork | None] = contextvars.ContextVar("floe_tick", default=None)


@contextlib.contextmanager
def tick_span(name: str, attributes: Mapping[str, Any]) -> Iterator[TickWork]:
    """The span of one tick, current while it runs, exported only if the tick did something: set
    `worked` (a span started inside it sets it too, so no child is left without its parent)."""
    ctx = TraceContext(secrets.randbits(128) or 1, secrets.randbits(64) or 1)
    work = TickWork()
    start_ms = int(time.time() * 1000)
    token = otel_context.attach(
        trace.set_span_in_context(NonRecordingSpan(span_context(ctx, remote=False)), otel_context.Context())
    )
    marker = _tick.set(work)
    try:
        yield work
    finally:
        _tick.reset(marker)
        otel_context.detach(token)
        if work.worked:
            end_ms = int(time.time() * 1000)
            export_fixed(
                name, ctx, parent=None, start_ms=start_ms, end_ms=end_ms, kind=CONSUMER, attributes=attributes
            )


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = INTERNAL,
    parent: TraceContext | bool | None = True,
    attributes: Mapping[str, Any] | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Any]:
    """An in-process span, current while the block runs. `parent`: a context, None for a new trace, or True
    for the current span. An exception leaving the block is recorded and marks the span ERROR."""
    work = _tick.get()
    if work is not None and parent is True:
        work.worked = True
    context = None if parent is True else parent_context(parent)  # type: ignore[arg-type]
    with current().tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=_clean(attributes or {}), links=links
    ) as opened:
        yield opened
