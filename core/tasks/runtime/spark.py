"""`spark`: a SparkSession created on first use, so that a task that never touches Spark never pays for it.

On first attribute access the proxy calls `SparkSession.builder.getOrCreate()`:

- with `SPARK_REMOTE` set (e.g. `sc://host:15002`), pyspark's builder connects to that Spark Connect
  server by itself;
- otherwise a classic local session, master `local[*]`, with the Spark UI off and `PYSPARK_PYTHON`
  defaulting to this interpreter (so Python workers and UDFs see the task's packages).

`isinstance(spark, SparkSession)` is False (it is a proxy); `spark.session` is the real session.
"""

from __future__ import annotations

import os
import sys
import threading

TYPE_CHECKING = False  # no `typing` import at run time: task start-up cost
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LazySparkSession", "create_session"]


def create_session() -> Any:
    """Build (or return the active) SparkSession as described in the module docstring."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if not os.environ.get("SPARK_REMOTE"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        task = os.environ.get("FLOE_TASK_KEY")
        builder = (
            builder.master("local[*]")
            .appName(f"floe-{task}" if task else "floe")
            .config("spark.ui.enabled", "false")
        )
    return builder.getOrCreate()


class LazySparkSession:
    """Forwards every attribute to a SparkSession made by `create_session` on first use."""

    def __init__(self) -> None:
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = create_session()
        return self._session

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy/pickle probes must not start Spark
        return getattr(self.session, name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *dir(self.session)})

    def __repr__(self) -> str:
        if self._session is None:
            return "<SparkSession (Floe): created on first use>"
        return repr(self._session)
