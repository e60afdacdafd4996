"""Run a SQL task: `python -u -P -m core.tasks.runtime.sql_runner [--param NAME=VALUE]... (FILE | --query
TEXT)`.

The statements of FILE (UTF-8) or TEXT are split with `core.tasks.runtime.sql.split_statements` and run
in order with the lazy `spark` of `core.tasks.runtime` (Spark Connect when `SPARK_REMOTE` is set, else a
local session). Each `--param` becomes a named argument of `spark.sql(statement, args={...})`, so
`:NAME` markers in any statement take VALUE as a string literal; a parameter no statement uses is
ignored. A statement that is a query but not the last one is executed in full (written to Spark's `noop`
sink): a `SELECT` whose rows raise, such as `SELECT raise_error(...)` in a check, fails the task as it
would on a SQL warehouse, without its rows being collected here.

Outputs, in the task folder (`FLOE_TASK_DIR`), each written atomically:

- `sql_output.json` on success: the rows of the LAST statement,
  `{"columns": [name, ...], "rows": [[value, ...], ...], "truncated": bool}`, at most 1000 rows and
  about 5 MB of JSON (`truncated` says rows were left out). Values are JSON: numbers, strings, booleans,
  null; decimals as strings, dates and timestamps in ISO 8601, binary as base64, structs as objects,
  arrays as lists, maps as objects with string keys, NaN and infinities as strings.
- `error.json` on failure: `{"error": "<ExceptionName>: message", "error_trace": "statement I of N:
  <statement>\n\n<traceback>", "cell": null}`; the `error` line is also printed on stderr.

Exit codes: 0 success, 1 a statement failed (or FILE holds no statement), 2 a bad invocation (unknown
option, FILE missing).
"""

from __future__ import annotations

import os
import sys

from core.tasks.runtime.protocol import ERROR_FILE, task_dir_from_env, write_json_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MAX_BYTES", "MAX_ROWS", "SQL_OUTPUT_FILE", "main", "result_document"]

SQL_OUTPUT_FILE = "sql_output.json"
MAX_ROWS = 1000
MAX_BYTES = 5 * 1024 * 1024
_MODULE = "core.tasks.runtime.sql_runner"
_USAGE = f"usage: python -m {_MODULE} [--param NAME=VALUE]... (FILE | --query TEXT)"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parsed = _parse(args)
    if isinstance(parsed, str):
        print(f"{parsed}\n{_USAGE}", file=sys.stderr)
        return 2
    params, file, query = parsed
    if file is not None:
        try:
            with open(file, encoding="utf-8-sig") as f:
                text = f.read()
        except OSError as exc:
            print(f"{sys.executable}: can't read SQL file {file!r}: {exc.strerror}", file=sys.stderr)
            return 2
    else:
        text = query or ""

    from core.tasks.runtime.sql import split_statements

    statements = split_statements(text)
    if not statements:
        return _fail(
            f"ValueError: {'the SQL file ' + repr(file) if file else 'the query'} holds no statement"
        )

    from core.tasks.runtime import spark

    folder = task_dir_from_env()
    last = len(statements) - 1
    for i, statement in enumerate(statements):
        try:
            df = spark.sql(statement, args=params) if params else spark.sql(statement)
            if i < last:
                df.write.format("noop").mode("overwrite").save()
                continue
            document = result_document(df.columns, df.limit(MAX_ROWS + 1).collect())
        except Exception as exc:
            import traceback

            trace = "".join(traceback.format_exception(exc))
            where = f"statement {i + 1} of {len(statements)}:\n{statement}\n\n"
            return _fail(f"{type(exc).__name__}: {str(exc).rstrip()}", where + trace)
    if folder is not None:
        write_json_atomic(os.path.join(folder, SQL_OUTPUT_FILE), document)
    return 0


def result_document(columns: list[str], rows: list[Any]) -> dict[str, Any]:
    """`{"columns", "rows", "truncated"}` for `rows` (Spark Rows or sequences), capped at MAX_ROWS rows and
    about MAX_BYTES of JSON."""
    import json

    out: list[list[Any]] = []
    size = 0
    truncated = len(rows) > MAX_ROWS
    for row in rows[:MAX_ROWS]:
        values = [_json_value(v) for v in row]
        size += len(json.dumps(values, ensure_ascii=False).encode("utf-8")) + 1
        if size > MAX_BYTES:
            truncated = True
            break
        out.append(values)
    return {"columns": list(columns), "rows": out, "truncated": truncated}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "asDict"):  # a struct: pyspark Row
        return {k: _json_value(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "isoformat"):  # date, datetime, time
        return value.isoformat()
    return str(value)  # Decimal, timedelta, anything else


def _parse(args: list[str]) -> tuple[dict[str, str], str | None, str | None] | str:
    params: dict[str, str] = {}
    file: str | None = None
    query: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--param", "--query"):
            if i + 1 >= len(args):
                return f"{arg} needs a value"
            value = args[i + 1]
            if arg == "--query":
                query = value
            else:
                name, eq, val = value.partition("=")
                if not eq or not name:
                    return f"--param {value!r}: expected NAME=VALUE"
                params[name] = val
            i += 2
        elif arg.startswith("-") and arg != "-":
            return f"unknown option {arg!r}"
        elif file is None:
            file = arg
            i += 1
        else:
            return f"unexpected argument {arg!r}"
    if (file is None) == (query is None):
        return "give either FILE or --query TEXT"
    return params, file, query


def _fail(error: str, trace: str | None = None) -> int:
    print(error, file=sys.stderr)
    folder = task_dir_from_env()
    if folder is not None and os.path.isdir(folder):
        write_json_atomic(
            os.path.join(folder, ERROR_FILE), {"error": error, "error_trace": trace, "cell": None}
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
