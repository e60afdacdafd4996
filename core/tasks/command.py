"""What the task-type modules hand to the executor: a `Command`, plus the helpers they share.

A task-type module (`wheel`, `jar`, `spark_submit`, `sql`) turns a task's resolved settings into a
`Command`; the executor runs it as a child process with the task environment
(`python_script.task_environment`, `FLOE_TASK_DIR`, `PYTHONPATH`) adjusted by `Command.environment`.

`locate_file` finds a file named in a task's settings (a library, a SQL file, a spark-submit application)
with the rules of `core.tasks.paths`, the same as for `spark_python_task.python_file`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidParameterValue
from core.tasks import paths

__all__ = ["Command", "locate_file", "spark_submit_executable", "string_list", "string_map"]


@dataclass(frozen=True, slots=True)
class Command:
    """A task process: `argv` run in `cwd`.

    env: entries added to (or replacing) the task environment.
    unset: names removed from the task environment before `env` is applied (e.g. `SPARK_REMOTE` for
        spark-submit, which refuses a master together with a remote).
    """

    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    unset: frozenset[str] = frozenset()

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` without the `unset` names, with `env` applied on top."""
        merged = {k: v for k, v in base.items() if k not in self.unset}
        merged.update(self.env)
        return merged


def locate_file(value: object, *, field: str, workspace: Path) -> Path:
    """The file `value` names, by the rules of `core.tasks.paths` (those of `spark_python_task`)."""
    return paths.locate_file(value, field=field, what="file", workspace=workspace)


def string_list(values: object, field: str) -> list[str]:
    """`values` as a list of argv-safe strings; InvalidParameterValue naming `field` otherwise."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidParameterValue(f"{field}: must be a list of strings, not {type(values).__name__}")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise InvalidParameterValue(f"{field}[{i}]: {v!r} is not a string")
        if "\0" in v:
            raise InvalidParameterValue(f"{field}[{i}]: {v!r} holds a NUL character; argv cannot")
    return list(values)


def string_map(values: object, field: str) -> dict[str, str]:
    """`values` as a `{str: str}` dict of argv-safe strings; InvalidParameterValue naming `field` else."""
    if not isinstance(values, Mapping):
        raise InvalidParameterValue(f"{field}: must be an object of strings, not {type(values).__name__}")
    out: dict[str, str] = {}
    for k, v in values.items():
        if not isinstance(k, str) or not k:
            raise InvalidParameterValue(f"{field}: {k!r} is not a valid name")
        if not isinstance(v, str):
            raise InvalidParameterValue(f"{field}.{k}: {v!r} is not a string")
        if "\0" in k or "\0" in v:
            raise InvalidParameterValue(f"{field}.{k}: holds a NUL character; argv cannot")
        out[k] = v
    return out


def spark_submit_executable(environ: Mapping[str, str] | None = None) -> str:
    """`$SPARK_HOME/bin/spark-submit` when `SPARK_HOME` is set, else the one shipped in the pyspark package
    of this interpreter (found without importing pyspark)."""
    spark_home = (os.environ if environ is None else environ).get("SPARK_HOME")
    if spark_home:
        return str(Path(spark_home) / "bin" / "spark-submit")
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidParameterValue("spark-submit is not available on this host: pyspark is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "bin" / "spark-submit")
