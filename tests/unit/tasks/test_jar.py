"""spark_jar_task: the spark-submit command, and a real JAR run in local mode."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.command import Command, spark_submit_executable
from core.tasks.jar import build_jar_command
from tests.fixtures.services import service_missing

DATA = Path(__file__).parent / "data"
SUBMIT = "/spark/bin/spark-submit"


def command(task: dict[str, object], jars: list[Path], **kwargs: object) -> Command:
    return build_jar_command(task, jars=jars, spark_submit=SUBMIT, **kwargs)  # type: ignore[arg-type]


def test_first_jar_is_the_application_the_others_go_on_the_classpath(tmp_path: Path) -> None:
    a, b, c = (tmp_path / "a.jar", tmp_path / "b.jar", tmp_path / "c.jar")

    cmd = command(
        {"main_class_name": "com.example.Main", "parameters": ["x", "--y=1"]},
        [a, b],
        master="spark://10.0.0.4:7077",
        spark_conf={"spark.executor.memory": "2g", "spark.jars": f"{c},{b}", "spark.master": "yarn"},
        workspace=tmp_path,
    )

    assert cmd == Command(
        argv=[
            SUBMIT,
            "--master",
            "spark://10.0.0.4:7077",
            "--conf",
            "spark.executor.memory=2g",
            "--class",
            "com.example.Main",
            "--jars",
            f"{b},{c}",
            str(a),
            "x",
            "--y=1",
        ],
        cwd=tmp_path,
        unset=frozenset({"SPARK_REMOTE"}),
    )


def test_local_master_by_default_without_ui(tmp_path: Path) -> None:
    cmd = command({"main_class_name": "Main"}, [tmp_path / "a.jar"], master=None, workspace=tmp_path)
    assert cmd.argv == [
        SUBMIT,
        "--master",
        "local[*]",
        "--conf",
        "spark.ui.enabled=false",
        "--class",
        "Main",
        str(tmp_path / "a.jar"),
    ]
    assert cmd.environment({"SPARK_REMOTE": "sc://h:15002", "A": "1"}) == {"A": "1"}


def test_jar_params_replace_parameters_and_maven_rides_in_the_conf(tmp_path: Path) -> None:
    cmd = command(
        {"main_class_name": "Main", "parameters": ["old"]},
        [tmp_path / "a.jar"],
        master="local[2]",
        spark_conf={"spark.jars.packages": "a:b:1"},
        jar_params=["new"],
    )
    assert cmd.argv[3:5] == ["--conf", "spark.jars.packages=a:b:1"]
    assert cmd.argv[-1] == "new"


@pytest.mark.parametrize(
    ("task", "jars", "message"),
    [
        ({}, ["a.jar"], r"^spark_jar_task\.main_class_name is required"),
        (
            {"main_class_name": "com.example.Main()"},
            ["a.jar"],
            r"^spark_jar_task\.main_class_name: 'com\.example\.Main\(\)' is not a Java class name",
        ),
        (
            {"main_class_name": "Main"},
            [],
            r"^spark_jar_task: no JAR to run Main; add the JAR to the task's libraries as \{\"jar\": path\}$",
        ),
        (
            {"main_class_name": "Main", "parameters": [1]},
            ["a.jar"],
            r"^spark_jar_task\.parameters\[0\]: 1 is not a string$",
        ),
    ],
)
def test_invalid_tasks(task: dict[str, object], jars: list[str], message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        command(task, [Path(j) for j in jars], master=None)


def test_spark_submit_comes_with_pyspark() -> None:
    path = Path(spark_submit_executable({}))
    assert path.name == "spark-submit" and path.parent.name == "bin" and path.is_file()
    assert spark_submit_executable({"SPARK_HOME": "/opt/spark"}) == "/opt/spark/bin/spark-submit"


# ------------------------------------------------------------------------------------------------ real JVM


@pytest.fixture(scope="module")
def demo_jars(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(app.jar with floe.demo.Main, helper.jar with the floe.demo.Helper it calls)."""
    if not all(shutil.which(tool) for tool in ("java", "javac", "jar")):
        service_missing("Java (java, javac, jar)")
    out = tmp_path_factory.mktemp("jar")
    classes = out / "classes"
    sources = sorted(str(p) for p in (DATA / "jar").rglob("*.java"))
    subprocess.run(["javac", "-d", str(classes), *sources], check=True, timeout=120)
    app, helper = out / "app.jar", out / "helper.jar"
    subprocess.run(["jar", "cf", str(app), "-C", str(classes), "floe/demo/Main.class"], check=True)
    subprocess.run(["jar", "cf", str(helper), "-C", str(classes), "floe/demo/Helper.class"], check=True)
    return app, helper


def run_jar(
    jars: tuple[Path, Path], tmp_path: Path, parameters: list[str]
) -> subprocess.CompletedProcess[str]:
    cmd = build_jar_command(
        {"main_class_name": "floe.demo.Main", "parameters": parameters},
        jars=list(jars),
        master="local[1]",
        spark_conf={},
        workspace=tmp_path,
    )
    env = cmd.environment({**os.environ, "SPARK_REMOTE": "sc://localhost:1"})  # dropped: a master is given
    return subprocess.run(cmd.argv, cwd=cmd.cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.spark
@pytest.mark.slow
def test_a_jar_runs_with_its_arguments_and_exit_code(demo_jars: tuple[Path, Path], tmp_path: Path) -> None:
    done = run_jar(demo_jars, tmp_path, ["a", "b c", "--d=1"])
    failed = run_jar(demo_jars, tmp_path, ["fail"])

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["args=a|b c|--d=1"]
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout.splitlines() == ["args=fail"]
