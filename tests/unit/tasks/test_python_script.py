"""spark_python_task: which file runs, with which argv, cwd and environment."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.python_script import SCRUBBED_ENV, PythonCommand, build_command, task_environment

PY = "/opt/python/bin/python3"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "Users" / "me").mkdir(parents=True)
    (ws / "Users" / "me" / "etl.py").write_text("print('etl')\n")
    (ws / "jobs").mkdir()
    (ws / "jobs" / "main.py").write_text("print('main')\n")
    return ws


def command(python_file: str, workspace: Path, **task: object) -> PythonCommand:
    return build_command({"python_file": python_file, **task}, python=PY, workspace=workspace)


# ------------------------------------------------------------------------------------------------ paths


def test_absolute_local_path(workspace: Path, tmp_path: Path) -> None:
    script = tmp_path / "elsewhere.py"
    script.write_text("")

    cmd = command(str(script), workspace, parameters=["a", "--b=1"])

    assert cmd == PythonCommand(argv=[PY, "-u", str(script), "a", "--b=1"], cwd=workspace, script=script)


def test_relative_path_is_under_the_workspace(workspace: Path) -> None:
    cmd = command("jobs/main.py", workspace)
    assert cmd.script == workspace / "jobs" / "main.py"
    assert cmd.argv == [PY, "-u", str(workspace / "jobs" / "main.py")]
    assert cmd.cwd == workspace


def test_workspace_style_leading_slash_is_looked_up_under_the_workspace(workspace: Path) -> None:
    assert command("/Users/me/etl.py", workspace).script == workspace / "Users" / "me" / "etl.py"
    # The /Workspace FUSE prefix is an alias of the workspace root.
    assert command("/Workspace/Users/me/etl.py", workspace).script == workspace / "Users" / "me" / "etl.py"


def test_file_uri(workspace: Path, tmp_path: Path) -> None:
    script = tmp_path / "with space.py"
    script.write_text("")

    assert command(f"file://{tmp_path}/with%20space.py", workspace).script == script
    assert command(f"file:{script}", workspace).script == script
    assert command(f"file://localhost{script}", workspace).script == script
    with pytest.raises(InvalidParameterValue, match="is not a local file URI"):
        command(f"file://otherhost{script}", workspace)


@pytest.mark.parametrize(
    "uri", ["dbfs:/x.py", "s3://bucket/x.py", "abfss://c@acct.dfs.core.windows.net/x.py"]
)
def test_remote_schemes_are_not_supported(workspace: Path, uri: str) -> None:
    with pytest.raises(
        InvalidParameterValue,
        match=(
            rf"^spark_python_task\.python_file: '{re.escape(uri)}' is not supported; "
            "use a local path or a path relative to the workspace$"
        ),
    ):
        command(uri, workspace)


@pytest.mark.parametrize("path", ["/Users/me/missing.py", "jobs/missing.py", "/no/such/dir/x.py"])
def test_a_missing_file_is_an_invalid_parameter(workspace: Path, path: str) -> None:
    with pytest.raises(
        InvalidParameterValue,
        match=(
            rf"^spark_python_task\.python_file: '{re.escape(path)}' "
            "does not exist on this host or under the workspace$"
        ),
    ):
        command(path, workspace)


def test_a_folder_is_not_a_file(workspace: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="'jobs' is not a file"):
        command("jobs", workspace)


@pytest.mark.parametrize("value", [None, "", "   ", 3])
def test_python_file_is_required(workspace: Path, value: object) -> None:
    with pytest.raises(InvalidParameterValue, match=r"spark_python_task\.python_file is required"):
        build_command({"python_file": value}, python=PY, workspace=workspace)


def test_git_source_takes_repository_relative_paths(workspace: Path) -> None:
    assert command("jobs/main.py", workspace, source="GIT").script == workspace / "jobs" / "main.py"
    with pytest.raises(InvalidParameterValue, match="must be relative to the repository root"):
        command("/Users/me/etl.py", workspace, source="GIT")
    with pytest.raises(InvalidParameterValue, match=r"spark_python_task\.source: 'S3' is not supported"):
        command("jobs/main.py", workspace, source="S3")


# ------------------------------------------------------------------------------------------------ parameters


def test_python_params_replace_parameters(workspace: Path) -> None:
    task = {"python_file": "jobs/main.py", "parameters": ["from-task"]}

    replaced = build_command(task, python=PY, workspace=workspace, python_params=["from-run-now"])
    emptied = build_command(task, python=PY, workspace=workspace, python_params=[])

    assert replaced.argv[3:] == ["from-run-now"]
    assert emptied.argv[3:] == []
    assert build_command(task, python=PY, workspace=workspace).argv[3:] == ["from-task"]


def test_parameters_must_be_strings(workspace: Path) -> None:
    with pytest.raises(InvalidParameterValue, match=r"spark_python_task\.parameters\[1\]: 2 is not a string"):
        command("jobs/main.py", workspace, parameters=["1", 2])
    with pytest.raises(InvalidParameterValue, match=r"spark_python_task\.parameters: must be a list"):
        command("jobs/main.py", workspace, parameters="a b")
    with pytest.raises(InvalidParameterValue, match=r"python_params\[0\]: .* NUL"):
        build_command({"python_file": "jobs/main.py"}, python=PY, workspace=workspace, python_params=["a\0"])


def test_the_command_runs_the_script_with_its_argv(workspace: Path) -> None:
    (workspace / "jobs" / "helper.py").write_text("NAME = 'helper'\n")
    (workspace / "jobs" / "argv.py").write_text(
        "import os, sys, helper\nprint(helper.NAME, os.getcwd(), sys.argv[1:])\n"
    )
    task = {"python_file": "jobs/argv.py", "parameters": ["x", "--y=2"]}
    cmd = build_command(task, python=sys.executable, workspace=workspace)

    out = subprocess.run(cmd.argv, cwd=cmd.cwd, capture_output=True, text=True, check=True).stdout

    assert out == f"helper {workspace} ['x', '--y=2']\n"


# ------------------------------------------------------------------------------------------------ environment


def test_task_environment_adds_floe_variables_and_scrubs_secrets(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "FLOE_ADMIN_TOKEN": "secret-token",
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountKey=secret",
        "FLOE_AZURE_CONNECTION_STRING": "AccountKey=secret",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=secret",
        "TRACEPARENT": "00-of-the-floe-server-01",
    }

    env = task_environment(
        base,
        job_id=11,
        run_id=22,
        task_run_id=33,
        task_key="etl",
        attempt=1,
        workspace=tmp_path,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )

    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "FLOE_JOB_ID": "11",
        "FLOE_RUN_ID": "22",
        "FLOE_TASK_RUN_ID": "33",
        "FLOE_TASK_KEY": "etl",
        "FLOE_ATTEMPT": "1",
        "FLOE_WORKSPACE": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    assert not SCRUBBED_ENV & env.keys()
    assert "secret" not in repr(env)
    assert base["FLOE_ADMIN_TOKEN"] == "secret-token"  # the base mapping is not modified


def test_task_environment_without_a_traceparent_drops_the_servers_own(tmp_path: Path) -> None:
    env = task_environment(
        {"TRACEPARENT": "00-server-01", "TRACESTATE": "x=1"},
        job_id=1,
        run_id=2,
        task_run_id=3,
        task_key="t",
        attempt=0,
        workspace=tmp_path,
    )
    assert "TRACEPARENT" not in env and "TRACESTATE" not in env
