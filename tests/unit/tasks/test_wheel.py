"""python_wheel_task: the command, and the runner executing entry points of a real installed wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.command import Command
from core.tasks.libraries import LibrarySet, ensure_python_env
from core.tasks.runtime import write_inputs
from core.tasks.wheel import build_wheel_command
from tests.unit.tasks.wheels import build_wheel

PY = "/envs/abc/bin/python"
RUNNER = [PY, "-u", "-P", "-m", "core.tasks.runtime.wheel_runner"]
FLOE_ROOT = str(Path(__file__).resolve().parents[3])


def command(ws: Path, **kwargs: object) -> Command:
    task = {"package_name": "my_pkg", "entry_point": "main", **kwargs.pop("task", {})}  # type: ignore[dict-item]
    return build_wheel_command(task, python=PY, workspace=ws, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ command


def test_positional_parameters(tmp_path: Path) -> None:
    cmd = command(tmp_path, task={"parameters": ["a", "--b", "c d"]})
    assert cmd == Command(argv=[*RUNNER, "my_pkg", "main", "a", "--b", "c d"], cwd=tmp_path)


def test_named_parameters_become_key_equals_value(tmp_path: Path) -> None:
    cmd = command(tmp_path, task={"named_parameters": {"date": "2024-01-01", "mode": "full"}})
    assert cmd.argv[len(RUNNER) :] == ["my_pkg", "main", "--date=2024-01-01", "--mode=full"]


def test_job_parameters_are_named_and_win(tmp_path: Path) -> None:
    cmd = command(
        tmp_path,
        task={"named_parameters": {"date": "2024-01-01", "mode": "full"}},
        job_parameters={"date": "2025-02-02", "env": "prod"},
    )
    assert cmd.argv[len(RUNNER) + 2 :] == ["--date=2025-02-02", "--mode=full", "--env=prod"]


def test_run_now_legacy_parameters_replace_the_task_ones(tmp_path: Path) -> None:
    task = {"named_parameters": {"a": "1"}}
    named = command(tmp_path, task=task, python_named_params={"b": "2"})
    positional = command(tmp_path, task=task, python_params=["x"])
    assert named.argv[len(RUNNER) + 2 :] == ["--b=2"]
    assert positional.argv[len(RUNNER) + 2 :] == ["x"]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"entry_point": "main"}, r"^python_wheel_task\.package_name is required$"),
        ({"package_name": "p", "entry_point": ""}, r"^python_wheel_task\.entry_point is required$"),
        (
            {"package_name": "p", "entry_point": "m", "parameters": ["a"], "named_parameters": {"b": "c"}},
            r"^python_wheel_task: give either parameters or named_parameters, not both$",
        ),
        (
            {"package_name": "p", "entry_point": "m", "parameters": "a b"},
            r"^python_wheel_task\.parameters: must be a list of strings, not str$",
        ),
        (
            {"package_name": "p", "entry_point": "m", "named_parameters": {"n": 1}},
            r"^python_wheel_task\.named_parameters\.n: 1 is not a string$",
        ),
    ],
)
def test_invalid_tasks(tmp_path: Path, task: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        build_wheel_command(task, python=PY, workspace=tmp_path)


# ------------------------------------------------------------------------------------------------ runner

DEMO = """\
import json, os, sys


def main():
    print("argv", json.dumps(sys.argv))
    print("builtins", type(spark).__name__, type(dbutils).__name__)
    dbutils.jobs.taskValues.set("args", sys.argv[1:])
    if "--fail" in sys.argv:
        raise RuntimeError("asked to fail")
    if "--code" in sys.argv:
        return 3


def custom():
    print("custom group", sys.argv[0])


def not_declared():
    print("fallback", json.dumps(sys.argv))


def stop():
    dbutils.notebook.exit("done")
    print("not reached")
"""


@pytest.fixture(scope="module")
def demo_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment holding the demo wheel, built once for this module."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(
        root / "dist",
        "floe-wheel-demo",
        "0.1",
        {"floe_wheel_demo/__init__.py": DEMO},
        {
            "console_scripts": {"demo-main": "floe_wheel_demo:main", "stop": "floe_wheel_demo:stop"},
            "floe.custom": {"custom": "floe_wheel_demo:custom"},
        },
    )
    return ensure_python_env(LibrarySet(wheels=(wheel,)), cache_dir=root / "envs", base_python=sys.executable)


def run(
    python: Path, tmp_path: Path, task: dict[str, object], **kwargs: object
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the task as the executor does: its own process, task folder, the Floe root on PYTHONPATH."""
    task_dir = tmp_path / "task"
    task_dir.mkdir(exist_ok=True)
    write_inputs(
        task_dir, widgets={}, job_parameters={}, task_key="w", run_id=1, job_id=2, upstream_values={}
    )
    cmd = build_wheel_command(task, python=str(python), workspace=tmp_path, **kwargs)  # type: ignore[arg-type]
    base = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "FLOE_TASK_DIR")}
    env = cmd.environment({**base, "FLOE_TASK_DIR": str(task_dir), "PYTHONPATH": FLOE_ROOT})
    done = subprocess.run(cmd.argv, cwd=cmd.cwd, env=env, capture_output=True, text=True, timeout=60)
    return done, task_dir


def test_console_script_with_named_parameters(demo_python: Path, tmp_path: Path) -> None:
    task = {"package_name": "floe-wheel-demo", "entry_point": "demo-main", "named_parameters": {"day": "mon"}}

    done, task_dir = run(demo_python, tmp_path, task)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        'argv ["demo-main", "--day=mon"]',
        "builtins LazySparkSession DBUtils",
    ]
    assert json.loads((task_dir / "values.json").read_text()) == {"args": ["--day=mon"]}


def test_return_value_is_the_exit_code(demo_python: Path, tmp_path: Path) -> None:
    task = {"package_name": "floe_wheel_demo", "entry_point": "demo-main", "parameters": ["--code"]}
    done, _ = run(demo_python, tmp_path, task)
    assert done.returncode == 3, done.stderr


def test_an_exception_fails_with_its_traceback(demo_python: Path, tmp_path: Path) -> None:
    task = {"package_name": "floe-wheel-demo", "entry_point": "demo-main", "parameters": ["--fail"]}

    done, _ = run(demo_python, tmp_path, task)

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "RuntimeError: asked to fail"
    assert "wheel_runner" not in done.stderr  # the runner's own frame is cut off


def test_other_groups_and_the_module_function_fallback(demo_python: Path, tmp_path: Path) -> None:
    custom, _ = run(demo_python, tmp_path, {"package_name": "floe-wheel-demo", "entry_point": "custom"})
    fallback, _ = run(
        demo_python,
        tmp_path,
        {"package_name": "floe-wheel-demo", "entry_point": "not_declared", "parameters": ["x"]},
    )

    assert custom.stdout == "custom group custom\n", custom.stderr
    assert fallback.stdout == 'fallback ["not_declared", "x"]\n', fallback.stderr


def test_notebook_exit_is_success(demo_python: Path, tmp_path: Path) -> None:
    done, task_dir = run(demo_python, tmp_path, {"package_name": "floe-wheel-demo", "entry_point": "stop"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert json.loads((task_dir / "exit.json").read_text()) == {"result": "done"}


def test_a_missing_entry_point_is_reported(demo_python: Path, tmp_path: Path) -> None:
    done, task_dir = run(demo_python, tmp_path, {"package_name": "floe-wheel-demo", "entry_point": "nope"})

    assert done.returncode == 1
    error = (
        "EntryPointNotFound: distribution floe-wheel-demo 0.1 has no entry point 'nope' (it has: "
        "console_scripts:demo-main, console_scripts:stop, floe.custom:custom), "
        "and module 'floe_wheel_demo' has no function 'nope'"
    )
    assert done.stderr.strip() == error
    assert json.loads((task_dir / "error.json").read_text())["error"] == error


def test_a_missing_package_is_reported(demo_python: Path, tmp_path: Path) -> None:
    done, _ = run(demo_python, tmp_path, {"package_name": "not-installed", "entry_point": "main"})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "EntryPointNotFound: no distribution named 'not-installed' is installed, "
        "and there is no module 'not_installed'"
    )
