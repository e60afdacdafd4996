"""The building blocks, without a host: trace contexts of runs, attempts and repairs; spans exported after
the fact with fixed ids; the tick span that exists only when the tick worked; log correlation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

from core.engine.records import RepairEntry, Run
from core.telemetry import names
from core.telemetry.context import TraceContext, attempt_context, new_traceparent, run_context
from core.telemetry.logs import JsonFormatter, TextFormatter, TraceContextFilter
from core.telemetry.spans import export_fixed, span, tick_span
from core.telemetry.work import message_span, queue_label
from tests.fixtures.telemetry import Captured, span_tree

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_traceparent_parses_and_prints_back() -> None:
    ctx = TraceContext.parse(TRACEPARENT)
    assert ctx is not None and ctx.traceparent == TRACEPARENT
    assert ctx.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736 and ctx.span_id == 0x00F067AA0BA902B7


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "garbage",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
    ],
)
def test_a_bad_traceparent_is_no_context(bad: str | None) -> None:
    assert TraceContext.parse(bad) is None


def test_new_runs_get_new_sampled_traces() -> None:
    first, second = TraceContext.parse(new_traceparent()), TraceContext.parse(new_traceparent())
    assert first and second and first.trace_id != second.trace_id and first.flags == 1


def test_attempt_contexts_are_stable_children_of_the_run() -> None:
    run = TraceContext.parse(TRACEPARENT)
    assert run is not None
    one, again, other = attempt_context(run, 11), attempt_context(run, 11), attempt_context(run, 12)
    assert one == again and one.trace_id == run.trace_id
    assert len({one.span_id, other.span_id, run.span_id}) == 3


def test_a_repair_is_a_new_trace_derived_from_the_original() -> None:
    run = Run(run_id=1, job_id=2, traceparent=TRACEPARENT)
    assert run_context(run) == TraceContext.parse(TRACEPARENT)
    repaired = Run(
        run_id=1,
        job_id=2,
        traceparent=TRACEPARENT,
        repair_history=(RepairEntry("ORIGINAL", None, 1), RepairEntry("REPAIR", 77, 5)),
    )
    again = Run(run_id=1, job_id=2, traceparent=TRACEPARENT, repair_history=repaired.repair_history)
    ctx = run_context(repaired)
    assert ctx is not None and ctx == run_context(again)
    assert ctx.trace_id != run_context(run).trace_id  # type: ignore[union-attr]
    assert run_context(Run(run_id=1, job_id=2)) is None


def test_a_span_exported_after_the_fact_keeps_its_ids_and_times(captured: Captured) -> None:
    run = TraceContext.parse(TRACEPARENT)
    assert run is not None
    attempt = attempt_context(run, 5)
    export_fixed(
        names.TASK_SPAN,
        attempt,
        parent=run,
        start_ms=1_000,
        end_ms=3_500,
        kind=SpanKind.CONSUMER,
        attributes={names.TASK_KEY: "t", names.CLUSTER_ID: None},
        error="boom",
    )
    export_fixed(
        names.RUN_SPAN, run, parent=None, start_ms=500, end_ms=4_000, kind=SpanKind.CONSUMER, attributes={}
    )
    task, root = captured.spans()
    assert (task.context.trace_id, task.context.span_id) == (attempt.trace_id, attempt.span_id)
    assert task.parent is not None and task.parent.span_id == run.span_id
    assert (task.start_time, task.end_time) == (1_000_000_000, 3_500_000_000)
    assert task.attributes == {names.TASK_KEY: "t"} and task.status.description == "boom"
    assert (root.context.trace_id, root.context.span_id, root.parent) == (run.trace_id, run.span_id, None)
    # ordinary spans still get ids of their own
    with span("other", parent=None):
        pass
    assert captured.spans("other")[0].context.trace_id != run.trace_id
    assert span_tree(captured.spans()).splitlines()[1:3] == ["  floe.run", "    floe.task task=t ERROR"]


def test_a_tick_span_is_exported_only_when_the_tick_worked(captured: Captured) -> None:
    with tick_span(names.TICK_SPAN, {names.HOST_ID: "h"}):
        pass
    assert captured.spans() == []
    with tick_span(names.TICK_SPAN, {names.HOST_ID: "h"}), span("floe.cluster.terminate"):
        pass  # a child span makes the tick one that worked
    child, tick = captured.spans()
    assert tick.name == names.TICK_SPAN and child.parent.span_id == tick.context.span_id  # type: ignore[union-attr]


def test_a_message_span_is_a_child_of_the_run_the_message_names(captured: Captured) -> None:
    body = json.dumps(
        {"v": 1, "kind": "task.start", "run_id": 3, "task_run_id": 4, "traceparent": TRACEPARENT}
    )
    with message_span(body, queue="floe-work", host_id="h", dequeue_count=2):
        pass
    with pytest.raises(ValueError), message_span("not json", queue="floe-host-abc", host_id="h"):
        raise ValueError("poison")
    good, bad = captured.spans()
    assert good.parent.span_id == 0x00F067AA0BA902B7  # type: ignore[union-attr]
    assert good.attributes[names.MESSAGE_KIND] == "task.start"  # type: ignore[index]
    assert good.attributes[names.DEQUEUE_COUNT] == 2  # type: ignore[index]
    assert bad.parent is None and bad.attributes[names.MESSAGE_KIND] == "unknown"  # type: ignore[index]
    assert bad.attributes[names.QUEUE_NAME] == "floe-host" == queue_label("floe-host-abc-poison")  # type: ignore[index]
    assert bad.status.status_code.name == "ERROR"


def test_log_records_carry_the_ids_of_the_current_span(captured: Captured) -> None:
    record = logging.LogRecord("floe.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    TraceContextFilter().filter(record)
    assert record.trace_id == "" and TextFormatter().format(record).endswith("floe.x: hello you")  # type: ignore[attr-defined]
    with span("around", parent=TraceContext.parse(TRACEPARENT)):
        TraceContextFilter().filter(record)
    assert record.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # type: ignore[attr-defined]
    assert TextFormatter().format(record).endswith(f"trace_id={record.trace_id} span_id={record.span_id}")  # type: ignore[attr-defined]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hello you" and entry["trace_id"] == record.trace_id  # type: ignore[attr-defined]


def test_a_task_process_gets_its_attempts_context_and_not_floes_own(tmp_path: Path) -> None:
    from core.tasks.python_script import task_environment

    env = task_environment(
        {"TRACEPARENT": "00-of-floe-itself", "TRACESTATE": "floe=1"},
        job_id=1,
        run_id=2,
        task_run_id=3,
        task_key="t",
        attempt=0,
        workspace=tmp_path,
        traceparent=TRACEPARENT,
        tracestate="vendor=abc",
    )
    assert (env["TRACEPARENT"], env["TRACESTATE"]) == (TRACEPARENT, "vendor=abc")
    env = task_environment(
        {"TRACESTATE": "floe=1"},
        job_id=1,
        run_id=2,
        task_run_id=3,
        task_key="t",
        attempt=0,
        workspace=tmp_path,
        traceparent=TRACEPARENT,
    )
    assert env["TRACEPARENT"] == TRACEPARENT and "TRACESTATE" not in env


def test_queue_age_leaves_a_delayed_messages_delay_out(captured: Captured) -> None:
    from datetime import UTC, datetime, timedelta

    body = json.dumps({"v": 1, "kind": "run.advance", "run_id": 3, "delay_ms": 60_000})
    with message_span(
        body, queue="floe-work", host_id="h", enqueued_at=datetime.now(UTC) - timedelta(seconds=62)
    ):
        pass
    [age] = captured.points(names.QUEUE_AGE)
    assert age.attributes == {names.QUEUE_NAME: "floe-work", names.MESSAGE_KIND: "run.advance"}
    assert 2_000 <= age.total < 10_000


def test_a_message_moved_to_poison_is_counted_once(captured: Captured, tmp_path: Path) -> None:
    from core.clock import FakeClock
    from core.messages import InvalidMessage
    from core.runtime.host import deliver
    from core.store import open_storage

    storage = open_storage("sqlite", root=tmp_path)

    class Refusing:
        clock = FakeClock()

        def __init__(self) -> None:
            self.storage = storage

        def handle_message(self, body: str, **delivery: object) -> None:
            raise InvalidMessage("never")

    try:
        work = storage.queues.queue("floe-work")
        work.send("not a floe message")
        [message] = work.receive()
        deliver(Refusing(), work, message)  # type: ignore[arg-type]
        deliver(Refusing(), work, message)  # type: ignore[arg-type]  # delivered twice, kept once
        [kept] = storage.blobs.list("poison/")
        assert b"not a floe message" in storage.blobs.get(kept.path).data  # type: ignore[union-attr]
        assert work.receive() == []
    finally:
        storage.close()
    [poisoned] = captured.points(names.POISON_MESSAGES)
    assert poisoned.value == 1
    assert poisoned.attributes == {names.QUEUE_NAME: "floe-work", names.MESSAGE_KIND: "unknown"}


def test_the_log_format_setting_is_text_or_json() -> None:
    from core.errors import InvalidParameterValue
    from core.settings import Settings

    assert Settings.from_env({"FLOE_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(InvalidParameterValue, match="FLOE_LOG_FORMAT: 'xml' is not one of 'text', 'json'"):
        Settings.from_env({"FLOE_LOG_FORMAT": "xml"})
