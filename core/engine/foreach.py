"""For-each tasks (`for_each_task`): one iteration per input, at most `concurrency` of them active at once.

- A for-each task becomes ready like any task (its dependencies and run_if). Its `inputs` are then
  resolved (`{{job.parameters.x}}`, `{{tasks.a.values.b}}`) and parsed as a JSON array; a bad value fails
  it at once (FAILED, INVALID_RUN_CONFIGURATION, the message naming the value). Otherwise it goes RUNNING
  and one iteration task run per input is created BLOCKED: `task_key` = the nested task's key,
  `parent_task_run_id` = the for-each task run, `iteration` = the index, `input` = the input as JSON text.
  An empty array succeeds at once.
- The for-each task run itself is never launched (no StartTask for it). Its iterations are launched like
  any task (StartTask; StartChildRun for a nested run_job_task; a nested condition_task is evaluated on
  the spot), lowest index first, while fewer than `concurrency` are active: PENDING, RUNNING or
  WAITING_FOR_RETRY (an iteration waiting for its retry keeps its slot). The nested task's retry settings
  and timeout apply to each iteration; the for-each task itself is never retried.
- Once every iteration is final the for-each ends: SUCCESS if all succeeded; else, if it was stopped, for
  the reason it was stopped (CANCELED, TIMEDOUT); else FAILED, naming how many failed and the first one.
  Iterations go on after one fails: the for-each fails at the end, with every iteration's outcome known.
- `stop` (a cancel of the run or of the task, its own timeout or the job's): no more iterations start;
  those not launched end CANCELED, those launched are killed.

Iterations are not top-level tasks: `latest_attempts` leaves them out, `iterations_of` finds them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from core.engine.dag import Node
from core.engine.records import TaskRun, iterations_of
from core.engine.references import ReferenceContext, resolve
from core.engine.rules import first_line
from core.engine.states import LifeCycle, Result
from core.engine.work import Work, of_retries, timeout_message
from core.errors import InvalidParameterValue

_L = LifeCycle

MAX_ITERATIONS = 5_000  # Floe's limit on the inputs of one for-each task (Databricks documents none found)
MAX_INPUT_CHARS = 16_000  # one input's JSON, kept inline on its task run (a table property holds 32 K chars)

# How the engine starts a ready task run (machine.start): passed in, so this module needs no import of it.
Start = Callable[[Work, Node, TaskRun, str], None]


def parse_inputs(inputs: str, ctx: ReferenceContext) -> tuple[str, list[Any]]:
    """Resolve a for-each task's `inputs` and parse them: (the resolved text, the inputs). Raises
    `InvalidParameterValue` naming the value when it is not a JSON array, or too long."""
    try:
        text = resolve(inputs, ctx)
    except InvalidParameterValue as exc:
        raise InvalidParameterValue(f"Cannot compute the for_each_task inputs: {exc.message}") from exc
    shown = repr(_clip(text)) if text == inputs else f"{inputs!r} (resolved to {_clip(text)!r})"
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise InvalidParameterValue(
            f"The for_each_task inputs must be a JSON array, and {shown} is not valid JSON ({exc})."
        ) from exc
    if not isinstance(items, list):
        raise InvalidParameterValue(
            f"The for_each_task inputs must be a JSON array, and {shown} is a JSON {_json_kind(items)}."
        )
    if len(items) > MAX_ITERATIONS:
        raise InvalidParameterValue(
            f"The for_each_task inputs have {len(items)} items; a for-each task runs at most "
            f"{MAX_ITERATIONS} iterations."
        )
    for index, item in enumerate(items):
        if len(_encode(item)) > MAX_INPUT_CHARS:
            raise InvalidParameterValue(
                f"Input {index} of the for_each_task is {len(_encode(item))} characters of JSON; "
                f"an input may have at most {MAX_INPUT_CHARS}."
            )
    return text, items


def begin(work: Work, node: Node, task: TaskRun, start: Start) -> None:
    """A BLOCKED for-each task run is ready: create its iterations and start the first ones."""
    assert node.for_each is not None
    spec = node.for_each
    try:
        text, items = parse_inputs(spec.inputs, work.context_for(task))
    except InvalidParameterValue as exc:
        work.fail_config(task, exc.message)
        return
    task = work.move(task, _L.PENDING, queued_time=work.now)
    task = work.move(
        task,
        _L.RUNNING,
        start_time=work.now,
        state_message=f"Running {_count(len(items), 'iteration')}, at most {spec.concurrency} at a time.",
        resolved_values={"for_each_task": {"inputs": text}},
    )
    for index, item in enumerate(items):
        run_id = work.new_id()
        work.put(
            TaskRun(
                task_key=spec.task.key,
                run_id=run_id,
                parent_run_id=work.run.run_id,
                original_attempt_run_id=run_id,
                parent_task_run_id=task.run_id,
                iteration=index,
                input=_encode(item),
                state_message=f"Waiting for a free slot (concurrency {spec.concurrency}).",
            )
        )
    advance(work, node, task, start)


def advance(work: Work, node: Node, task: TaskRun, start: Start) -> None:
    """Re-evaluate a RUNNING for-each task run: due retries start, overdue iterations are killed, free
    slots are filled (none of this once it or the run is being stopped), and it ends once every
    iteration is final."""
    assert node.for_each is not None
    spec, nested = node.for_each, node.for_each.task
    task = work.latest_of(task)
    if not (task.cancel_requested or work.run.cancel_requested):
        for iteration in work.iterations_of(task.run_id):
            if iteration.life_cycle is _L.WAITING_FOR_RETRY and iteration.retry_at <= work.now:
                number = work.retry_number(iteration)
                start(work, nested, iteration, f"Starting retry {number}{of_retries(nested)}.")
            elif work.overdue(nested, iteration):
                work.kill(iteration, Result.TIMEDOUT, timeout_message(nested))
        active = sum(1 for it in work.iterations_of(task.run_id) if _holds_a_slot(it))
        for iteration in work.iterations_of(task.run_id):
            if active >= spec.concurrency:
                break
            if iteration.life_cycle is _L.BLOCKED:
                start(work, nested, iteration, f"Starting iteration {iteration.iteration}.")
                active += _holds_a_slot(work.latest_of(iteration))
    iterations = work.iterations_of(task.run_id)
    if all(iteration.is_final for iteration in iterations):
        _finish(work, task, iterations)


def stop(work: Work, task: TaskRun, reason: Result, message: str) -> None:
    """Stop a for-each task run for `reason` (CANCELED or TIMEDOUT); it ends once its launched
    iterations have (see `advance`)."""
    by_user = reason is Result.CANCELED
    task = work.put(replace(task, cancel_requested=True, cancel_reason=reason, state_message=message))
    for iteration in work.iterations_of(task.run_id):
        if iteration.life_cycle in (_L.BLOCKED, _L.WAITING_FOR_RETRY):
            stopped = "Canceled: the for-each task was stopped."
            work.end(iteration, Result.CANCELED, stopped, by_user=by_user, cancel_reason=reason)
        elif iteration.life_cycle in (_L.PENDING, _L.RUNNING) and not iteration.cancel_requested:
            verb = "Canceling" if by_user else "Timing out"
            work.kill(iteration, reason, f"{verb}: the for-each task is being stopped.")


def _finish(work: Work, task: TaskRun, iterations: list[TaskRun]) -> None:
    total = len(iterations)
    bad = [iteration for iteration in iterations if iteration.result is not Result.SUCCESS]
    if not bad:
        message = f"All {_count(total, 'iteration')} succeeded." if total else "No inputs: nothing to run."
        work.end(task, Result.SUCCESS, message)
        return
    succeeded = total - len(bad)
    if task.cancel_reason is not None:
        reason = task.cancel_reason
        verb = "Canceled" if reason is Result.CANCELED else "Timed out"
        message = f"{verb}: {succeeded} of {_count(total, 'iteration')} succeeded before it was stopped."
        work.end(task, reason, message, by_user=reason is Result.CANCELED)
        return
    first = bad[0]
    detail = first_line(first.state_message).rstrip(".")
    message = (
        f"{len(bad)} of {_count(total, 'iteration')} failed; the first, iteration {first.iteration} "
        f"(input {_clip(first.input or '', 100)}), ended {first.result}" + (f": {detail}." if detail else ".")
    )
    work.end(task, Result.FAILED, message)


def _holds_a_slot(iteration: TaskRun) -> bool:
    return iteration.life_cycle in (_L.PENDING, _L.RUNNING, _L.WAITING_FOR_RETRY)


# -- reading -------------------------------------------------------------------------------------------


def for_each_stats(
    tasks: Mapping[int, TaskRun] | Iterable[TaskRun], for_each_task_run_id: int
) -> dict[str, Any]:
    """`for_each_task.stats` of a for-each task run, from the latest attempt of each iteration.

    - total: iterations created (one per input); scheduled: those launched at least once (not BLOCKED);
    - active: PENDING, RUNNING or WAITING_FOR_RETRY; completed: final; succeeded / failed: final with
      SUCCESS / with anything else (CANCELED included);
    - `error_message_stats`: the failed iterations grouped by message and termination code, most
      frequent first.
    """
    iterations = iterations_of(tasks, for_each_task_run_id)
    completed = [it for it in iterations if it.is_final]
    succeeded = sum(1 for it in completed if it.result is Result.SUCCESS)
    errors: dict[tuple[str, str], int] = {}
    for it in completed:
        if it.result is not Result.SUCCESS:
            code = it.termination.code.value if it.termination else ""
            key = (first_line(it.state_message or it.error or ""), code)
            errors[key] = errors.get(key, 0) + 1
    return {
        "task_run_stats": {
            "total_iterations": len(iterations),
            "scheduled_iterations": sum(1 for it in iterations if it.life_cycle is not _L.BLOCKED),
            "active_iterations": sum(1 for it in iterations if _holds_a_slot(it)),
            "completed_iterations": len(completed),
            "succeeded_iterations": succeeded,
            "failed_iterations": len(completed) - succeeded,
        },
        "error_message_stats": [
            {"error_message": message, "count": count, "termination_category": code}
            for (message, code), count in sorted(errors.items(), key=lambda item: (-item[1], item[0]))
        ],
    }


def _encode(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
