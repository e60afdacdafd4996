"""`sql_task`: run the statements of a SQL file with Spark, keeping the last statement's rows as output.

The task is `{"warehouse_id": str, "file": {"path": str, "source"?: "WORKSPACE" | "GIT"} | "query":
{...} | "alert": {...} | "dashboard": {...}, "parameters": {name: str}}`, resolved by the caller.

- `file.path` is located like `spark_python_task.python_file` (`core.tasks.command.locate_file`); with
  `source: GIT` it must be relative and the caller passes the git checkout as the workspace.
- `query` names a saved Databricks SQL query (`query_id`); Floe has no saved queries, so that is an
  InvalidParameterValue. Floe extension: `query: {"query_text": "SELECT ..."}` runs the text inline (at
  most 100,000 bytes, as it travels in argv).
- `alert` and `dashboard` are not supported.
- `warehouse_id` is accepted and ignored: statements run on the task's Spark (the cluster's Spark
  Connect server when `SPARK_REMOTE` is set, else a local session).
- `parameters`, then job parameters (a job parameter beats a task parameter of the same name), then the
  legacy run-now `sql_params`, become `:name` markers (`spark.sql(text, args=...)`, string values).

The process is `python -u -P -m core.tasks.runtime.sql_runner [--param NAME=VALUE]... (FILE | --query
TEXT)`; see that module for what it writes (`sql_output.json`, `error.json`) and its exit codes.
`read_sql_output` reads the result back on the executor's side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import InvalidParameterValue
from core.tasks.command import Command, locate_file, string_map
from core.tasks.runtime.protocol import read_json
from core.tasks.runtime.sql_runner import SQL_OUTPUT_FILE

__all__ = ["MAX_QUERY_TEXT_BYTES", "RUNNER_MODULE", "SQL_OUTPUT_FILE", "build_sql_command", "read_sql_output"]

RUNNER_MODULE = "core.tasks.runtime.sql_runner"
MAX_QUERY_TEXT_BYTES = 100_000
_FIELD = "sql_task"
_KINDS = ("file", "query", "alert", "dashboard")
_SOURCES = ("WORKSPACE", "GIT")
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def build_sql_command(
    task: Mapping[str, Any],
    *,
    python: str,
    workspace: Path,
    job_parameters: Mapping[str, str] | None = None,
    sql_params: Mapping[str, str] | None = None,
) -> Command:
    """The command for a resolved `sql_task` dict (rules in the module docstring).

    Raises InvalidParameterValue when the task has none or several of file/query/alert/dashboard, uses
    a saved query, an alert or a dashboard, names a file that cannot be found, or has parameters that are
    not `{name: string}` with names usable as `:name` markers.
    """
    kinds = [k for k in _KINDS if task.get(k) is not None]
    if len(kinds) != 1:
        raise InvalidParameterValue(
            f"{_FIELD}: give exactly one of {', '.join(_KINDS)}"
            + (f", not {' and '.join(kinds)}" if kinds else "")
        )
    kind = kinds[0]
    spec = task[kind]
    if not isinstance(spec, Mapping):
        raise InvalidParameterValue(f"{_FIELD}.{kind}: must be an object, not {type(spec).__name__}")
    if kind in ("alert", "dashboard"):
        raise InvalidParameterValue(f"{_FIELD}.{kind}: SQL {kind}s are not supported; use file")
    source = _query_text(spec) if kind == "query" else [str(_sql_file(spec, workspace))]

    params = string_map(task.get("parameters") or {}, f"{_FIELD}.parameters")
    params.update(string_map(job_parameters or {}, "job_parameters"))
    if sql_params is not None:
        params.update(string_map(sql_params, "sql_params"))
    args: list[str] = []
    for name, value in params.items():
        if not _MARKER_NAME.match(name):
            raise InvalidParameterValue(
                f"{_FIELD}.parameters: {name!r} cannot be a :name marker (letters, digits and _ only)"
            )
        args += ["--param", f"{name}={value}"]
    argv = [python, "-u", "-P", "-m", RUNNER_MODULE, *args, *source]
    return Command(argv=argv, cwd=workspace.absolute())


def read_sql_output(task_dir: Path) -> dict[str, Any] | None:
    """The `sql_output.json` a successful SQL task left (`{"columns", "rows", "truncated"}`), else None."""
    doc = read_json(task_dir / SQL_OUTPUT_FILE)
    return doc if isinstance(doc, dict) else None


def _query_text(spec: Mapping[str, Any]) -> list[str]:
    if spec.get("query_id") is not None:
        raise InvalidParameterValue(
            f"{_FIELD}.query.query_id: saved queries are not supported; use file "
            "(or the Floe extension query.query_text)"
        )
    text = spec.get("query_text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameterValue(f"{_FIELD}.query: query_id is required")
    if "\0" in text:
        raise InvalidParameterValue(f"{_FIELD}.query.query_text holds a NUL character")
    size = len(text.encode("utf-8"))
    if size > MAX_QUERY_TEXT_BYTES:
        raise InvalidParameterValue(
            f"{_FIELD}.query.query_text: {size} bytes is over the limit of {MAX_QUERY_TEXT_BYTES}; use file"
        )
    return ["--query", text]


def _sql_file(spec: Mapping[str, Any], workspace: Path) -> Path:
    source = spec.get("source") or "WORKSPACE"
    if source not in _SOURCES:
        raise InvalidParameterValue(
            f"{_FIELD}.file.source: {source!r} is not supported; use one of {', '.join(_SOURCES)}"
        )
    path = spec.get("path")
    if source == "GIT" and isinstance(path, str) and path.startswith("/"):
        raise InvalidParameterValue(
            f"{_FIELD}.file.path: {path!r} must be relative to the repository root when source is GIT"
        )
    return locate_file(path, field=f"{_FIELD}.file.path", workspace=workspace)
