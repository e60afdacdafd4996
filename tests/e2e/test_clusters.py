"""Job clusters on real Spark: created once for the run, shared by its tasks, gone after it."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from tests.fixtures.processes import processes_naming
from tests.fixtures.server import FloeServer
from tests.fixtures.services import service_missing

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]

SUM = """
import os, sys
total = spark.range(int(sys.argv[1])).groupBy().sum("id").collect()[0][0]
print("sum", total, "via", os.environ["SPARK_REMOTE"].split(":")[0])
"""


@pytest.fixture(autouse=True)
def _java() -> None:
    if shutil.which("java") is None:
        service_missing("Java")


def _terminated(w: object, cluster_id: str) -> object:
    """The cluster once TERMINATED: a run's job clusters are terminated just after the run ends, as on
    Databricks, so a client may see the run over while its cluster is still TERMINATING."""
    deadline = time.monotonic() + 60
    while (cluster := w.clusters.get(cluster_id)).state != jobs.compute.State.TERMINATED:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"cluster {cluster_id} is still {cluster.state}"
        time.sleep(0.2)
    return cluster


def test_tasks_share_one_job_cluster_that_is_gone_after_the_run(floe_server: FloeServer) -> None:
    floe_server.script("sum.py", SUM)
    w = floe_server.client()
    job = w.jobs.create(
        name="on-a-cluster",
        job_clusters=[
            jobs.JobCluster(
                job_cluster_key="main",
                new_cluster=jobs.compute.ClusterSpec(
                    spark_version="15.4.x-scala2.12",
                    num_workers=1,
                    spark_conf={"spark.sql.shuffle.partitions": "2"},
                ),
            )
        ],
        tasks=[
            jobs.Task(
                task_key="small",
                job_cluster_key="main",
                spark_python_task=jobs.SparkPythonTask("sum.py", parameters=["10"]),
            ),
            jobs.Task(
                task_key="large",
                job_cluster_key="main",
                depends_on=[jobs.TaskDependency("small")],
                spark_python_task=jobs.SparkPythonTask("sum.py", parameters=["100"]),
            ),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=timedelta(seconds=240))
    assert run.state.result_state == jobs.RunResultState.SUCCESS, [t.state.state_message for t in run.tasks]
    by_key = {t.task_key: t for t in run.tasks}
    assert w.jobs.get_run_output(by_key["small"].run_id).logs.strip() == "sum 45 via sc"
    assert w.jobs.get_run_output(by_key["large"].run_id).logs.strip() == "sum 4950 via sc"
    cluster_ids = {t.cluster_instance.cluster_id for t in run.tasks}
    assert len(cluster_ids) == 1  # one cluster for both tasks
    cluster = _terminated(w, cluster_ids.pop())
    assert not processes_naming({cluster.cluster_id})


def test_a_failing_run_leaves_no_spark_behind(floe_server: FloeServer) -> None:
    floe_server.script("boom.py", "spark.range(1).count()\nraise SystemExit(3)\n")
    w = floe_server.client()
    job = w.jobs.create(
        name="failing-on-a-cluster",
        tasks=[
            jobs.Task(
                task_key="boom",
                new_cluster=jobs.compute.ClusterSpec(num_workers=1),
                spark_python_task=jobs.SparkPythonTask("boom.py"),
            )
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=timedelta(seconds=240))
    assert run.state.result_state == jobs.RunResultState.FAILED
    cluster_id = run.tasks[0].cluster_instance.cluster_id
    _terminated(w, cluster_id)
    assert not processes_naming({cluster_id})


NOTEBOOK = """# Databricks notebook source
print("notebook counted", spark.range(5).count())
"""


def test_every_task_type_shares_one_job_cluster(floe_server: FloeServer) -> None:
    import subprocess

    from tests.unit.tasks.wheels import build_wheel

    for tool in ("javac", "jar"):
        if shutil.which(tool) is None:
            service_missing(f"Java ({tool})")
    ws = floe_server.workspace
    floe_server.script("sum.py", SUM)
    floe_server.script("notebooks/count.py", NOTEBOOK)
    floe_server.script("double.sql", "SELECT CAST(:n AS INT) * 2 AS doubled")
    floe_server.script(
        "app.py",
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "print('master', spark.sparkContext.master)\nspark.stop()\n",
    )
    build_wheel(
        ws,
        "floe-demo",
        "1.0",
        {
            "floe_demo/__init__.py": (
                "import sys\n\ndef main():\n    print('wheel', *sys.argv[1:], spark.range(3).count())\n"
            )
        },
        entry_points={"console_scripts": {"demo": "floe_demo:main"}},
    )
    source = Path(__file__).parents[1] / "unit" / "tasks" / "data" / "jar"
    subprocess.run(
        ["javac", "-d", str(ws / "classes"), *map(str, source.rglob("*.java"))], check=True, timeout=120
    )
    subprocess.run(["jar", "cf", str(ws / "app.jar"), "-C", str(ws / "classes"), "."], check=True, timeout=60)

    w = floe_server.client()
    compute = jobs.compute
    on = {"job_cluster_key": "shared"}
    job = w.jobs.create(
        name="all-types",
        job_clusters=[jobs.JobCluster("shared", compute.ClusterSpec(num_workers=1))],
        tasks=[
            jobs.Task(task_key="notebook", notebook_task=jobs.NotebookTask("notebooks/count"), **on),
            jobs.Task(
                task_key="script", spark_python_task=jobs.SparkPythonTask("sum.py", parameters=["10"]), **on
            ),
            jobs.Task(
                task_key="wheel",
                python_wheel_task=jobs.PythonWheelTask(
                    entry_point="demo", package_name="floe-demo", parameters=["hi"]
                ),
                libraries=[compute.Library(whl="floe_demo-1.0-py3-none-any.whl")],
                **on,
            ),
            jobs.Task(
                task_key="jar",
                spark_jar_task=jobs.SparkJarTask(main_class_name="floe.demo.Main", parameters=["a", "b"]),
                libraries=[compute.Library(jar="app.jar")],
                **on,
            ),
            jobs.Task(task_key="submit", spark_submit_task=jobs.SparkSubmitTask(parameters=["app.py"]), **on),
            jobs.Task(
                task_key="sql",
                sql_task=jobs.SqlTask(
                    warehouse_id="local", file=jobs.SqlTaskFile("double.sql"), parameters={"n": "21"}
                ),
                **on,
            ),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=timedelta(seconds=280))
    assert run.state.result_state == jobs.RunResultState.SUCCESS, {
        t.task_key: t.state.state_message for t in run.tasks
    }
    by_key = {t.task_key: t for t in run.tasks}
    assert {t.cluster_instance.cluster_id for t in run.tasks} == {
        by_key["script"].cluster_instance.cluster_id
    }
    logs = {k: (w.jobs.get_run_output(t.run_id).logs or "") for k, t in by_key.items()}
    assert "notebook counted 5" in logs["notebook"]
    assert "sum 45 via sc" in logs["script"]
    assert "wheel hi 3" in logs["wheel"]
    assert "a" in logs["jar"] and "b" in logs["jar"]
    cluster = w.clusters.get(by_key["jar"].cluster_instance.cluster_id)
    assert cluster.spark_conf["floe.cluster.mode"] == "standalone"  # so the JAR is submitted to its master
    assert "master spark://127.0.0.1:" in logs["submit"]  # submitted to the cluster's master
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get-output", query={"run_id": by_key["sql"].run_id})
    assert raw["sql_output"]["rows"] == [[42]]
    cluster_id = by_key["script"].cluster_instance.cluster_id
    _terminated(w, cluster_id)
    assert not processes_naming({cluster_id})


def test_a_run_on_an_existing_cluster_leaves_it_running(floe_server: FloeServer) -> None:
    floe_server.script("sum.py", SUM)
    w = floe_server.client()
    cluster = w.clusters.create(
        cluster_name="shared-team", spark_version="15.4.x-scala2.12", num_workers=1
    ).result(timeout=timedelta(seconds=180))
    try:
        assert cluster.state == jobs.compute.State.RUNNING
        job = w.jobs.create(
            name="on-existing",
            tasks=[
                jobs.Task(
                    task_key="t",
                    existing_cluster_id=cluster.cluster_id,
                    spark_python_task=jobs.SparkPythonTask("sum.py", parameters=["4"]),
                )
            ],
        )
        run = w.jobs.run_now(job.job_id).result(timeout=timedelta(seconds=180))
        assert run.state.result_state == jobs.RunResultState.SUCCESS
        assert run.tasks[0].cluster_instance.cluster_id == cluster.cluster_id
        assert w.jobs.get_run_output(run.tasks[0].run_id).logs.strip() == "sum 6 via sc"
        assert w.clusters.get(cluster.cluster_id).state == jobs.compute.State.RUNNING  # runs never stop it
    finally:
        w.clusters.delete(cluster.cluster_id).result(timeout=timedelta(seconds=120))
    assert not processes_naming({cluster.cluster_id})


UDF = """
import floe_lib
from pyspark.sql.functions import udf

double = udf(lambda x: floe_lib.double(x), "long")
print("doubled", [r[0] for r in spark.range(3).select(double("id")).collect()])
"""


@pytest.mark.parametrize("kind", ["whl", "requirements"])
def test_python_libraries_reach_the_clusters_executors(floe_server: FloeServer, kind: str) -> None:
    from tests.unit.tasks.wheels import build_wheel

    wheel = build_wheel(
        floe_server.workspace,
        "floe-lib",
        "1.0",
        {"floe_lib/__init__.py": "def double(x):\n    return 2 * x\n"},
    )
    (floe_server.workspace / "requirements.txt").write_text(f"{wheel}\n")
    library = {"whl": wheel.name, "requirements": "requirements.txt"}[kind]
    floe_server.script("udf.py", UDF)
    w = floe_server.client()
    job = w.jobs.create(
        name=f"udf-{kind}",
        tasks=[
            jobs.Task(
                task_key="udf",
                new_cluster=jobs.compute.ClusterSpec(num_workers=1),
                libraries=[jobs.compute.Library(**{kind: library})],
                spark_python_task=jobs.SparkPythonTask("udf.py"),
            )
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=timedelta(seconds=240))
    assert run.state.result_state == jobs.RunResultState.SUCCESS, run.tasks[0].state.state_message
    assert "doubled [0, 2, 4]" in w.jobs.get_run_output(run.tasks[0].run_id).logs
