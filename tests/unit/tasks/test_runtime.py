"""The task runtime: dbutils semantics, the task-folder files, the script bootstrap, SQL splitting."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.tasks.runtime import (
    TASK_VALUE_MAX_BYTES,
    DBUtils,
    InputWidgetNotDefined,
    LazySparkSession,
    NotebookExit,
    read_outputs,
    write_inputs,
)
from core.tasks.runtime.bootstrap import python_bootstrap_argv
from core.tasks.runtime.display import table_text
from core.tasks.runtime.sql import split_statements


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "task"
    folder.mkdir()
    write_inputs(
        folder,
        widgets={"name": "world", "n": "3"},
        job_parameters={"env": "dev"},
        task_key="report",
        run_id=11,
        job_id=7,
        upstream_values={"ingest": {"rows": 42, "table": "raw.events", "flag": False}, "quiet": {}},
    )
    return folder


@pytest.fixture
def dbutils(task_dir: Path) -> DBUtils:
    return DBUtils(task_dir)


# ------------------------------------------------------------------------------------------------ widgets


def test_widget_passed_by_the_run(dbutils: DBUtils) -> None:
    assert dbutils.widgets.get("name") == "world"


def test_passed_value_beats_the_declared_default(dbutils: DBUtils) -> None:
    dbutils.widgets.text("name", "default")
    assert dbutils.widgets.get("name") == "world"


def test_declared_widget_without_a_value_returns_its_default(dbutils: DBUtils) -> None:
    dbutils.widgets.text("greeting", "hello", "Greeting")
    dbutils.widgets.dropdown("color", "red", ["red", "blue"])
    dbutils.widgets.combobox("size", "L", ["S", "M"])
    dbutils.widgets.multiselect("days", "mon,tue", ["mon", "tue", "wed"])
    assert [dbutils.widgets.get(n) for n in ("greeting", "color", "size", "days")] == [
        "hello",
        "red",
        "L",
        "mon,tue",
    ]


def test_undefined_widget_names_itself_and_the_known_ones(dbutils: DBUtils) -> None:
    dbutils.widgets.text("greeting", "hello")
    with pytest.raises(InputWidgetNotDefined, match=r"No input widget named 'nope' is defined") as info:
        dbutils.widgets.get("nope")
    assert "'greeting', 'n', 'name'" in str(info.value)
    assert isinstance(info.value, KeyError)


def test_get_all_and_get_argument(dbutils: DBUtils) -> None:
    dbutils.widgets.text("greeting", "hello")
    assert dbutils.widgets.getAll() == {"greeting": "hello", "name": "world", "n": "3"}
    assert dbutils.widgets.getArgument("nope", "fallback") == "fallback"
    dbutils.widgets.remove("greeting")
    assert dbutils.widgets.getArgument("greeting") is None


def test_dropdown_default_must_be_a_choice(dbutils: DBUtils) -> None:
    with pytest.raises(ValueError, match=r"widget 'color': default value 'green' is not one of"):
        dbutils.widgets.dropdown("color", "green", ["red", "blue"])


def test_outside_a_task_only_declared_defaults_exist() -> None:
    dbutils = DBUtils(None)
    dbutils.widgets.text("x", "1")
    assert dbutils.widgets.get("x") == "1"
    with pytest.raises(InputWidgetNotDefined, match="'name'"):
        dbutils.widgets.get("name")


# ------------------------------------------------------------------------------------------------ task values


@pytest.mark.parametrize(
    ("task", "key", "default", "expected"),
    [
        ("ingest", "rows", None, 42),
        ("ingest", "flag", None, False),
        ("ingest", "missing", "fallback", "fallback"),
        ("quiet", "anything", 0, 0),
    ],
)
def test_task_values_get(dbutils: DBUtils, task: str, key: str, default: Any, expected: Any) -> None:
    assert dbutils.jobs.taskValues.get(task, key, default=default) == expected


def test_task_values_get_ignores_debug_value_inside_a_task(dbutils: DBUtils) -> None:
    assert dbutils.jobs.taskValues.get("ingest", "rows", debugValue=-1) == 42


@pytest.mark.parametrize(
    ("task", "key", "message"),
    [
        (
            "nope",
            "rows",
            r"task 'nope' is not a task of this run that has finished \(finished tasks: 'ingest'",
        ),
        ("ingest", "missing", r"task 'ingest' set no value 'missing' and no default was given"),
        ("quiet", "missing", r"task 'quiet' set no value 'missing'"),
    ],
)
def test_task_values_get_errors(dbutils: DBUtils, task: str, key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dbutils.jobs.taskValues.get(task, key)


def test_task_values_outside_a_task_return_the_debug_value() -> None:
    dbutils = DBUtils(None)
    assert dbutils.jobs.taskValues.get("any", "key", default=1, debugValue=5) == 5
    with pytest.raises(TypeError, match="debugValue"):
        dbutils.jobs.taskValues.get("any", "key", default=1)
    dbutils.jobs.taskValues.set("k", 1)  # kept in memory, nothing written


def test_task_values_set_writes_values_json(dbutils: DBUtils, task_dir: Path) -> None:
    dbutils.jobs.taskValues.set("count", 3)
    dbutils.jobs.taskValues.set("names", ["a", "é"])
    dbutils.jobs.taskValues.set("count", 4)
    assert json.loads((task_dir / "values.json").read_text("utf-8")) == {"count": 4, "names": ["a", "é"]}
    assert read_outputs(task_dir).values == {"count": 4, "names": ["a", "é"]}
    assert [p.name for p in task_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_task_value_size_limit_is_48_kib_of_json(dbutils: DBUtils) -> None:
    fits = "x" * (TASK_VALUE_MAX_BYTES - 2)  # the two quotes make exactly 48 KiB
    dbutils.jobs.taskValues.set("fits", fits)
    with pytest.raises(
        ValueError, match=r"task value 'big' is 49153 bytes of JSON; the limit is 49152 bytes"
    ):
        dbutils.jobs.taskValues.set("big", fits + "x")


@pytest.mark.parametrize("value", [object(), {1, 2}, math.nan, b"bytes"])
def test_task_value_must_be_json(dbutils: DBUtils, value: object) -> None:
    with pytest.raises(ValueError, match=r"task value 'bad' cannot be stored: it is not JSON"):
        dbutils.jobs.taskValues.set("bad", value)


@pytest.mark.parametrize("key", ["", 3, None])
def test_task_value_key_must_be_a_non_empty_string(dbutils: DBUtils, key: Any) -> None:
    with pytest.raises(ValueError, match="task value key must be a non-empty string"):
        dbutils.jobs.taskValues.set(key, 1)


# ------------------------------------------------------------------------------------------------ exit


def test_exit_writes_the_result_and_raises_a_base_exception(dbutils: DBUtils, task_dir: Path) -> None:
    assert not issubclass(NotebookExit, Exception)
    with pytest.raises(NotebookExit) as info:
        dbutils.notebook.exit(42)
    assert info.value.result == "42"
    assert json.loads((task_dir / "exit.json").read_text()) == {"result": "42"}
    assert read_outputs(task_dir).exit_result == "42"


def test_unsupported_parts_say_so(dbutils: DBUtils) -> None:
    with pytest.raises(NotImplementedError, match=r"dbutils.fs.ls is not supported by Floe"):
        dbutils.fs.ls("/")
    with pytest.raises(NotImplementedError, match=r"dbutils.secrets.get is not supported by Floe"):
        dbutils.secrets.get("scope", "key")
    with pytest.raises(NotImplementedError, match=r"dbutils.notebook.run\('x'\) is not supported"):
        dbutils.notebook.run("x", 60)


def test_read_outputs_of_an_empty_folder(tmp_path: Path) -> None:
    outputs = read_outputs(tmp_path)
    assert (outputs.values, outputs.exit_result, outputs.error, outputs.executed_notebook) == (
        {},
        None,
        None,
        None,
    )


# ------------------------------------------------------------------------------------------------ import cost


def test_importing_the_runtime_imports_neither_spark_nor_ipython() -> None:
    code = (
        "import sys, core.tasks.runtime as r; r.dbutils; r.spark\n"
        "heavy = ('pyspark', 'IPython', 'nbformat')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_spark_proxy_starts_nothing_until_used() -> None:
    spark = LazySparkSession()
    assert repr(spark) == "<SparkSession (Floe): created on first use>"
    assert not hasattr(spark, "__array__")  # probes by copy, pickle, numpy, IPython's display
    assert spark._session is None


# ------------------------------------------------------------------------------------------------ bootstrap


def run_script(
    script: Path, *args: str, task_dir: Path | None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FLOE_TASK_DIR"}
    if task_dir is not None:
        env["FLOE_TASK_DIR"] = str(task_dir)
    argv = python_bootstrap_argv(sys.executable, script, list(args))
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_bootstrap_argv() -> None:
    assert python_bootstrap_argv("/py", Path("/ws/a.py"), ["x", "--y=1"]) == [
        "/py",
        "-u",
        "-P",
        "-m",
        "core.tasks.runtime.bootstrap",
        "/ws/a.py",
        "x",
        "--y=1",
    ]


def test_bootstrap_runs_the_script_as_python_would(tmp_path: Path, task_dir: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "helper.py").write_text("VALUE = 'imported from the script folder'\n")
    script = scripts / "main.py"
    script.write_text(
        "import json, sys\n"
        "import helper\n"
        "print(json.dumps({\n"
        "    'argv': sys.argv, 'path0': sys.path[0], 'name': __name__, 'file': __file__,\n"
        "    'helper': helper.VALUE, 'widget': dbutils.widgets.get('name'),\n"
        "    'builtins': [callable(display), callable(displayHTML), type(spark).__name__],\n"
        "}))\n"
        "dbutils.jobs.taskValues.set('rows', len(sys.argv))\n"
    )
    cwd = tmp_path / "ws"
    cwd.mkdir()

    done = run_script(script, "a", "--b=1", task_dir=task_dir, cwd=cwd)

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "argv": [str(script), "a", "--b=1"],
        "path0": str(scripts),
        "name": "__main__",
        "file": str(script),
        "helper": "imported from the script folder",
        "widget": "world",
        "builtins": [True, True, "LazySparkSession"],
    }
    assert json.loads((task_dir / "values.json").read_text()) == {"rows": 3}


def test_bootstrap_prints_the_traceback_python_would_and_exits_1(tmp_path: Path) -> None:
    script = tmp_path / "fail.py"
    script.write_text("def f():\n    raise ValueError('boom')\n\nprint('started')\nf()\n")

    done = run_script(script, task_dir=None, cwd=tmp_path)
    plain = subprocess.run([sys.executable, "-u", str(script)], cwd=tmp_path, capture_output=True, text=True)

    assert done.returncode == 1
    assert done.stdout == "started\n"
    assert done.stderr == plain.stderr
    assert done.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{script}", line 5, in <module>' in done.stderr
    assert done.stderr.endswith("ValueError: boom\n")
    assert "core/tasks/runtime" not in done.stderr and "runpy" not in done.stderr


def test_bootstrap_notebook_exit_is_success(tmp_path: Path, task_dir: Path) -> None:
    script = tmp_path / "exit.py"
    script.write_text(
        "try:\n"
        "    dbutils.notebook.exit('early')\n"
        "except Exception:\n"
        "    print('swallowed')\n"
        "print('after exit')\n"
    )

    done = run_script(script, task_dir=task_dir, cwd=tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert read_outputs(task_dir).exit_result == "early"


@pytest.mark.parametrize(("code", "status"), [("import sys; sys.exit(3)", 3), ("raise SystemExit('bye')", 1)])
def test_bootstrap_leaves_system_exit_alone(tmp_path: Path, code: str, status: int) -> None:
    script = tmp_path / "s.py"
    script.write_text(code + "\n")
    done = run_script(script, task_dir=None, cwd=tmp_path)
    assert done.returncode == status
    assert "Traceback" not in done.stderr


def test_bootstrap_missing_script(tmp_path: Path) -> None:
    done = run_script(tmp_path / "nope.py", task_dir=None, cwd=tmp_path)
    assert done.returncode == 2
    assert "can't open file" in done.stderr


def test_bootstrap_working_directory_does_not_shadow_floe(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("raise ImportError('user core imported')\n")
    script = tmp_path / "elsewhere" / "s.py"
    script.parent.mkdir()
    script.write_text("print(type(dbutils).__name__)\n")
    done = run_script(script, task_dir=None, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "DBUtils\n"), done.stderr


def test_display_in_a_script_prints(tmp_path: Path) -> None:
    script = tmp_path / "d.py"
    script.write_text("display({'a': 1})\ndisplayHTML('<b>x</b>')\n")
    done = run_script(script, task_dir=None, cwd=tmp_path)
    assert done.stdout == "{'a': 1}\n<b>x</b>\n"


# ----------------------------------------------------------------------------------------------- sql, display


@pytest.mark.parametrize(
    ("text", "statements"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1;\nSELECT 2;\n", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';' AS s; SELECT \"a;b\"", ["SELECT ';' AS s", 'SELECT "a;b"']),
        ("SELECT 'it\\'s;' AS s", ["SELECT 'it\\'s;' AS s"]),
        ("SELECT `a;b` FROM t", ["SELECT `a;b` FROM t"]),
        ("SELECT 1 -- one; two\n; SELECT 2", ["SELECT 1 -- one; two", "SELECT 2"]),
        ("/* a; b */ SELECT 1; /* only a comment */", ["/* a; b */ SELECT 1"]),
        ("-- just a comment\n", []),
        ("  ;\n ; ", []),
    ],
)
def test_split_statements(text: str, statements: list[str]) -> None:
    assert split_statements(text) == statements


def test_table_text() -> None:
    assert table_text(["id", "name"], [["1", "a"], ["10", "null"]], more=True) == (
        "+--+----+\n|id|name|\n+--+----+\n| 1|   a|\n|10|null|\n+--+----+\nonly showing top 2 rows"
    )
    assert table_text([], []) == "OK"
