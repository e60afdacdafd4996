"""Spark tasks on a shared job cluster, against one spark-submit per task (Airflow's SparkSubmitOperator).

N small Spark tasks, each a Python script that builds `SparkSession.builder.getOrCreate()`, sums
`spark.range(100_000)` and prints the result, are run two ways:

- Floe: ONE run of a chain of N `spark_python_task`s on ONE job cluster (`job_clusters` +
  `job_cluster_key`). Floe starts the cluster (a Spark Connect server) for the run, sets `SPARK_REMOTE`
  in every task, and terminates the cluster when the run ends. Measured from the run-now call to the
  run's end_time, cluster start included. A real host (queue workers and tick loop) runs in this process
  on SQLite in a temporary folder.
- spark-submit: the same N scripts, each run by `<pyspark>/bin/spark-submit --master local[2] script.py`,
  one after another (a JVM and a Spark context per task).

Target: the shared cluster at least 3x faster for N=10. Afterwards no Spark process of the benchmark
is left running (checked; the benchmark fails otherwise).

Usage: `.venv/bin/python -m bench.spark_tasks [--tasks 10] [--write]` (--write updates docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.clusters import job_cluster_id
from core.compute.local_spark import pyspark_home
from core.engine.states import Result
from core.model import validate_job_settings, validate_run_now
from core.runtime.host import LocalHost
from core.settings import Settings
from tests.fixtures.processes import processes_naming

TITLE = "Spark tasks on a shared job cluster"
CORES = 2  # local[2] for spark-submit, and as many worker threads for the job cluster

SCRIPT = """\
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
print("sum", spark.range(100_000).selectExpr("sum(id)").collect()[0][0])
"""
EXPECTED = f"sum {sum(range(100_000))}"


def _job(n: int) -> dict[str, Any]:
    def task(i: int) -> dict[str, Any]:
        return {
            "task_key": f"t{i}",
            "job_cluster_key": "shared",
            "spark_python_task": {"python_file": f"task_{i}.py"},
            "depends_on": [{"task_key": f"t{i - 1}"}] if i else [],
        }

    return {
        "name": f"spark-chain-{n}",
        "job_clusters": [
            {
                "job_cluster_key": "shared",
                "new_cluster": {
                    "spark_version": "15.4.x-scala2.12",
                    "num_workers": CORES,
                    "spark_conf": {"spark.sql.shuffle.partitions": "2"},
                },
            }
        ],
        "tasks": [task(i) for i in range(n)],
    }


def run_floe(n: int, root: Path, workspace: Path) -> tuple[float, str]:
    """Wall time of one run of the chain, from run-now to the run's end; and its cluster id."""
    settings = Settings(home=root / "home", workspace=workspace, workers=2, tick_seconds=1.0)
    host = LocalHost(settings)
    host.start()
    floe = host.floe
    try:
        job_id = floe.create_job(validate_job_settings(_job(n)), creator="bench")
        started = time.time()
        run = floe.run_now(validate_run_now({"job_id": job_id}), creator="bench")
        deadline = time.monotonic() + 600
        while True:
            view = floe.get_run(run.run_id)
            if view.run.is_final:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the run did not end in time: {view.run.life_cycle}")
            time.sleep(0.05)
        if view.run.result is not Result.SUCCESS:
            raise RuntimeError(f"the run ended {view.run.result}: {[t.state_message for t in view.tasks]}")
        wall = view.run.end_time / 1000 - started
        for task in view.tasks:
            logs = (floe.get_run_output(task.run_id).logs or "").strip()
            if EXPECTED not in logs:
                raise RuntimeError(f"task {task.task_key} printed {logs!r}")
        cluster_id = job_cluster_id(run.run_id, "shared")
        if {t.cluster_id for t in view.tasks} != {cluster_id}:
            raise RuntimeError("the tasks did not all run on the one job cluster")
    finally:
        host.stop()
    return wall, cluster_id


def run_spark_submit(n: int, workspace: Path) -> float:
    """Wall time of the N scripts, each by its own spark-submit, one after another."""
    home = pyspark_home()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE", "MASTER")
    }
    env.update(SPARK_HOME=str(home), PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    started = time.time()
    for i in range(n):
        argv = [
            str(home / "bin" / "spark-submit"),
            "--master",
            f"local[{CORES}]",
            "--name",
            f"bench-spark-submit-{i}",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.sql.shuffle.partitions=2",
            str(workspace / f"task_{i}.py"),
        ]
        done = subprocess.run(argv, env=env, cwd=workspace, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or EXPECTED not in done.stdout:
            raise RuntimeError(f"spark-submit of task {i} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.time() - started


def measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = root / "ws"
        workspace.mkdir()
        for i in range(n):
            (workspace / f"task_{i}.py").write_text(SCRIPT)
        floe_s, cluster_id = run_floe(n, root, workspace)
        direct_s = run_spark_submit(n, workspace)
        left = processes_naming({cluster_id, "bench-spark-submit-", str(workspace)})
        if left:
            raise RuntimeError(f"Spark processes left running: {left}")
    return {"floe_s": floe_s, "direct_s": direct_s, "ratio": direct_s / floe_s}


def report(r: dict[str, float], n: int) -> str:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    verdict = "met" if r["ratio"] >= 3 else "NOT met"
    return "\n".join(
        [
            f"## {TITLE} — {datetime.now(UTC):%Y-%m-%d}",
            "",
            f"`python -m bench.spark_tasks --write` on {machine}. {n} small Spark tasks (each",
            "builds `SparkSession.builder.getOrCreate()` and sums `spark.range(100_000)`): Floe runs them as",
            f"one run of a chain of {n} `spark_python_task`s on one job cluster (Spark Connect,",
            f"local[{CORES}]), cluster start and stop included; the baseline runs each script with its own",
            f"`spark-submit --master local[{CORES}]`, one after another (Airflow's SparkSubmitOperator).",
            "",
            "| measure | result | target |",
            "|---|---|---|",
            f"| Floe, one run on a shared job cluster (run-now → run end) | {r['floe_s']:.1f} s | |",
            f"| spark-submit per task, sequential | {r['direct_s']:.1f} s | |",
            f"| per task: Floe / spark-submit | {r['floe_s'] / n:.2f} s / {r['direct_s'] / n:.2f} s | |",
            f"| speed-up of the shared cluster | {r['ratio']:.1f}x ({verdict}) | ≥ 3x |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    text = report(measure(args.tasks), args.tasks)
    print(text)
    if args.write:
        from bench import write_section

        write_section(TITLE, text)


if __name__ == "__main__":
    main()
