"""Databricks source notebooks (`.py` / `.sql` files as exported by Databricks), parsed into cells.

A Python source notebook starts with `# Databricks notebook source`; cells are separated by lines
`# COMMAND ----------`; a cell may start with `# DBTITLE 1,<title>`; a cell in another language has every
line prefixed with `# MAGIC` and starts with a magic command. A SQL source notebook is the same with `--`
instead of `#`, and its plain cells are SQL. How each kind of cell becomes a Jupyter cell:

| Databricks cell | Jupyter cell |
|---|---|
| plain Python, `%python` | code, as is |
| `%md`, `%md-sandbox` | markdown |
| `%sql`, a plain cell of a `.sql` notebook | code `%%sql` + the SQL (1) |
| `%pip ...` | code `%pip ...`: IPython runs pip with the kernel's own interpreter |
| `%sh` | code `%%sh` + the script: run by `sh`; a non-zero exit fails the cell |
| anything else (`%scala`, `%r`, `%run`, `%fs`, ...) | code that raises NotImplementedError (2) |

(1) The kernel's `%%sql` magic (`core.tasks.runtime.kernel`) runs each statement with `spark.sql` and
displays the result of the last one. (2) The message names the magic; the original lines are kept above
the `raise` as comments.

This module is pure text processing (`parse_source` returns `SourceCell`s); `core.tasks.notebook` turns
them into an nbformat notebook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SourceCell", "UnsupportedNotebook", "parse_source", "source_language"]

CellType = Literal["code", "markdown"]
Language = Literal["python", "sql"]

_COMMENT: dict[Language, str] = {"python": "#", "sql": "--"}
_MAGIC = re.compile(r"^%(\S+)")
_TITLE = re.compile(r"^DBTITLE\s+\d+\s*,\s*(.*)$")


class UnsupportedNotebook(ValueError):
    """The file is a notebook Floe cannot run (a Scala or R notebook, an unknown format)."""


@dataclass(frozen=True, slots=True)
class SourceCell:
    cell_type: CellType
    source: str
    metadata: dict[str, str] = field(default_factory=dict)


def source_language(text: str) -> Language | None:
    """The language of a Databricks source notebook from its first line, or None if `text` is not one.

    Raises UnsupportedNotebook for a Scala source notebook (`// Databricks notebook source`).
    """
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first == "# Databricks notebook source":
        return "python"
    if first == "-- Databricks notebook source":
        return "sql"
    if first == "// Databricks notebook source":
        raise UnsupportedNotebook("Scala notebooks are not supported by Floe; only Python and SQL notebooks")
    return None


def parse_source(text: str, language: Language) -> list[SourceCell]:
    """The cells of a Databricks source notebook (header line included in `text`)."""
    comment = _COMMENT[language]
    separator = f"{comment} COMMAND ----------"
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").split("\n")[1:]  # drop the header line
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line.rstrip() == separator:
            chunks.append([])
        else:
            chunks[-1].append(line)
    cells = []
    for chunk in chunks:
        cell = _cell(chunk, language, comment)
        if cell is not None:
            cells.append(cell)
    return cells


def _strip_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _cell(chunk: list[str], language: Language, comment: str) -> SourceCell | None:
    lines = _strip_blank_edges(chunk)
    metadata: dict[str, str] = {}
    if lines:
        title = _TITLE.match(lines[0].removeprefix(comment).strip())
        if lines[0].startswith(comment) and title:
            metadata["title"] = title.group(1).strip()
            lines = _strip_blank_edges(lines[1:])
    if not lines:
        return None
    magic_prefix = f"{comment} MAGIC"
    if all(line.startswith(magic_prefix) or not line.strip() for line in lines) and lines[0].startswith(
        magic_prefix
    ):
        body = [_unmagic(line, magic_prefix) for line in lines]
        return _magic_cell(body, metadata, comment)
    source = "\n".join(lines)
    if language == "sql":
        return SourceCell("code", _sql(source), metadata)
    return SourceCell("code", source, metadata)


def _unmagic(line: str, prefix: str) -> str:
    rest = line[len(prefix) :]
    return rest[1:] if rest.startswith(" ") else rest


def _magic_cell(body: list[str], metadata: dict[str, str], comment: str) -> SourceCell:
    first = body[0].strip()
    match = _MAGIC.match(first)
    if match is None:  # `# MAGIC` lines without a magic command: Python, as Databricks treats them
        return SourceCell("code", "\n".join(body).strip("\n"), metadata)
    magic = match.group(1)
    rest = "\n".join([first[match.end() :].strip(), *body[1:]]).strip("\n")
    if magic in ("md", "md-sandbox"):
        return SourceCell("markdown", rest.strip(), metadata)
    if magic == "sql":
        return SourceCell("code", _sql(rest), metadata)
    if magic == "python":
        return SourceCell("code", rest, metadata)
    if magic == "pip":
        return SourceCell("code", "\n".join(line.strip() for line in body if line.strip()), metadata)
    if magic == "sh":
        return SourceCell("code", f"%%sh\n{rest}", metadata)
    original = "\n".join(f"# {line}".rstrip() for line in body)
    message = f"%{magic} cells are not supported by Floe (supported: %python, %sql, %md, %pip, %sh)"
    return SourceCell("code", f"{original}\nraise NotImplementedError({message!r})", metadata)


def _sql(text: str) -> str:
    return f"%%sql\n{text.strip()}"
