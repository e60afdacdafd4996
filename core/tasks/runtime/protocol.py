"""The files a task process shares with Floe, in its private task folder (`FLOE_TASK_DIR`).

The layout is described in `core.tasks.runtime`'s docstring; this module holds the names and the two
primitives both sides use. Every write is atomic (a temporary sibling file, then `os.replace`), so a reader
sees the previous content or the new one, never a torn file. The executor's side (`write_inputs`,
`read_outputs`) is in `core.tasks.runtime.host`.

Task processes import this module at start-up, so it imports only `os`, `json` and `itertools` (no
`pathlib`, `dataclasses`, `typing`): paths are `str | os.PathLike`.
"""

from __future__ import annotations

import itertools
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "ERROR_FILE",
    "EXECUTED_NOTEBOOK_FILE",
    "EXIT_FILE",
    "PARAMS_FILE",
    "TASK_DIR_ENV",
    "UPSTREAM_VALUES_FILE",
    "VALUES_FILE",
    "read_json",
    "task_dir_from_env",
    "write_bytes_atomic",
    "write_json_atomic",
]

TASK_DIR_ENV = "FLOE_TASK_DIR"

PARAMS_FILE = "params.json"
UPSTREAM_VALUES_FILE = "upstream_values.json"
VALUES_FILE = "values.json"
EXIT_FILE = "exit.json"
ERROR_FILE = "error.json"
EXECUTED_NOTEBOOK_FILE = "executed.ipynb"

_tmp_counter = itertools.count()


def task_dir_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The task folder named by `FLOE_TASK_DIR`, or None outside a Floe task (unset or empty)."""
    return (os.environ if environ is None else environ).get(TASK_DIR_ENV) or None


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling file and `os.replace`."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{next(_tmp_counter)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: str | os.PathLike[str], value: object) -> None:
    write_bytes_atomic(path, json.dumps(value, ensure_ascii=False).encode("utf-8"))


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """The JSON content of `path`, or `default` when the file does not exist."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return default
