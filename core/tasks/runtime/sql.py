"""SQL cells: split a cell into statements and run them with `spark.sql`, showing the last result.

A Databricks `%sql` cell (or a cell of a `.sql` notebook) may hold several statements separated by `;`.
They run in order; the result of the last one is displayed, as in a Databricks notebook. The splitter
knows quoted strings ('...', "...", `...`, with backslash escapes), `--` line comments and `/* */`
block comments, so a `;` inside any of them does not split.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_sql", "split_statements"]


def split_statements(text: str) -> list[str]:
    """The non-empty statements of `text`, stripped, without their terminating `;`."""
    statements: list[str] = []
    start = 0
    i = 0
    n = len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote is not None:
            if ch == "\\" and quote != "`":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        elif ch == ";":
            statements.append(text[start:i])
            start = i + 1
        i += 1
    statements.append(text[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    """False for a statement made only of blanks and comments (Spark rejects those)."""
    rest = statement
    while True:
        rest = rest.lstrip()
        if rest.startswith("--"):
            newline = rest.find("\n")
            rest = "" if newline < 0 else rest[newline + 1 :]
        elif rest.startswith("/*"):
            end = rest.find("*/")
            rest = "" if end < 0 else rest[end + 2 :]
        else:
            return bool(rest)


def run_sql(spark: Any, text: str) -> Any:
    """Run every statement of `text` with `spark.sql`; the DataFrame of the last one, or None if none."""
    result = None
    for statement in split_statements(text):
        result = spark.sql(statement)
    return result
