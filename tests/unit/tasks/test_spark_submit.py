"""spark_submit_task: the argument list checks, and a PySpark application run through spark-submit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.command import Command
from core.tasks.spark_submit import build_spark_submit_command
from tests.fixtures.services import service_missing

DATA = Path(__file__).parent / "data"
SUBMIT = "/spark/bin/spark-submit"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "Users" / "me").mkdir(parents=True)
    (ws / "Users" / "me" / "app.py").write_text("")
    (ws / "jobs").mkdir()
    (ws / "jobs" / "etl.jar").write_bytes(b"")
    return ws


def command(workspace: Path, parameters: object, **kwargs: object) -> Command:
    return build_spark_submit_command(
        {"parameters": parameters},
        workspace=workspace,
        master=kwargs.pop("master", None),  # type: ignore[arg-type]
        spark_submit=SUBMIT,
        **kwargs,  # type: ignore[arg-type]
    )


def test_parameters_follow_master_and_conf(workspace: Path) -> None:
    cmd = command(
        workspace,
        [
            "--class",
            "com.example.Etl",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "jobs/etl.jar",
            "--master",
            "x",
        ],
        master="spark://10.0.0.4:7077",
        spark_conf={"spark.executor.memory": "2g"},
        python="/envs/e/bin/python",
    )

    assert cmd == Command(
        argv=[
            SUBMIT,
            "--master",
            "spark://10.0.0.4:7077",
            "--conf",
            "spark.executor.memory=2g",
            "--class",
            "com.example.Etl",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            str(workspace / "jobs" / "etl.jar"),
            "--master",  # an argument of the application, not of spark-submit
            "x",
        ],
        cwd=workspace,
        env={"PYSPARK_PYTHON": "/envs/e/bin/python", "PYSPARK_DRIVER_PYTHON": "/envs/e/bin/python"},
        unset=frozenset({"SPARK_REMOTE"}),
    )


def test_the_application_is_located_like_a_python_file(workspace: Path) -> None:
    cmd = command(workspace, ["--verbose", "--py-files=lib.zip", "/Workspace/Users/me/app.py", "1"])
    assert cmd.argv[-4:] == [
        "--verbose",
        "--py-files=lib.zip",
        str(workspace / "Users" / "me" / "app.py"),
        "1",
    ]
    assert cmd.argv[1:5] == ["--master", "local[*]", "--conf", "spark.ui.enabled=false"]


def test_run_now_spark_submit_params_replace_parameters(workspace: Path) -> None:
    cmd = build_spark_submit_command(
        {"parameters": ["missing.py"]},
        workspace=workspace,
        master="local[1]",
        spark_submit_params=["jobs/etl.jar", "new"],
        spark_submit=SUBMIT,
    )
    assert cmd.argv[-2:] == [str(workspace / "jobs" / "etl.jar"), "new"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (["--master", "yarn", "app.py"], r"^spark_submit_task\.parameters\[0\]: --master cannot be set"),
        (
            ["--deploy-mode=cluster", "app.py"],
            r"^spark_submit_task\.parameters\[0\]: --deploy-mode cannot be set",
        ),
        (["--remote", "sc://h", "app.py"], r"^spark_submit_task\.parameters\[0\]: --remote cannot be set"),
        (
            ["--name", "n", "--conf", "spark.master=yarn", "app.py"],
            r"^spark_submit_task\.parameters\[2\]: spark\.master cannot be set",
        ),
        (["--class", "Main"], r"^spark_submit_task\.parameters: no application found"),
        (["--class"], r"^spark_submit_task\.parameters\[0\]: --class needs a value$"),
        (
            ["dbfs:/FileStore/app.py"],
            r"^spark_submit_task\.parameters\[0\]: 'dbfs:/FileStore/app\.py' is not supported; "
            r"use a local path or a path relative to the workspace$",
        ),
        (["nope.py"], r"^spark_submit_task\.parameters\[0\]: 'nope\.py' does not exist on this host"),
        ("app.py", r"^spark_submit_task\.parameters: must be a list of strings, not str$"),
    ],
)
def test_invalid_parameters(workspace: Path, parameters: object, message: str) -> None:
    (workspace / "app.py").write_text("")
    with pytest.raises(InvalidParameterValue, match=message):
        command(workspace, parameters)


@pytest.mark.spark
@pytest.mark.slow
def test_a_pyspark_application_runs_through_spark_submit(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        service_missing("Java")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    shutil.copy(DATA / "submit_app.py", workspace / "app.py")

    cmd = build_spark_submit_command(
        {"parameters": ["--name", "floe-test", "app.py", "7", "--flag"]},
        workspace=workspace,
        master="local[1]",
        python=sys.executable,
    )
    env = cmd.environment({**os.environ, "SPARK_REMOTE": "sc://localhost:1"})
    done = subprocess.run(cmd.argv, cwd=cmd.cwd, env=env, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stderr
    # spark-submit merges the Python driver's stderr (pyspark's own warnings) into stdout.
    lines = [line for line in done.stdout.splitlines() if line.startswith(("master", "count", "args"))]
    assert lines == ["master local[1]", "count 7", "args ['--flag']"]
