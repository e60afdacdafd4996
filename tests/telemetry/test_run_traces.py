"""Traces and metrics of real runs on a real `floe serve` (the `floe_server` fixture), captured in memory:
one trace per run across messages and attempts, TRACEPARENT in the task process, repairs as linked traces,
and the run metrics with their dimensions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from core.telemetry import names
from core.telemetry.context import TraceContext
from tests.fixtures.server import FloeServer
from tests.fixtures.telemetry import Captured, span_tree

pytestmark = pytest.mark.timeout(120)

# Writes the TRACEPARENT it sees to <out>/<task>-<attempt>.tp; `flaky` fails its first attempt, and `gate`
# fails until the file <out>/open exists.
TASK = """
import os, pathlib, sys
out = pathlib.Path(sys.argv[1])
key, attempt = os.environ["FLOE_TASK_KEY"], os.environ["FLOE_ATTEMPT"]
seen = os.environ.get("TRACEPARENT", "") + "\\n" + os.environ.get("TRACESTATE", "")
(out / f"{key}-{attempt}.tp").write_text(seen)
if key == "flaky" and attempt == "0":
    sys.exit("the first try fails")
if key == "gate" and not (out / "open").exists():
    sys.exit("the gate is closed")
"""


@pytest.fixture
def api(floe_server: FloeServer) -> httpx.Client:
    floe_server.script("task.py", TASK)
    return httpx.Client(
        base_url=f"{floe_server.url}/api/2.2",
        headers={"Authorization": f"Bearer {floe_server.token}"},
        timeout=30,
    )


def _task(key: str, out: Path, *after: str, **extra: Any) -> dict[str, Any]:
    return {
        "task_key": key,
        "spark_python_task": {"python_file": "task.py", "parameters": [str(out)]},
        "depends_on": [{"task_key": k} for k in after],
        **extra,
    }


def _post(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _wait_final(api: httpx.Client, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run = api.get("/jobs/runs/get", params={"run_id": run_id}).json()
        if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            return run
        assert time.monotonic() < deadline, run["state"]
        time.sleep(0.05)


def _of_run(spans: list[ReadableSpan], run_id: int) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get(names.RUN_ID) == run_id]


def _traceparent(out: Path, key: str, attempt: int) -> TraceContext:
    traceparent, tracestate = (out / f"{key}-{attempt}.tp").read_text().split("\n")
    ctx = TraceContext.parse(traceparent)
    assert ctx is not None, f"task {key} attempt {attempt} saw TRACEPARENT={traceparent!r}"
    assert tracestate == ""  # Floe's traces carry no tracestate; TRACESTATE is only set when one does
    return ctx


def test_a_multi_task_run_with_a_retry_is_one_trace(
    captured: Captured, api: httpx.Client, floe_server: FloeServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    retry = {"max_retries": 1, "min_retry_interval_millis": 0}
    tasks = [
        _task("start", out),
        _task("flaky", out, "start", **retry),  # fan-out: flaky and steady after start
        _task("steady", out, "start"),
        _task("join", out, "flaky", "steady"),
    ]
    job_id = _post(api, "/jobs/create", {"name": "traced", "tasks": tasks})["job_id"]
    run_id = _post(api, "/jobs/run-now", {"job_id": job_id})["run_id"]
    run = _wait_final(api, run_id)
    assert run["state"]["result_state"] == "SUCCESS", run["state"]

    [root] = captured.wait_for(lambda: captured.spans(names.RUN_SPAN), describe="the run's span")
    spans = captured.spans()
    tree = span_tree(_of_run(spans, run_id))
    trace_id = root.context.trace_id
    assert root.parent is None and root.kind is SpanKind.CONSUMER, tree
    assert root.attributes == {
        names.JOB_ID: job_id,
        names.RUN_ID: run_id,
        names.RUN_NAME: "traced",
        names.TRIGGER_TYPE: "ONE_TIME",
        names.RESULT_STATE: "SUCCESS",
        names.TERMINATION_CODE: "SUCCESS",
        names.PIPELINE_RESULT: "success",
        names.HOST_ID: floe_server.host.floe.host_id,
    }
    assert root.start_time == run["start_time"] * 1_000_000 and root.end_time == run["end_time"] * 1_000_000

    # ONE trace: everything about the run is in the root's trace
    assert {s.context.trace_id for s in _of_run(spans, run_id)} == {trace_id}, tree

    # one floe.task per attempt, the retry included, each a child of the run's span
    attempts = {
        (s.attributes[names.TASK_KEY], s.attributes[names.TASK_ATTEMPT]): s  # type: ignore[index]
        for s in captured.spans(names.TASK_SPAN)
    }
    assert sorted(attempts) == [("flaky", 0), ("flaky", 1), ("join", 0), ("start", 0), ("steady", 0)], tree
    for (key, attempt), span in attempts.items():
        assert span.parent is not None and span.parent.span_id == root.context.span_id, tree
        assert span.attributes[names.TASK_TYPE] == "spark_python_task"  # type: ignore[index]
        # the task process continues the trace: TRACEPARENT is its attempt's span
        seen = _traceparent(out, key, attempt)
        assert (seen.trace_id, seen.span_id) == (trace_id, span.context.span_id), f"{key}/{attempt}\n{tree}"
    failed = attempts[("flaky", 0)]
    assert failed.status.status_code.name == "ERROR"
    assert failed.attributes[names.TASK_RESULT_STATE] == "FAILED"  # type: ignore[index]
    assert failed.attributes[names.TASK_RESULT] == "failure"  # type: ignore[index]
    assert attempts[("flaky", 1)].attributes[names.TASK_RESULT] == "success"  # type: ignore[index]

    messages = [s for s in captured.spans(names.MESSAGE_SPAN) if s.context.trace_id == trace_id]
    kinds = [s.attributes[names.MESSAGE_KIND] for s in messages]  # type: ignore[index]
    assert kinds.count("task.start") == 5, tree
    assert all(s.parent.span_id == root.context.span_id for s in messages), tree  # type: ignore[union-attr]
    assert all(s.attributes[names.QUEUE_NAME] == "floe-work" for s in messages)  # type: ignore[index]
    [trigger] = captured.spans(names.RUN_TRIGGER_SPAN)
    assert trigger.parent.span_id == root.context.span_id and trigger.kind is SpanKind.PRODUCER  # type: ignore[union-attr]

    lines = tree.splitlines()
    assert lines[1] == "  floe.run trigger=ONE_TIME result=SUCCESS", tree
    assert "    floe.task task=flaky attempt=0 result=FAILED ERROR" in lines, tree

    # metrics, with their dimensions
    [started] = captured.points(names.RUNS_STARTED)
    assert started.attributes == {names.JOB_ID: job_id, names.TRIGGER_TYPE: "ONE_TIME"} and started.value == 1
    [finished] = captured.points(names.RUNS_FINISHED)
    assert finished.value == 1 and finished.attributes == {
        names.JOB_ID: job_id,
        names.TRIGGER_TYPE: "ONE_TIME",
        names.RESULT_STATE: "SUCCESS",
        names.TERMINATION_CODE: "SUCCESS",
    }
    [duration] = captured.points(names.RUN_DURATION)
    assert duration.value == 1 and duration.total == run["end_time"] - run["start_time"]
    assert sum(p.value for p in captured.points(names.TASK_DURATION)) == 5
    assert {p.attributes[names.TASK_RESULT_STATE] for p in captured.points(names.TASK_DURATION)} == {
        "SUCCESS",
        "FAILED",
    }
    [retries] = captured.points(names.TASK_RETRIES)
    assert retries.value == 1 and retries.attributes[names.TASK_TYPE] == "spark_python_task"
    ages = captured.points(names.QUEUE_AGE)
    assert sum(p.value for p in ages) >= 5 and all(p.total >= 0 for p in ages)


def test_a_repair_is_a_new_trace_linked_to_the_original(
    captured: Captured, api: httpx.Client, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    job_id = _post(api, "/jobs/create", {"name": "repaired", "tasks": [_task("gate", out)]})["job_id"]
    run_id = _post(api, "/jobs/run-now", {"job_id": job_id})["run_id"]
    assert _wait_final(api, run_id)["state"]["result_state"] == "FAILED"
    [original] = captured.wait_for(lambda: captured.spans(names.RUN_SPAN), describe="the first run span")
    assert original.status.status_code.name == "ERROR"

    (out / "open").touch()
    repair_id = _post(api, "/jobs/runs/repair", {"run_id": run_id, "rerun_all_failed_tasks": True})[
        "repair_id"
    ]
    assert _wait_final(api, run_id)["state"]["result_state"] == "SUCCESS"
    roots = captured.wait_for(
        lambda: found if len(found := captured.spans(names.RUN_SPAN)) == 2 else None,
        describe="the repair's run span",
    )
    tree = span_tree(captured.spans())
    repair = roots[1]
    assert repair.context.trace_id != original.context.trace_id, tree
    assert repair.attributes[names.REPAIR_ID] == repair_id and repair.parent is None  # type: ignore[index]
    assert repair.attributes[names.RESULT_STATE] == "SUCCESS"  # type: ignore[index]
    [link] = repair.links
    assert (link.context.trace_id, link.context.span_id) == (
        original.context.trace_id,
        original.context.span_id,
    )

    first, second = sorted(captured.spans(names.TASK_SPAN), key=lambda s: s.start_time)
    assert first.context.trace_id == original.context.trace_id, tree
    assert second.context.trace_id == repair.context.trace_id, tree
    assert second.parent.span_id == repair.context.span_id, tree  # type: ignore[union-attr]
    seen = _traceparent(out, "gate", 1)
    assert (seen.trace_id, seen.span_id) == (repair.context.trace_id, second.context.span_id)
    # the repair's own messages are in the repair's trace
    assert any(s.context.trace_id == repair.context.trace_id for s in captured.spans(names.MESSAGE_SPAN)), (
        tree
    )
    assert sum(p.value for p in captured.points(names.TASK_RETRIES)) == 0  # a repair is not a retry
