"""Run-job tasks (`run_job_task`): an attempt starts a run of another job instead of a process.

When the attempt may start it goes PENDING and the engine emits `StartChildRun` with the task's
`job_parameters`, references resolved (a reference that does not resolve fails the attempt with
INVALID_RUN_CONFIGURATION). From then on it is an ordinary attempt: the handler reports `TaskStarted`
once the child run exists (stamping `TaskRun.child_run_id`) and `TaskEnded` when the child ends
(`child_run_ended` says with what); `KillTask` asks it to cancel the child; retries start a new child.
"""

from __future__ import annotations

from core.engine.dag import Node
from core.engine.events import StartChildRun, TaskEnded
from core.engine.records import Run, TaskRun
from core.engine.references import resolve, to_text
from core.engine.states import LifeCycle, Result
from core.engine.work import Work
from core.errors import InvalidParameterValue


def start_child_run(work: Work, node: Node, task: TaskRun, message: str) -> None:
    """Move the ready attempt `task` to PENDING and ask for its child run."""
    assert node.run_job is not None
    try:
        ctx = work.context_for(task)
        parameters = {
            str(name): resolve(value if isinstance(value, str) else to_text(value), ctx)
            for name, value in node.run_job.job_parameters.items()
        }
    except InvalidParameterValue as exc:
        work.fail_config(task, exc.message)
        return
    queued = work.move(
        task,
        LifeCycle.PENDING,
        queued_time=work.now,
        state_message=message,
        resolved_values={"run_job_task": {"job_id": node.run_job.job_id, "job_parameters": parameters}},
    )
    work.commands.append(StartChildRun(queued.run_id, queued.task_key, node.run_job.job_id, parameters))


def child_run_ended(task_run_id: int, child: Run) -> TaskEnded:
    """The event that reports a finished child run to the run_job_task attempt `task_run_id`: SUCCESS
    when the child succeeded (SUCCESS, or SUCCESS_WITH_FAILURES: its leaf tasks succeeded), else FAILED
    with "Run N of job M ended <result>" and the child's message. A child stopped because the attempt was
    killed ends it CANCELED or TIMEDOUT anyway: the engine ends a killed attempt for the reason it was
    killed."""
    ended = child.result.value if child.result is not None else child.life_cycle.value
    if child.result is not None and child.result.is_success:
        message = f"Run {child.run_id} of job {child.job_id} " + (
            "succeeded." if child.result is Result.SUCCESS else f"ended {ended}."
        )
        return TaskEnded(task_run_id, Result.SUCCESS, message)
    message = f"Run {child.run_id} of job {child.job_id} ended {ended}"
    message += f": {child.state_message}" if child.state_message else "."
    return TaskEnded(task_run_id, Result.FAILED, message)
