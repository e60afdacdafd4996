"""Run a Python script as a Floe task: `python -u -P -m core.tasks.runtime.bootstrap SCRIPT ARGS...`.

The script runs as `python -u SCRIPT ARGS...` would run it, with `dbutils`, `spark`, `display` and
`displayHTML` added to `builtins` (as Databricks makes them available to a spark_python_task):

- `sys.argv` is `[SCRIPT, *ARGS]` with SCRIPT made absolute (`runpy` sets `argv[0]` to the path it runs;
  Floe always passes an absolute SCRIPT), `__file__` and traceback paths are absolute as under
  `python SCRIPT`, `sys.path[0]` is the script's folder (symlinks resolved), `__name__` is `"__main__"`
  (`runpy.run_path`, so a folder or zip with `__main__.py` works too).
- `dbutils.notebook.exit(value)` (`NotebookExit`) ends the script with exit code 0.
- `SystemExit` is left alone: `sys.exit(n)` exits with `n`.
- Any other uncaught exception goes to `sys.excepthook` with the bootstrap's own frames cut off, so
  stderr shows the traceback Python would print, and the exit code is 1.

`-P` keeps the working directory off `sys.path` while this module is found, so a `core` package in the
workspace cannot shadow Floe's. Start-up cost over plain `python -u SCRIPT`: this module, the runtime
package (no pyspark, no IPython) and `runpy`.
"""

from __future__ import annotations

import builtins
import os
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["main", "python_bootstrap_argv"]

_MODULE = "core.tasks.runtime.bootstrap"


def python_bootstrap_argv(python: str, script: Path, args: list[str]) -> list[str]:
    """The argv that runs `script` with `args` under this bootstrap, with `python` unbuffered."""
    return [python, "-u", "-P", "-m", _MODULE, str(script), *args]


def _script_frames(tb: TracebackType | None, script: str) -> TracebackType | None:
    """`tb` from the first frame of the script itself (dropping bootstrap and runpy frames)."""
    current = tb
    while current is not None:
        if current.tb_frame.f_code.co_filename == script:
            return current
        current = current.tb_next
    return tb


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(f"usage: python -m {_MODULE} SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script, *script_args = args
    if not os.path.exists(script):
        print(f"{sys.executable}: can't open file {script!r}: No such file or directory", file=sys.stderr)
        return 2

    import runpy

    from core.tasks.runtime import NotebookExit, dbutils, display, displayHTML, spark
    from core.tasks.runtime.spark import start_on_cluster

    builtins.dbutils = dbutils  # type: ignore[attr-defined]
    builtins.spark = spark  # type: ignore[attr-defined]
    start_on_cluster(spark)
    builtins.display = display  # type: ignore[attr-defined]
    builtins.displayHTML = displayHTML  # type: ignore[attr-defined]

    path = os.path.abspath(script)  # Python gives the main script an absolute __file__ (and traceback path)
    sys.argv = [path, *script_args]
    folder = os.path.dirname(os.path.realpath(script))
    if sys.flags.safe_path:
        sys.path.insert(0, folder)  # what `python SCRIPT` would have put first
    else:
        sys.path[0] = folder  # `-m` put the working directory there
    try:
        runpy.run_path(path, run_name="__main__")
    except NotebookExit:
        return 0
    except SystemExit:
        raise
    except Exception as exc:
        tb = _script_frames(exc.__traceback__, path)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
