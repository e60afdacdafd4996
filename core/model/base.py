"""Shared pieces of the job-settings models: the base model, lenient scalar types, and the translation
of a pydantic `ValidationError` into one `InvalidParameterValue` that names path, value and rule."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from core.errors import InvalidParameterValue

MAX_ID = 2**63 - 1  # job and run ids are int64

# Databricks checks keys with Java's `\w`, which is ASCII-only.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-.]{1,100}")
PARAM_NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-.]+")


class Model(BaseModel):
    """Every Jobs API shape: unknown fields are kept so newer Databricks fields round-trip."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_default=False)


def scalar_to_str(value: Any) -> Any:
    """Parameter values are strings on the wire; numbers and booleans written by hand become strings
    (booleans as JSON spells them). Anything else is left for the `str` check to reject."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


# A string that also accepts a JSON number or boolean (converted to its string form).
ParamStr = Annotated[str, BeforeValidator(scalar_to_str)]


def join_path(root: str, *parts: str | int) -> str:
    """`settings` + `tasks`, 2, `task_key` -> `settings.tasks[2].task_key` (root may be empty)."""
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out


def show(value: Any, limit: int = 80) -> str:
    """A value as it appears in an error message: its repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(path: str, rule: str, value: Any = ..., *, detail: str = "") -> InvalidParameterValue:
    """The one message format of validation errors: `<path> <rule>; got <value>.`"""
    got = "" if value is ... else f"; got {show(value)}"
    return InvalidParameterValue(f"{path} {rule}{got}.{detail}")


def _rule(err: ErrorDetails) -> str:
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    fixed = {
        "missing": "is required",
        "string_type": "must be a string",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be an integer",
        "int_parsing_size": "must be an integer that fits in 64 bits",
        "bool_type": "must be a boolean",
        "bool_parsing": "must be a boolean",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "dict_type": "must be a JSON object",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "list_type": "must be a JSON array",
        "string_unicode": "must be a string",
    }
    if kind in fixed:
        return fixed[kind]
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected', '')}"
    bounds = {
        "greater_than_equal": ("ge", ">="),
        "greater_than": ("gt", ">"),
        "less_than_equal": ("le", "<="),
        "less_than": ("lt", "<"),
    }
    if kind in bounds:
        key, op = bounds[kind]
        return f"must be {op} {ctx.get(key)}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"must be at least {ctx.get('min_length')} characters"
        )
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return str(err.get("msg", "is invalid"))


def translate(exc: ValidationError, root: str) -> InvalidParameterValue:
    """The first error of `exc` as one message; a count says how many more there were."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = join_path(root, *first["loc"]) or "body"
    more = len(errors) - 1
    detail = f" ({more} more error{'s' if more > 1 else ''})" if more else ""
    value = (
        ... if first["type"] == "missing" or first["type"].startswith("model") else first.get("input", ...)
    )
    return invalid(path, _rule(first), value, detail=detail)


def require_object(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid(path or "body", "must be a JSON object", raw)
    return raw


def check_string_list(value: Any, path: str) -> Sequence[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(path, "must be a JSON array of strings", value)
    return value


def json_type(value: Any) -> str:
    """How an error message names the type of a parsed JSON value ("an array", "null", ...)."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else "a number"


def reject_json_constant(name: str) -> Any:
    """`json.loads(parse_constant=...)`: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")
