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
    session = builder.getOrCreate()
    if os.environ.get("SPARK_REMOTE") and os.environ.get(PYFILES_ENV):
        _ship_pyfiles(session, os.environ[PYFILES_ENV].split(os.pathsep))
    return session


def start_on_cluster(spark: LazySparkSession) -> None:
    """On Databricks `spark` exists before user code runs, and code relies on it (a `udf(...)` defined at
    the top of a script needs an active session). A task on a cluster therefore connects at start; a task
    without one keeps the lazy local session, created only if it uses Spark."""
    if os.environ.get("SPARK_REMOTE"):
        spark.session  # noqa: B018 - connecting is the point


PYFILES_ENV = "FLOE_PYFILES"  # the task's wheel libraries, for the executors of a remote cluster


def _ship_pyfiles(session: Any, wheels: list[str]) -> None:
    """Make the task's wheel libraries importable by the cluster's Python workers (UDFs), as Databricks
    installs a task's libraries on the whole cluster: each wheel goes to the Spark Connect session as a
    Python file artifact. Spark takes zips, and a pure-Python wheel is one, so it is sent under a .zip name.
    Locally the executors run the task's own interpreter, which has the libraries already."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="floe-pyfiles-")
    for wheel in filter(None, wheels):
        name = os.path.basename(wheel)
        target = os.path.join(folder, (name[: -len(".whl")] if name.endswith(".whl") else name) + ".zip")
        shutil.copyfile(wheel, target)
        session.addArtifacts(target, pyfile=True)


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
