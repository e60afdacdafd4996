"""What the notebook runner installs in the IPython kernel before the first cell (never saved).

`install(shell)` puts `dbutils`, `spark` (lazy), `display` and `displayHTML` into the user namespace and
registers the `%%sql` cell magic that SQL cells of Databricks source notebooks are turned into.

`die_with_parent()` makes the kernel end as soon as the runner does. jupyter_client starts a kernel in a
session of its own, out of reach of the signals Floe sends to the task's process group; without this,
a SIGKILLed runner leaves the kernel running until ipykernel's parent poller notices (a second or two).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from core.tasks.runtime import dbutils, display, displayHTML, spark
from core.tasks.runtime.spark import start_on_cluster
from core.tasks.runtime.sql import run_sql

__all__ = ["install"]


def _sql_magic(line: str, cell: str) -> None:
    """`%%sql`: run the cell's statements with spark.sql and display the last result."""
    result = run_sql(spark, cell)
    if result is not None:
        display(result)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG); no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)


def install(shell: Any) -> None:
    shell.user_ns.update(dbutils=dbutils, spark=spark, display=display, displayHTML=displayHTML)
    start_on_cluster(spark)
    shell.register_magic_function(_sql_magic, magic_kind="cell", magic_name="sql")
