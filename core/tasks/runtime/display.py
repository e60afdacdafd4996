"""`display` and `displayHTML`: rich output in a notebook kernel, plain text on stdout in a script.

A Spark DataFrame is shown as a table of its first `DISPLAY_MAX_ROWS` rows (HTML plus a text table, like
Databricks' result grid); anything else goes to IPython's `display` in a kernel, or is printed.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # no `typing` import at run time: task start-up cost
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DISPLAY_MAX_ROWS", "display", "displayHTML", "table_text"]

DISPLAY_MAX_ROWS = 1000


def _ipython_display() -> Any:
    """IPython's `display` when running in an IPython shell (a notebook kernel), else None.

    IPython is only looked at when already imported: a script must not pay for importing it.
    """
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython
    from IPython.display import display as ipython_display

    return ipython_display if get_ipython() is not None else None


def _is_spark_dataframe(obj: object) -> bool:
    cls = type(obj)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pyspark.")


def table_text(columns: list[str], rows: list[list[str]], more: bool = False) -> str:
    """A plain-text table in the style of `DataFrame.show()`."""
    if not columns:
        return "OK"
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "|" + "|".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + "|"

    out = [rule, line(columns), rule, *(line(r) for r in rows), rule]
    if more:
        out.append(f"only showing top {len(rows)} rows")
    return "\n".join(out)


def _cell(value: object) -> str:
    return "null" if value is None else str(value)


def _dataframe_bundle(df: Any, limit: int) -> dict[str, str]:
    import html

    columns = list(df.columns)
    collected = df.limit(limit + 1).collect()
    more = len(collected) > limit
    rows = [[_cell(v) for v in row] for row in collected[:limit]]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    note = f"<p>only showing top {limit} rows</p>" if more else ""
    table = f"<table border='1' class='dataframe'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return {"text/plain": table_text(columns, rows, more), "text/html": table + note}


def display(obj: object = None, *args: Any, limit: int = DISPLAY_MAX_ROWS, **kwargs: Any) -> None:
    """Show `obj`: a Spark DataFrame as a table, anything else as IPython (or `print`) would."""
    shown = _ipython_display()
    if _is_spark_dataframe(obj):
        bundle = _dataframe_bundle(obj, limit)
        if shown is not None:
            shown(bundle, raw=True)
        else:
            print(bundle["text/plain"])
        return
    if shown is not None:
        shown(obj, *args)
    else:
        print(obj, *args)


def displayHTML(content: str) -> None:
    """Show an HTML fragment (printed as is outside a notebook kernel)."""
    shown = _ipython_display()
    if shown is not None:
        shown({"text/html": content, "text/plain": content}, raw=True)
    else:
        print(content)
