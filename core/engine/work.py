"""The working copy of one `apply`: the run and its task runs as they change, and the commands to carry
out. Internal to the engine: `machine`, `foreach`, `runjob`, `repair` and `deadlines` share it.

Every change goes through `put` (or `move` / `end`, which check the transition table), so `latest` (the
latest attempt of each top-level task) and `iterations` (the latest attempt of each for-each iteration)
always describe the run as changed so far, and `changed` holds exactly what the step must write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from core.engine import rules
from core.engine.dag import Dag, Node
from core.engine.events import ENDED_RESULTS, Command, KillTask
from core.engine.records import Run, TaskRun, latest_attempts, latest_iterations
from core.engine.references import ReferenceContext
from core.engine.states import LifeCycle, Result, TerminationCode
from core.engine.transitions import check_run_transition, check_task_transition
from core.errors import NotFound

_L = LifeCycle


class Work:
    def __init__(
        self,
        run: Run,
        tasks: Mapping[int, TaskRun],
        dag: Dag,
        now: int,
        new_id: Callable[[], int],
        ctx: ReferenceContext | None,
    ) -> None:
        self.run = run
        self.tasks = dict(tasks)
        self.dag = dag
        self.now = now
        self.new_id = new_id
        self.ctx = ctx
        self.latest = latest_attempts(self.tasks)
        self.iterations = latest_iterations(self.tasks)  # for-each task run id -> index -> latest attempt
        self.changed: dict[int, TaskRun] = {}
        self.commands: list[Command] = []

    # -- reading ---------------------------------------------------------------------------------------

    def task(self, task_run_id: int) -> TaskRun:
        try:
            return self.tasks[task_run_id]
        except KeyError:
            raise NotFound("Task run", task_run_id) from None

    def latest_of(self, task: TaskRun) -> TaskRun:
        """The latest attempt of the task, or of the for-each iteration, that `task` is an attempt of."""
        if task.parent_task_run_id is None:
            return self.latest.get(task.task_key, task)
        return self.iterations.get(task.parent_task_run_id, {}).get(_index(task), task)

    def iterations_of(self, parent_id: int) -> list[TaskRun]:
        """The latest attempt of each iteration of the for-each task run `parent_id`, in input order."""
        of_parent = self.iterations.get(parent_id, {})
        return [of_parent[index] for index in sorted(of_parent)]

    def node_of(self, task: TaskRun) -> Node | None:
        return node_of(self.dag, self.tasks, task)

    def overdue(self, node: Node, task: TaskRun) -> bool:
        """Whether the RUNNING attempt `task` ran past its task's timeout and is not being killed yet."""
        return (
            task.life_cycle is _L.RUNNING
            and bool(node.timeout_ms)
            and not task.cancel_requested
            and self.now >= task.start_time + node.timeout_ms
        )

    def retry_number(self, task: TaskRun) -> int:
        """How many attempts came before `task` in its chain of retries (0 for a first attempt). A repair
        starts a new chain (its attempt_number continues, its original_attempt_run_id is itself)."""
        first = self.tasks.get(task.original_attempt_run_id or task.run_id)
        return task.attempt_number - (first.attempt_number if first is not None else 0)

    @property
    def active(self) -> bool:
        return self.run.life_cycle in (_L.RUNNING, _L.TERMINATING)

    def context_for(self, task: TaskRun) -> ReferenceContext:
        """What the references of `task` may name: the handler's context (or one made from the run),
        with this task, the results known so far, and the iteration's input filled in."""
        run = self.run
        base = self.ctx or ReferenceContext(
            job_id=run.job_id,
            run_id=run.run_id,
            start_time_ms=run.start_time,
            trigger_type=run.trigger.value,
            parameters=run.job_parameters,
        )
        results = {t.task_key: t.result for t in self.latest.values() if t.is_final and t.result is not None}
        error_codes = {
            key: latest.termination.code.value
            for key, latest in self.latest.items()
            if key in results and results[key] is not Result.SUCCESS and latest.termination is not None
        }
        return replace(
            base,
            task_key=task.task_key,
            task_run_id=task.run_id,
            attempt_number=task.attempt_number,
            task_results={**base.task_results, **{key: result.value for key, result in results.items()}},
            task_error_codes={**base.task_error_codes, **error_codes},
        ).for_iteration(task.input)

    # -- changing --------------------------------------------------------------------------------------

    def put(self, task: TaskRun) -> TaskRun:
        self.tasks[task.run_id] = task
        self.changed[task.run_id] = task
        if task.parent_task_run_id is None:
            current = self.latest.get(task.task_key)
            if current is None or task.attempt_number >= current.attempt_number:
                self.latest[task.task_key] = task
        else:
            of_parent = self.iterations.setdefault(task.parent_task_run_id, {})
            current = of_parent.get(_index(task))
            if current is None or task.attempt_number >= current.attempt_number:
                of_parent[_index(task)] = task
        return task

    def move(self, task: TaskRun, to: LifeCycle, **changes: object) -> TaskRun:
        check_task_transition(task, to)
        return self.put(replace(task, life_cycle=to, **changes))  # type: ignore[arg-type]

    def end(
        self,
        task: TaskRun,
        result: Result,
        message: str,
        *,
        code: TerminationCode | None = None,
        by_user: bool = False,
        **changes: object,
    ) -> TaskRun:
        """Move a task run to TERMINATED with `result`, its termination, `end_time`, and (when an attempt
        failed, timed out or was canceled) the message as its `error`."""
        return self.move(
            task,
            _L.TERMINATED,
            result=result,
            state_message=message,
            termination=rules.task_termination(result, message, code, by_user=by_user),
            end_time=self.now,
            error=message if result in ENDED_RESULTS and result is not Result.SUCCESS else None,
            **changes,
        )

    def fail_config(self, task: TaskRun, message: str) -> TaskRun:
        """End a task that cannot run as configured (a reference that does not resolve, bad inputs)."""
        code = TerminationCode.INVALID_RUN_CONFIGURATION
        return self.end(task, Result.FAILED, message, code=code, start_time=task.start_time or self.now)

    def kill(self, task: TaskRun, reason: Result, message: str) -> None:
        """Ask the handler to stop a launched attempt (never a for-each task run: see `foreach.stop`)."""
        self.put(replace(task, cancel_requested=True, cancel_reason=reason, state_message=message))
        self.commands.append(KillTask(task.run_id, task.task_key, reason))

    def move_run(self, to: LifeCycle, *, repair: bool = False, **changes: object) -> None:
        check_run_transition(self.run, to, repair=repair)
        self.run = replace(self.run, life_cycle=to, **changes)  # type: ignore[arg-type]


def node_of(dag: Dag, tasks: Mapping[int, TaskRun], task: TaskRun) -> Node | None:
    """The settings node a task run runs: its task's, or for a for-each iteration the for-each's nested
    task (whose `settings` are the nested task's JSON). None when the settings no longer have it (a task
    removed from the job before a repair)."""
    if task.parent_task_run_id is None:
        return dag.nodes.get(task.task_key)
    parent = tasks.get(task.parent_task_run_id)
    return dag.node_of(task.task_key, parent.task_key if parent else "")


def of_retries(node: Node) -> str:
    return "" if node.retry.max_retries == -1 else f" of {node.retry.max_retries}"


def timeout_message(node: Node) -> str:
    return f"Timing out: ran longer than {node.timeout_ms // 1000} s (timeout_seconds)."


def _index(task: TaskRun) -> int:
    return task.iteration if task.iteration is not None else -1
