"""sql_task: the command, the result document, and the runner executing statements in local Spark."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.command import Command
from core.tasks.runtime.sql_runner import MAX_ROWS, result_document
from core.tasks.sql import build_sql_command, read_sql_output
from tests.fixtures.services import service_missing

DATA = Path(__file__).parent / "data"
PY = "/opt/python/bin/python3"
RUNNER = [PY, "-u", "-P", "-m", "core.tasks.runtime.sql_runner"]
FLOE_ROOT = str(Path(__file__).resolve().parents[3])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "Users" / "me").mkdir(parents=True)
    shutil.copy(DATA / "two_statements.sql", ws / "Users" / "me" / "report.sql")
    return ws


# ------------------------------------------------------------------------------------------------ command


def test_file_and_parameters(workspace: Path) -> None:
    cmd = build_sql_command(
        {
            "warehouse_id": "ignored",
            "file": {"path": "/Users/me/report.sql"},
            "parameters": {"a": "1", "b": ""},
        },
        python=PY,
        workspace=workspace,
        job_parameters={"b": "job"},
    )
    assert cmd == Command(
        argv=[*RUNNER, "--param", "a=1", "--param", "b=job", str(workspace / "Users" / "me" / "report.sql")],
        cwd=workspace,
    )


def test_legacy_sql_params_win_and_inline_query_text(workspace: Path) -> None:
    cmd = build_sql_command(
        {"query": {"query_text": "SELECT :a"}, "parameters": {"a": "1"}},
        python=PY,
        workspace=workspace,
        sql_params={"a": "2"},
    )
    assert cmd.argv == [*RUNNER, "--param", "a=2", "--query", "SELECT :a"]


def test_git_source_is_relative_to_the_checkout(workspace: Path) -> None:
    cmd = build_sql_command(
        {"file": {"path": "Users/me/report.sql", "source": "GIT"}}, python=PY, workspace=workspace
    )
    assert cmd.argv[-1] == str(workspace / "Users" / "me" / "report.sql")
    with pytest.raises(InvalidParameterValue, match="must be relative to the repository root"):
        build_sql_command(
            {"file": {"path": "/Users/me/report.sql", "source": "GIT"}}, python=PY, workspace=workspace
        )


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({}, r"^sql_task: give exactly one of file, query, alert, dashboard$"),
        (
            {"file": {"path": "x.sql"}, "query": {"query_id": "q"}},
            r"^sql_task: give exactly one of file, query, alert, dashboard, not file and query$",
        ),
        (
            {"query": {"query_id": "123"}},
            r"^sql_task\.query\.query_id: saved queries are not supported; use file",
        ),
        ({"alert": {"alert_id": "a"}}, r"^sql_task\.alert: SQL alerts are not supported; use file$"),
        ({"dashboard": {"dashboard_id": "d"}}, r"^sql_task\.dashboard: SQL dashboards are not supported"),
        ({"file": "x.sql"}, r"^sql_task\.file: must be an object, not str$"),
        ({"file": {"path": "dbfs:/q.sql"}}, r"^sql_task\.file\.path: 'dbfs:/q\.sql' is not supported"),
        ({"file": {"path": "missing.sql"}}, r"^sql_task\.file\.path: 'missing\.sql' does not exist"),
        ({"file": {}}, r"^sql_task\.file\.path is required"),
        (
            {"file": {"path": "Users/me/report.sql"}, "parameters": {"my-param": "1"}},
            r"^sql_task\.parameters: 'my-param' cannot be a :name marker",
        ),
        (
            {"file": {"path": "Users/me/report.sql"}, "parameters": {"n": 1}},
            r"^sql_task\.parameters\.n: 1 is not a string$",
        ),
        (
            {"query": {"query_text": "SELECT '" + "x" * 100_000 + "'"}},
            r"^sql_task\.query\.query_text: 100009 bytes is over the limit of 100000; use file$",
        ),
    ],
)
def test_invalid_tasks(workspace: Path, task: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        build_sql_command(task, python=PY, workspace=workspace)


# ------------------------------------------------------------------------------------------------ output


def test_result_values_become_json() -> None:
    doc = result_document(
        ["a", "b", "c", "d", "e", "f", "g"],
        [
            (
                Decimal("1.50"),
                dt.date(2024, 1, 2),
                dt.datetime(2024, 1, 2, 3, 4, 5),
                b"\x00\x01",
                float("nan"),
                [1, {"k": None}],
                True,
            )
        ],
    )
    assert doc == {
        "columns": ["a", "b", "c", "d", "e", "f", "g"],
        "rows": [["1.50", "2024-01-02", "2024-01-02T03:04:05", "AAE=", "nan", [1, {"k": None}], True]],
        "truncated": False,
    }
    json.dumps(doc, allow_nan=False)


def test_results_are_capped_by_rows_and_bytes() -> None:
    by_rows = result_document(["n"], [(i,) for i in range(MAX_ROWS + 1)])
    by_bytes = result_document(["s"], [("x" * 1_000_000,) for _ in range(10)])

    assert len(by_rows["rows"]) == MAX_ROWS and by_rows["truncated"]
    assert len(by_bytes["rows"]) == 5 and by_bytes["truncated"]
    assert not result_document(["n"], [(i,) for i in range(MAX_ROWS)])["truncated"]


# ------------------------------------------------------------------------------------------------ runner


def run(cmd: Command, task_dir: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "FLOE_TASK_DIR")}
    env = cmd.environment({**base, "FLOE_TASK_DIR": str(task_dir), "PYTHONPATH": FLOE_ROOT})
    return subprocess.run(cmd.argv, cwd=cmd.cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    return folder


def test_a_file_without_statements_fails_before_spark_starts(workspace: Path, task_dir: Path) -> None:
    (workspace / "empty.sql").write_text("-- nothing here\n/* nor here; */\n")
    done = run(
        build_sql_command({"file": {"path": "empty.sql"}}, python=sys.executable, workspace=workspace),
        task_dir,
    )

    assert done.returncode == 1
    error = f"ValueError: the SQL file {str(workspace / 'empty.sql')!r} holds no statement"
    assert done.stderr.strip() == error
    assert json.loads((task_dir / "error.json").read_text()) == {
        "error": error,
        "error_trace": None,
        "cell": None,
    }
    assert read_sql_output(task_dir) is None


def test_a_bad_invocation_exits_with_2(task_dir: Path, tmp_path: Path) -> None:
    cmd = Command([sys.executable, "-u", "-P", "-m", "core.tasks.runtime.sql_runner", "--nope"], cwd=tmp_path)
    missing = Command([*cmd.argv[:-1], str(tmp_path / "missing.sql")], cwd=tmp_path)

    assert run(cmd, task_dir).returncode == 2
    done = run(missing, task_dir)
    assert done.returncode == 2
    assert "can't read SQL file" in done.stderr


@pytest.fixture
def java() -> None:
    if shutil.which("java") is None:
        service_missing("Java")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.usefixtures("java")
def test_statements_run_in_order_and_the_last_rows_are_the_output(workspace: Path, task_dir: Path) -> None:
    cmd = build_sql_command(
        {"file": {"path": "/Users/me/report.sql"}, "parameters": {"min_id": "7", "label": "it's"}},
        python=sys.executable,
        workspace=workspace,
    )

    done = run(cmd, task_dir)

    assert done.returncode == 0, done.stderr
    assert read_sql_output(task_dir) == {
        "columns": ["id", "price", "text", "label", "day"],
        "rows": [
            [7, "10.50", "a;b", "it's", "2024-01-02"],
            [8, "12.00", "a;b", "it's", "2024-01-02"],
            [9, "13.50", "a;b", "it's", "2024-01-02"],
        ],
        "truncated": False,
    }


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.usefixtures("java")
def test_a_failing_statement_stops_the_task(workspace: Path, task_dir: Path) -> None:
    """A query that is not the last one still runs in full: its runtime error fails the task."""
    text = "SELECT 1 AS ok; SELECT raise_error('bad row') FROM range(3); SELECT 2 AS never"
    cmd = build_sql_command({"query": {"query_text": text}}, python=sys.executable, workspace=workspace)

    done = run(cmd, task_dir)

    assert done.returncode == 1
    error = json.loads((task_dir / "error.json").read_text())
    assert error["error"].split(": ", 1)[0].endswith("Exception")
    assert "bad row" in error["error"]
    assert error["error_trace"].startswith("statement 2 of 3:\nSELECT raise_error('bad row') FROM range(3)\n")
    assert error["error"].splitlines()[0] in done.stderr
    assert read_sql_output(task_dir) is None
