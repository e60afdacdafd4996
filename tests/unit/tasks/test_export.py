"""`runs/export` of a notebook: standalone HTML with every cell, its outputs and where it failed."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbformat import v4

from core.tasks.export import export_view, notebook_html

RED = "\x1b[31m"
RESET = "\x1b[39m"


def executed_notebook(*, failed: bool) -> bytes:
    cells = [
        v4.new_markdown_cell("# Daily report\nSome *markdown*."),
        v4.new_code_cell(
            'print("loaded 42 rows")',
            outputs=[v4.new_output("stream", name="stdout", text="loaded 42 rows\n")],
            execution_count=1,
        ),
        v4.new_code_cell(
            "display(df)",
            outputs=[
                v4.new_output(
                    "display_data",
                    data={
                        "text/html": "<table><tr><th>tens</th></tr><tr><td>10</td></tr></table>"
                        "<script>alert('x')</script>",
                        "text/plain": "|tens|",
                    },
                )
            ],
            execution_count=2,
        ),
    ]
    if failed:
        cells.append(
            v4.new_code_cell(
                "1 / 0",
                outputs=[
                    v4.new_output(
                        "error",
                        ename="ZeroDivisionError",
                        evalue="division by zero",
                        traceback=[
                            f"{RED}ZeroDivisionError{RESET} Traceback",
                            "----> 1 1 / 0",
                            "ZeroDivisionError: division by zero",
                        ],
                    )
                ],
                execution_count=3,
            )
        )
        cells.append(v4.new_code_cell('print("never ran")'))
    nb = v4.new_notebook(cells=cells)
    nb.metadata["floe"] = {"source": "report.py", "format": "databricks-python"}
    return nbformat.writes(nb).encode("utf-8")


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&quot;", '"').replace("&#39;", "'")


def test_html_shows_cells_outputs_and_the_failure() -> None:
    page = notebook_html(executed_notebook(failed=True))

    assert page.startswith("<!DOCTYPE html>")
    text = visible_text(page)
    for expected in (
        "Daily report",  # markdown, rendered
        'print("loaded 42 rows")',  # code
        "loaded 42 rows",  # stream output
        "1 / 0",
        "ZeroDivisionError: division by zero",  # the traceback
        'print("never ran")',
    ):
        assert expected in text, expected
    assert "<h1" in page and "<em>markdown</em>" in page
    assert "<th>tens</th>" in page  # rich HTML output kept
    assert "\x1b" not in page  # ANSI colours converted, not leaked
    assert "<title>report.py</title>" in page


def test_html_names_the_failed_cell_at_the_top() -> None:
    data = executed_notebook(failed=True)
    page = notebook_html(data)
    nb = nbformat.reads(data.decode(), as_version=4)

    banner = page[page.index('class="floe-error-banner"') :]
    assert banner.index("Failed in cell 4") < banner.index("ZeroDivisionError: division by zero")
    assert f'href="#cell-id={nb.cells[3].id}"' in banner
    assert page.index('class="floe-error-banner"') < page.index("Daily report")  # above the first cell


def test_no_banner_when_the_notebook_succeeded() -> None:
    page = notebook_html(executed_notebook(failed=False))
    assert 'class="floe-error-banner"' not in page


def test_html_is_standalone_and_sanitised() -> None:
    page = notebook_html(executed_notebook(failed=True))
    assert re.findall(r"<(?:script|link)[^>]*\b(?:src|href)=", page) == []  # nothing fetched when viewed
    assert "<style" in page  # the CSS is embedded
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in page  # shown, escaped
    assert "<script>alert('x')</script>" in notebook_html(executed_notebook(failed=True), sanitize=False)


def test_export_view_shape() -> None:
    view = export_view("report", executed_notebook(failed=False))
    assert set(view) == {"content", "name", "type"}
    assert (view["name"], view["type"]) == ("report", "NOTEBOOK")


@pytest.mark.parametrize("data", [b"not json", b"\xff\xfe", b'{"cells": 3}'])
def test_not_a_notebook(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a Jupyter notebook"):
        notebook_html(data)
