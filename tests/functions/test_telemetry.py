"""One trace across Functions invocations, against Azurite: the `http` function creates the run (its
context is born there), the `tick` timer re-drives a `task.start` it takes for lost, a runner starts and
ends the attempt and ends the run, whose span it exports with the ids the HTTP invocation gave it, while
the `work` queue function polls the attempt; the task process continues the trace from its attempt's
span."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from core.clock import FakeClock
from core.telemetry import names
from core.telemetry.context import TraceContext
from core.upkeep import STUCK_PENDING_MS
from tests.fixtures.telemetry import Captured, span_tree
from tests.functions.conftest import Api, FunctionsEnv, QueueHost

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(120)]

START = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)

TASK = """
import os, sys
with open(sys.argv[1], "w") as out:
    out.write(os.environ.get("TRACEPARENT", ""))
"""


def test_a_functions_driven_run_is_one_trace_across_http_timer_and_queue(
    captured: Captured,
    app_settings: FunctionsEnv,
    indexed: dict[str, Any],
    api: Api,
    queue_host: QueueHost,
    use_clock: Any,
    start_runner: Callable[[], Any],
) -> None:
    clock = FakeClock(START)
    use_clock(clock)
    (app_settings.workspace / "task.py").write_text(textwrap.dedent(TASK))
    seen = app_settings.workspace / "traceparent.txt"
    task = {"task_key": "only", "spark_python_task": {"python_file": "task.py", "parameters": [str(seen)]}}
    job_id = api.post("/api/2.2/jobs/create", {"name": "across-functions", "tasks": [task]})["job_id"]
    run_id = api.post("/api/2.2/jobs/run-now", {"job_id": job_id})["run_id"]  # the http function

    # Nobody took the task.start yet: a minute later the timer takes it for lost and sends it again.
    clock.set(START + timedelta(milliseconds=STUCK_PENDING_MS + 1_000))
    indexed["tick"].get_user_function()(TimerRequest(past_due=False))
    assert captured.spans(names.REDRIVE_SPAN), span_tree(captured.spans())

    start_runner()  # it receives both task.start messages: one claims the attempt, one finds it claimed

    def ended() -> dict[str, Any] | None:  # the work function (the polls), fed by the host stand-in
        run = api.get("/api/2.2/jobs/runs/get", run_id=run_id)
        return run if run["state"]["life_cycle_state"] == "TERMINATED" else None

    run = queue_host.run_until(ended, timeout=60, what=f"run {run_id} to end")
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    [root] = captured.wait_for(lambda: captured.spans(names.RUN_SPAN), describe="the run's span")
    tree = span_tree(captured.spans())
    trace_id = root.context.trace_id
    assert root.attributes[names.RUN_ID] == run_id and root.attributes[names.JOB_ID] == job_id  # type: ignore[index]

    in_trace = [s for s in captured.spans() if s.context.trace_id == trace_id]
    by_name: dict[str, list[Any]] = {}
    for span in in_trace:
        by_name.setdefault(span.name, []).append(span)
    assert len(by_name[names.RUN_TRIGGER_SPAN]) == 1, tree  # http
    assert len(by_name[names.REDRIVE_SPAN]) == 1, tree  # timer
    kinds = [span.attributes[names.MESSAGE_KIND] for span in by_name[names.MESSAGE_SPAN]]  # type: ignore[index]
    assert kinds.count("task.start") == 2, tree  # runner: the first task.start and the re-driven one
    assert set(kinds) <= {"task.start", "run.poll"}, tree  # work: the polls
    assert len(by_name[names.TASK_SPAN]) == 1, tree  # runner: the attempt, claimed once
    for span in in_trace:
        if span is not root:
            assert span.parent is not None and span.parent.span_id == root.context.span_id, tree
    [attempt] = by_name[names.TASK_SPAN]
    process = TraceContext.parse(seen.read_text())
    assert process is not None and (process.trace_id, process.span_id) == (trace_id, attempt.context.span_id)
    # the timer's own span: a trace of its own, exported because the tick re-drove work
    [tick] = captured.spans(names.TICK_SPAN)
    assert tick.context.trace_id != trace_id and tick.parent is None
    assert [p.value for p in captured.points(names.TICK_LAG)] == [1]
