"""Databricks source notebooks: how their cells become Jupyter cells; where a notebook_path leads."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.notebook import load_notebook, locate_notebook, notebook_argv
from core.tasks.notebook_source import SourceCell, UnsupportedNotebook, parse_source, source_language

DATA = Path(__file__).parent / "data"


def test_python_source_notebook_cells() -> None:
    cells = parse_source((DATA / "magics.py").read_text(), "python")

    assert cells == [
        SourceCell("markdown", "<b>Title</b>"),
        SourceCell("code", "%%sql\nSELECT 1 AS one;\nSELECT ';' AS semi -- a comment; with a semicolon"),
        SourceCell("code", "%pip install --quiet requests==2.0"),
        SourceCell("code", '%%sh\necho "from sh"\nls'),
        SourceCell("code", "print(1)"),
        SourceCell(
            "code",
            "# %scala\n# val x = 1\nraise NotImplementedError('%scala cells are not supported by Floe "
            "(supported: %python, %sql, %md, %pip, %sh)')",
        ),
        SourceCell(
            "code",
            "# %run ./other_notebook\nraise NotImplementedError('%run cells are not supported by Floe "
            "(supported: %python, %sql, %md, %pip, %sh)')",
        ),
        SourceCell("code", "# not a magic: comment lines only"),
    ]


def test_plain_cells_titles_and_blank_edges() -> None:
    text = (
        "# Databricks notebook source\n"
        "import os\n\n\n"
        "# COMMAND ----------\n\n"
        "# DBTITLE 1,Load the data\n"
        "x = 1\n\n"
        "y = 2\n\n"
        "# COMMAND ----------\n"
        "# MAGIC %md\n"
        "# MAGIC # Heading\n"
        "# MAGIC\n"
        "# MAGIC text\n"
    )
    assert parse_source(text, "python") == [
        SourceCell("code", "import os"),
        SourceCell("code", "x = 1\n\ny = 2", {"title": "Load the data"}),
        SourceCell("markdown", "# Heading\n\ntext"),
    ]


def test_sql_source_notebook_cells() -> None:
    cells = parse_source((DATA / "report.sql").read_text(), "sql")
    assert cells == [
        SourceCell("markdown", "# A SQL notebook"),
        SourceCell("code", "%%sql\nCREATE TEMPORARY VIEW numbers AS SELECT id FROM range(5);"),
        SourceCell("code", "%%sql\nSELECT count(*) AS n FROM numbers", {"title": "Count"}),
        SourceCell("code", 'print(spark.table("numbers").count())'),
    ]


def test_windows_line_endings() -> None:
    text = "# Databricks notebook source\r\na = 1\r\n# COMMAND ----------\r\nb = 2\r\n"
    assert parse_source(text, "python") == [SourceCell("code", "a = 1"), SourceCell("code", "b = 2")]


@pytest.mark.parametrize(
    ("first_line", "language"),
    [
        ("# Databricks notebook source", "python"),
        ("\ufeff# Databricks notebook source", "python"),
        ("-- Databricks notebook source", "sql"),
        ("import os", None),
        ("", None),
    ],
)
def test_source_language(first_line: str, language: str | None) -> None:
    assert source_language(first_line + "\nx\n") == language


def test_scala_source_is_refused() -> None:
    with pytest.raises(UnsupportedNotebook, match="Scala notebooks are not supported by Floe"):
        source_language("// Databricks notebook source\nval x = 1\n")


# ------------------------------------------------------------------------------------------------ loading


def test_load_a_source_notebook() -> None:
    nb = load_notebook(DATA / "exit_early.py")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code"]
    assert nb.cells[2].metadata["title"] == "Share a value"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["floe"] == {"source": "exit_early.py", "format": "databricks-python"}


def test_load_an_ipynb() -> None:
    nb = load_notebook(DATA / "exit_early.ipynb")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "code", "code"]


def test_a_plain_python_file_is_a_one_cell_notebook(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("print('hi')\n")
    nb = load_notebook(tmp_path / "plain.py")
    assert [(c.cell_type, c.source) for c in nb.cells] == [("code", "print('hi')")]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("x.scala", "// Databricks notebook source\n", r"x.scala: Scala notebooks are not supported"),
        ("x.r", "# Databricks notebook source\n", r"x.r: R notebooks are not supported"),
        ("x.sql", "SELECT 1\n", r"x.sql: a .sql notebook must start with '-- Databricks notebook source'"),
        ("x.txt", "hello\n", r"x.txt: not a notebook"),
    ],
)
def test_load_refuses_what_it_cannot_run(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(UnsupportedNotebook, match=message):
        load_notebook(tmp_path / name)


# ------------------------------------------------------------------------------------------------ locating


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "Users" / "me").mkdir(parents=True)
    (ws / "Users" / "me" / "etl.py").write_text("# Databricks notebook source\n")
    (ws / "Users" / "me" / "explore.ipynb").write_text("{}")
    (ws / "Users" / "me" / "report.sql").write_text("-- Databricks notebook source\n")
    (ws / "Users" / "me" / "both").write_text("# Databricks notebook source\n")
    (ws / "Users" / "me" / "both.py").write_text("# Databricks notebook source\n")
    (ws / "Users" / "me" / "folder").mkdir()
    return ws


@pytest.mark.parametrize(
    ("notebook_path", "found"),
    [
        ("/Users/me/etl", "Users/me/etl.py"),
        ("/Users/me/etl.py", "Users/me/etl.py"),
        ("/Workspace/Users/me/etl", "Users/me/etl.py"),
        ("/Users/me/explore", "Users/me/explore.ipynb"),
        ("/Users/me/report", "Users/me/report.sql"),
        ("/Users/me/both", "Users/me/both"),  # the exact name first
        ("Users/me/etl", "Users/me/etl.py"),
    ],
)
def test_locate_workspace_paths(workspace: Path, notebook_path: str, found: str) -> None:
    assert locate_notebook(notebook_path, workspace=workspace) == workspace / found


def test_locate_absolute_and_file_uri(workspace: Path, tmp_path: Path) -> None:
    nb = tmp_path / "elsewhere.ipynb"
    nb.write_text("{}")
    assert locate_notebook(str(tmp_path / "elsewhere"), workspace=workspace) == nb
    assert locate_notebook(f"file://{tmp_path}/elsewhere", workspace=workspace) == nb


def test_locate_git_paths_are_relative(workspace: Path) -> None:
    assert locate_notebook("Users/me/etl", workspace=workspace, git=True) == workspace / "Users/me/etl.py"
    with pytest.raises(InvalidParameterValue, match="must be relative to the repository root"):
        locate_notebook("/Users/me/etl", workspace=workspace, git=True)


@pytest.mark.parametrize(
    ("notebook_path", "message"),
    [
        ("", r"notebook_task.notebook_path is required"),
        ("dbfs:/x", r"notebook_task.notebook_path: 'dbfs:/x' is not supported; use a local path"),
        ("file://host/x", r"'file://host/x' is not a local file URI"),
        ("/Users/me/folder", r"'/Users/me/folder' is not a file"),
        (
            "/Users/me/nope",
            r"notebook_task.notebook_path: '/Users/me/nope' does not exist on this host or under the "
            r"workspace \(tried no extension, .py, .ipynb, .sql, .scala, .r\)",
        ),
    ],
)
def test_locate_errors(workspace: Path, notebook_path: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        locate_notebook(notebook_path, workspace=workspace)


def test_notebook_argv() -> None:
    assert notebook_argv("/py", Path("/ws/nb.py")) == [
        "/py",
        "-u",
        "-P",
        "-m",
        "core.tasks.notebook",
        "/ws/nb.py",
    ]
