"""`python_wheel_task`: run an entry point of a wheel installed by the task's libraries.

The task is `{"package_name": str, "entry_point": str, "parameters": [str, ...] | "named_parameters":
{name: str}}`, resolved by the caller. The wheel itself comes from the task's `libraries` (`{"whl":
path}` or `{"pypi": ...}`), installed by `core.tasks.libraries.ensure_python_env`; `python` is that
environment's interpreter. The process is `python -u -P -m core.tasks.runtime.wheel_runner PACKAGE
ENTRY_POINT ARGS...`; the runner resolves the entry point in the target interpreter (see its docstring).

Arguments: `named_parameters` become `--name=value`, in the order given; `parameters` are passed as
they are. The legacy run-now fields replace the task's: `python_named_params` its arguments by
`--name=value` ones, else `python_params` by positional ones.

Job parameters (pushed down to every task taking key/value parameters) are added as `--name=value`
named parameters; a job parameter replaces the value of a named parameter of the same name, in place.
A task may give `parameters` or `named_parameters`, not both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidParameterValue
from core.tasks.command import Command, string_list, string_map

__all__ = ["RUNNER_MODULE", "build_wheel_command"]

RUNNER_MODULE = "core.tasks.runtime.wheel_runner"
_FIELD = "python_wheel_task"


def build_wheel_command(
    task: Mapping[str, Any],
    *,
    python: str,
    workspace: Path,
    job_parameters: Mapping[str, str] | None = None,
    python_params: Sequence[str] | None = None,
    python_named_params: Mapping[str, str] | None = None,
) -> Command:
    """The command for a resolved `python_wheel_task` dict, run with `python` (the libraries' environment).

    Raises InvalidParameterValue for a missing `package_name` or `entry_point`, both `parameters` and
    `named_parameters`, or parameters that are not strings.
    """
    package = _name(task.get("package_name"), "package_name")
    entry_point = _name(task.get("entry_point"), "entry_point")
    if task.get("parameters") and task.get("named_parameters"):
        raise InvalidParameterValue(f"{_FIELD}: give either parameters or named_parameters, not both")
    if python_named_params is not None:
        named = string_map(python_named_params, "python_named_params")
        positional: list[str] = []
    elif python_params is not None:
        named = {}
        positional = string_list(python_params, "python_params")
    else:
        named = string_map(task.get("named_parameters") or {}, f"{_FIELD}.named_parameters")
        positional = string_list(task.get("parameters") or [], f"{_FIELD}.parameters")
    if job_parameters:
        named.update(string_map(job_parameters, "job_parameters"))
    args = [*positional, *(f"--{k}={v}" for k, v in named.items())]
    argv = [python, "-u", "-P", "-m", RUNNER_MODULE, package, entry_point, *args]
    return Command(argv=argv, cwd=workspace.absolute())


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterValue(f"{_FIELD}.{field} is required")
    if "\0" in value or value.strip() != value:
        raise InvalidParameterValue(f"{_FIELD}.{field}: {value!r} is not a valid name")
    return value
