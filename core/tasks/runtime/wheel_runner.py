"""Run a wheel's entry point as a Floe task: `python -u -P -m core.tasks.runtime.wheel_runner PACKAGE
ENTRY_POINT ARGS...`, in the interpreter of the environment the wheel was installed into.

Which function runs (the first rule that applies):

1. an entry point named ENTRY_POINT of the installed distribution PACKAGE (name compared as pip does:
   case, `-`, `_` and `.` do not matter), looked for in `console_scripts`, then `gui_scripts`, then any
   other group;
2. as Databricks does when the metadata has no such entry point: the attribute ENTRY_POINT of the module
   PACKAGE (with `-` read as `_`), i.e. `package_name.entry_point()`.

When neither exists, the runner prints `EntryPointNotFound: ...` (listing the entry points the
distribution has) on stderr, writes it to `error.json` in the task folder, and exits with 1.

The function is called as a console script would call it: `sys.argv` is `[ENTRY_POINT, *ARGS]`, no
arguments are passed, and its return value is the exit status (`sys.exit(func())`: None is 0, an int is
that code, anything else is printed to stderr with exit code 1). `dbutils`, `spark`, `display` and
`displayHTML` are added to `builtins` as for a Python script (`core.tasks.runtime.bootstrap`);
`dbutils.notebook.exit` ends the task with 0. An uncaught exception prints its traceback (without the
runner's frame) and exits with 1.
"""

from __future__ import annotations

import builtins
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["EntryPointNotFound", "main", "resolve"]

_MODULE = "core.tasks.runtime.wheel_runner"
_GROUP_ORDER = ("console_scripts", "gui_scripts")


class EntryPointNotFound(LookupError):
    pass


def resolve(package: str, entry_point: str) -> Callable[[], Any]:
    """The function the task runs (rules in the module docstring); EntryPointNotFound when there is none."""
    from importlib import metadata

    known: list[str] = []
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        matches = [ep for ep in dist.entry_points if ep.name == entry_point]
        if matches:
            rank = {group: i for i, group in enumerate(_GROUP_ORDER)}
            best = min(matches, key=lambda ep: rank.get(ep.group, len(rank)))
            return best.load()
        known = sorted({f"{ep.group}:{ep.name}" for ep in dist.entry_points})

    import importlib

    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the package exists but one of its own imports is missing: show that
        module = None
    func = getattr(module, entry_point, None) if module is not None else None
    if callable(func):
        return func
    if dist is None:
        where = f"no distribution named {package!r} is installed"
    else:
        listed = ", ".join(known) if known else "none"
        where = (
            f"distribution {dist.metadata['Name']} {dist.version} has no entry point {entry_point!r} "
            f"(it has: {listed})"
        )
    fallback = f"and module {module_name!r} has no function {entry_point!r}"
    if module is None:
        fallback = f"and there is no module {module_name!r}"
    raise EntryPointNotFound(f"{where}, {fallback}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(f"usage: python -m {_MODULE} PACKAGE ENTRY_POINT [ARGS...]", file=sys.stderr)
        return 2
    package, entry_point, *entry_args = args

    from core.tasks.runtime import NotebookExit, dbutils, display, displayHTML, spark
    from core.tasks.runtime.spark import start_on_cluster

    builtins.dbutils = dbutils  # type: ignore[attr-defined]
    builtins.spark = spark  # type: ignore[attr-defined]
    start_on_cluster(spark)
    builtins.display = display  # type: ignore[attr-defined]
    builtins.displayHTML = displayHTML  # type: ignore[attr-defined]

    try:
        func = resolve(package, entry_point)
    except EntryPointNotFound as exc:
        message = f"EntryPointNotFound: {exc}"
        print(message, file=sys.stderr)
        _write_error(message)
        return 1
    except Exception as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return 1

    sys.argv = [entry_point, *entry_args]
    try:
        result = func()
    except NotebookExit:
        return 0
    except SystemExit:
        raise
    except Exception as exc:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return 1
    raise SystemExit(result)


def _write_error(message: str) -> None:
    from core.tasks.runtime.protocol import ERROR_FILE, task_dir_from_env, write_json_atomic

    folder = task_dir_from_env()
    if folder is not None and os.path.isdir(folder):
        write_json_atomic(
            os.path.join(folder, ERROR_FILE), {"error": message, "error_trace": None, "cell": None}
        )


if __name__ == "__main__":
    sys.exit(main())
