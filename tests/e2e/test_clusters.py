"""Job clusters on real Spark: created once for the run, shared by its tasks, gone after it."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta

import pytest
from databricks.sdk.service import jobs

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


def _spark_processes(cluster_ids: set[str]) -> list[int]:
    """Pids of JVMs whose command line names one of the clusters (`--name floe-<id>`)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if any(cid in cmdline for cid in cluster_ids):
            found.append(int(pid))
    return found


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
    cluster = w.clusters.get(cluster_ids.pop())
    assert cluster.state == jobs.compute.State.TERMINATED
    assert not _spark_processes({cluster.cluster_id})


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
    assert w.clusters.get(cluster_id).state == jobs.compute.State.TERMINATED
    assert not _spark_processes({cluster_id})
