"""`dbutils` as a Floe task sees it: widgets, task values, notebook exit.

Semantics follow Databricks (see `core.tasks.runtime` for the files behind them):

- `widgets.get(name)`: the value the run passed (a notebook parameter), else the default the notebook
  declared with `widgets.text/dropdown/combobox/multiselect`, else `InputWidgetNotDefined`.
- `jobs.taskValues.set(key, value)`: the value must be JSON (no NaN/Infinity) of at most 48 KiB (UTF-8,
  compact separators); `ValueError` otherwise, naming the key. Every call rewrites `values.json`.
- `jobs.taskValues.get(taskKey, key, default=None, debugValue=None)`: inside a task, an unknown task is a
  `ValueError`, an unknown key returns `default` or is a `ValueError` when `default` is None. Outside a
  Floe task (no `FLOE_TASK_DIR`) it returns `debugValue`, and raises `TypeError` when that is None.
- `notebook.exit(value)`: writes `exit.json` with `str(value)` and raises `NotebookExit`, a
  `BaseException` (so `except Exception:` in user code does not swallow it) that runners treat as success.

Not available (any use raises NotImplementedError naming the feature): `dbutils.fs`, `dbutils.secrets`,
`dbutils.library`, `dbutils.notebook.run`.
"""

from __future__ import annotations

import json
import os
import threading

from core.tasks.runtime.protocol import (
    EXIT_FILE,
    PARAMS_FILE,
    UPSTREAM_VALUES_FILE,
    VALUES_FILE,
    read_json,
    task_dir_from_env,
    write_json_atomic,
)

TYPE_CHECKING = False  # `typing` and `pathlib` are not imported at run time: task start-up cost
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    PathArg = str | os.PathLike[str] | None

__all__ = ["TASK_VALUE_MAX_BYTES", "DBUtils", "InputWidgetNotDefined", "NotebookExit"]

TASK_VALUE_MAX_BYTES = 48 * 1024

_FROM_ENV: Any = object()


class NotebookExit(BaseException):
    """Raised by `dbutils.notebook.exit(value)` to stop the notebook or script; the task succeeds.

    A BaseException, like SystemExit, so that user code's `except Exception:` lets it through.
    """

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


class InputWidgetNotDefined(KeyError):
    """`dbutils.widgets.get` of a widget that was neither passed by the run nor declared."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(repr(k) for k in sorted(known)) or "none"
        super().__init__(f"No input widget named {name!r} is defined (widgets defined: {listed})")
        self.name = name

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class _TaskContext:
    """The task folder and its inputs, read once on first use."""

    def __init__(self, task_dir: PathArg) -> None:
        self._given = task_dir
        self._lock = threading.Lock()
        self._loaded = False
        self.dir: str | None = None
        self.params: dict[str, Any] = {}
        self._upstream: dict[str, dict[str, Any]] | None = None

    def load(self) -> _TaskContext:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    given = task_dir_from_env() if self._given is _FROM_ENV else self._given
                    self.dir = None if given is None else os.fspath(given)
                    if self.dir is not None:
                        self.params = read_json(self.path(PARAMS_FILE), {}) or {}
                    self._loaded = True
        return self

    def path(self, name: str) -> str:
        assert self.dir is not None
        return os.path.join(self.dir, name)

    def upstream(self) -> dict[str, dict[str, Any]]:
        if self._upstream is None:
            self._upstream = read_json(self.path(UPSTREAM_VALUES_FILE), {}) or {}
        return self._upstream


class Widgets:
    """`dbutils.widgets`: notebook parameters, with the defaults the notebook declares."""

    def __init__(self, ctx: _TaskContext) -> None:
        self._ctx = ctx
        self._defaults: dict[str, str] = {}

    def _passed(self) -> dict[str, str]:
        widgets = self._ctx.load().params.get("widgets") or {}
        return {str(k): v if isinstance(v, str) else str(v) for k, v in widgets.items()}

    def get(self, name: str) -> str:
        """The widget's value: passed by the run, else its declared default; InputWidgetNotDefined else."""
        passed = self._passed()
        if name in passed:
            return passed[name]
        if name in self._defaults:
            return self._defaults[name]
        raise InputWidgetNotDefined(name, [*passed, *self._defaults])

    def getArgument(self, name: str, defaultValue: str | None = None) -> str | None:
        """Deprecated Databricks alias of `get` that returns `defaultValue` for an unknown widget."""
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return defaultValue

    def getAll(self) -> dict[str, str]:
        """Every widget's current value: declared defaults overridden by what the run passed."""
        return {**self._defaults, **self._passed()}

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:
        self._declare(name, defaultValue)

    def dropdown(
        self,
        name: str,
        defaultValue: str,
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        if defaultValue not in choices:
            raise ValueError(f"widget {name!r}: default value {defaultValue!r} is not one of {list(choices)}")
        self._declare(name, defaultValue)

    def combobox(
        self,
        name: str,
        defaultValue: str,
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        self._declare(name, defaultValue)

    def multiselect(
        self,
        name: str,
        defaultValue: str,
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        for value in defaultValue.split(","):
            if value not in choices:
                raise ValueError(f"widget {name!r}: default value {value!r} is not one of {list(choices)}")
        self._declare(name, defaultValue)

    def remove(self, name: str) -> None:
        self._defaults.pop(name, None)

    def removeAll(self) -> None:
        self._defaults.clear()

    def _declare(self, name: str, default: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"widget name must be a non-empty string, not {name!r}")
        self._defaults[name] = default if isinstance(default, str) else str(default)


class TaskValues:
    """`dbutils.jobs.taskValues`: small JSON values passed from a task to the tasks after it."""

    def __init__(self, ctx: _TaskContext) -> None:
        self._ctx = ctx
        self._values: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def set(self, key: str, value: Any) -> None:
        """Record `value` under `key` for later tasks of the run (see the module docstring for limits)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"task value key must be a non-empty string, not {key!r}")
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"task value {key!r} cannot be stored: it is not JSON ({exc})") from exc
        size = len(text.encode("utf-8"))
        if size > TASK_VALUE_MAX_BYTES:
            raise ValueError(
                f"task value {key!r} is {size} bytes of JSON; "
                f"the limit is {TASK_VALUE_MAX_BYTES} bytes (48 KiB)"
            )
        ctx = self._ctx.load()
        with self._lock:
            if self._values is None:
                self._values = read_json(ctx.path(VALUES_FILE), {}) if ctx.dir is not None else {}
            self._values[key] = json.loads(text)
            if ctx.dir is not None:
                write_json_atomic(ctx.path(VALUES_FILE), self._values)

    def get(
        self,
        taskKey: str,
        key: str,
        default: Any = None,
        debugValue: Any = None,
    ) -> Any:
        """The value `key` set by task `taskKey` of this run (see the module docstring for the rules)."""
        ctx = self._ctx.load()
        if ctx.dir is None:
            if debugValue is None:
                raise TypeError(
                    "taskValues.get outside a job run returns debugValue, which must not be None "
                    f"(taskKey={taskKey!r}, key={key!r})"
                )
            return debugValue
        upstream = ctx.upstream()
        if taskKey not in upstream:
            known = ", ".join(repr(k) for k in sorted(upstream)) or "none"
            raise ValueError(
                f"task {taskKey!r} is not a task of this run that has finished (finished tasks: {known})"
            )
        values = upstream[taskKey] or {}
        if key in values:
            return values[key]
        if default is not None:
            return default
        raise ValueError(f"task {taskKey!r} set no value {key!r} and no default was given")


class Jobs:
    def __init__(self, ctx: _TaskContext) -> None:
        self.taskValues = TaskValues(ctx)


class Notebook:
    def __init__(self, ctx: _TaskContext) -> None:
        self._ctx = ctx

    def exit(self, value: object) -> None:
        """End the notebook (or script) with result `str(value)`: write exit.json, raise NotebookExit."""
        result = str(value)
        ctx = self._ctx.load()
        if ctx.dir is not None:
            write_json_atomic(ctx.path(EXIT_FILE), {"result": result})
        raise NotebookExit(result)

    def run(self, path: str, timeout_seconds: int = 0, arguments: object = None) -> str:
        raise NotImplementedError(
            f"dbutils.notebook.run({path!r}) is not supported by Floe; use a notebook task instead"
        )


class _Unsupported:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise NotImplementedError(f"dbutils.{self._name}.{attr} is not supported by Floe")

    def __repr__(self) -> str:
        return f"<dbutils.{self._name}: not supported by Floe>"


class DBUtils:
    """The `dbutils` object of a task.

    `task_dir` defaults to `FLOE_TASK_DIR`, read on first use; None means "outside a Floe task".
    """

    def __init__(self, task_dir: PathArg = _FROM_ENV) -> None:
        ctx = _TaskContext(task_dir)
        self.widgets = Widgets(ctx)
        self.jobs = Jobs(ctx)
        self.notebook = Notebook(ctx)
        self.fs = _Unsupported("fs")
        self.secrets = _Unsupported("secrets")
        self.library = _Unsupported("library")

    def __repr__(self) -> str:
        return "<dbutils (Floe): widgets, jobs.taskValues, notebook.exit>"
