"""`spark_python_task`: run a Python file with its parameters as argv.

The task is `{"python_file": str, "parameters": [str, ...], "source": "WORKSPACE" | "GIT"}` with its
parameters already resolved (`{{...}}` references replaced) by the caller. This module decides which file
runs, with which argv, in which directory and with which environment; `core.compute.process` runs it.

Where `python_file` is looked for (the first rule that applies):

1. A `file:` URI (`file:///abs/x.py`, `file:/abs/x.py`, host empty or `localhost`): that local path.
2. Any other URI scheme (`dbfs:/`, `s3://`, `abfss://`, `https://`, ...) is not supported: Floe runs files
   of this host only.
3. An absolute path that exists on this host: that file.
4. An absolute path that does not exist on this host is a Databricks workspace path (`/Users/me/x.py`):
   it is looked up under the workspace root, as `<workspace>/Users/me/x.py`. A leading `/Workspace/`
   (the FUSE prefix Databricks also accepts) is dropped when `<workspace>/Workspace/...` does not exist.
5. A relative path: under the workspace root. With `source: GIT` the path must be relative, and the
   caller passes the checkout of the job's `git_source` as the workspace.

A file that is not found, or is not a regular file, is an `InvalidParameterValue` naming the field and the
value: the task fails with that message, the worker carries on.

The process runs with the workspace root as its working directory, so relative data paths in user code
resolve the same way whichever folder the script is in; Python puts the script's own folder first on
`sys.path`, so the script still imports modules that sit next to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidParameterValue
from core.tasks.command import string_list
from core.tasks.paths import locate_file

__all__ = ["SCRUBBED_ENV", "PythonCommand", "build_command", "task_environment"]

_FIELD = "spark_python_task"
_SOURCES = ("WORKSPACE", "GIT")

# Floe's own credentials, never passed on to user code.
SCRUBBED_ENV = frozenset(
    {
        "FLOE_ADMIN_TOKEN",
        "AzureWebJobsStorage",
        "FLOE_AZURE_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    }
)
# Trace context of the Floe process itself; a task gets the one of its run, or none.
_TRACE_ENV = ("TRACEPARENT", "TRACESTATE")


@dataclass(frozen=True, slots=True)
class PythonCommand:
    """How to run a Python script task: `argv` = [python, "-u", script, *parameters], run in `cwd`."""

    argv: list[str]
    cwd: Path
    script: Path


def build_command(
    task: Mapping[str, Any],
    *,
    python: str,
    workspace: Path,
    python_params: Sequence[str] | None = None,
) -> PythonCommand:
    """The command for a resolved `spark_python_task` dict (see the module docstring for the path rules).

    `python_params`, the legacy run-now field, replaces the task's `parameters` when given (even empty).
    Raises InvalidParameterValue for a missing, unsupported or non-existent `python_file`, a bad `source`,
    or parameters that are not a list of strings.
    """
    source = task.get("source") or "WORKSPACE"
    if source not in _SOURCES:
        raise InvalidParameterValue(
            f"{_FIELD}.source: {source!r} is not supported; use one of {', '.join(_SOURCES)}"
        )
    script = _locate(task.get("python_file"), workspace=workspace, git=source == "GIT")
    if python_params is not None:
        parameters = string_list(python_params, "python_params")
    else:
        parameters = string_list(task.get("parameters") or [], f"{_FIELD}.parameters")
    argv = [python, "-u", str(script), *parameters]
    return PythonCommand(argv=argv, cwd=workspace.absolute(), script=script)


def task_environment(
    base: Mapping[str, str],
    *,
    job_id: int,
    run_id: int,
    task_run_id: int,
    task_key: str,
    attempt: int,
    workspace: Path,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> dict[str, str]:
    """The full environment of a task process: `base` without Floe's credentials (`SCRUBBED_ENV`) and
    without Floe's own trace context, plus FLOE_JOB_ID, FLOE_RUN_ID, FLOE_TASK_RUN_ID, FLOE_TASK_KEY,
    FLOE_ATTEMPT, FLOE_WORKSPACE, PYTHONUNBUFFERED=1 and, when given, TRACEPARENT and TRACESTATE (the
    context of the attempt's span, so the task's own spans join the run's trace)."""
    env = {k: v for k, v in base.items() if k not in SCRUBBED_ENV and k not in _TRACE_ENV}
    env.update(
        {
            "FLOE_JOB_ID": str(job_id),
            "FLOE_RUN_ID": str(run_id),
            "FLOE_TASK_RUN_ID": str(task_run_id),
            "FLOE_TASK_KEY": task_key,
            "FLOE_ATTEMPT": str(attempt),
            "FLOE_WORKSPACE": str(workspace.absolute()),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if traceparent:
        env["TRACEPARENT"] = traceparent
        if tracestate:
            env["TRACESTATE"] = tracestate
    return env


def _locate(value: object, *, workspace: Path, git: bool) -> Path:
    return locate_file(
        value, field=f"{_FIELD}.python_file", what="Python file to run", workspace=workspace, git=git
    )
