"""The executor's side of the task folder: write a task's inputs before launch, read its outputs after.

The file layout is the contract in `core.tasks.runtime`'s docstring; names are in `protocol`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.tasks.runtime.protocol import (
    ERROR_FILE,
    EXECUTED_NOTEBOOK_FILE,
    EXIT_FILE,
    PARAMS_FILE,
    UPSTREAM_VALUES_FILE,
    VALUES_FILE,
    read_json,
    write_json_atomic,
)

__all__ = ["TaskOutputs", "read_outputs", "write_inputs"]


def write_inputs(
    task_dir: Path,
    *,
    widgets: Mapping[str, str],
    job_parameters: Mapping[str, str],
    task_key: str,
    run_id: int,
    job_id: int,
    upstream_values: Mapping[str, Mapping[str, Any]],
) -> None:
    """Write `params.json` and `upstream_values.json` into an existing task folder.

    `widgets` is the final merge the notebook sees (base_parameters < job parameters < run-now
    notebook_params). `upstream_values` should hold every task of the run that finished before this one,
    with `{}` for a task that set no value, so that `taskValues.get(task, key, default=...)` returns the
    default instead of failing on an unknown task.
    """
    write_json_atomic(
        task_dir / PARAMS_FILE,
        {
            "widgets": dict(widgets),
            "job_parameters": dict(job_parameters),
            "task_key": task_key,
            "run_id": run_id,
            "job_id": job_id,
        },
    )
    write_json_atomic(task_dir / UPSTREAM_VALUES_FILE, {k: dict(v) for k, v in upstream_values.items()})


@dataclass(frozen=True, slots=True)
class TaskOutputs:
    """What a finished task process left in its folder.

    values: task values set with `dbutils.jobs.taskValues.set` (empty when none).
    exit_result: the string given to `dbutils.notebook.exit`, or None when it was not called (not cut to
        the 5 MB of get-output: that is the API's business).
    error / error_trace / error_cell: from `error.json`, written when a notebook failed.
    executed_notebook: the path of `executed.ipynb` when the task was a notebook, else None.
    """

    values: dict[str, Any] = field(default_factory=dict)
    exit_result: str | None = None
    error: str | None = None
    error_trace: str | None = None
    error_cell: int | None = None
    executed_notebook: Path | None = None


def read_outputs(task_dir: Path) -> TaskOutputs:
    """Read what the task wrote. A missing file means "nothing of that kind"."""
    values = read_json(task_dir / VALUES_FILE, {})
    exit_doc = read_json(task_dir / EXIT_FILE)
    error_doc = read_json(task_dir / ERROR_FILE)
    if not isinstance(error_doc, dict):
        error_doc = {}
    executed = task_dir / EXECUTED_NOTEBOOK_FILE
    return TaskOutputs(
        values=values if isinstance(values, dict) else {},
        exit_result=str(exit_doc["result"]) if isinstance(exit_doc, dict) and "result" in exit_doc else None,
        error=error_doc.get("error"),
        error_trace=error_doc.get("error_trace"),
        error_cell=error_doc.get("cell"),
        executed_notebook=executed if executed.is_file() else None,
    )
