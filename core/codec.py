"""Turning engine records into table properties and back.

Scalars are stored as they are; enums by value; nested values (dicts, tuples, `Termination`, repair
entries) as compact JSON. Every entity carries the schema version `v`; a reader refuses a newer one.
Long free text (state messages, errors) is cut so an entity stays far below Azure's 64 KiB per property.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from functools import cache
from typing import Any, TypeVar

from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, TerminationCode, TerminationType
from core.errors import SchemaVersionError

SCHEMA_VERSION = 1
MAX_TEXT = 8_000  # characters kept of a state message or error inline; the whole text goes to a blob

R = TypeVar("R", Run, TaskRun)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if v not in (None, (), "")}
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 20] + " … [truncated]"


def encode(record: Run | TaskRun) -> dict[str, Any]:
    """The properties of a record: None values left out, nested values as JSON."""
    props: dict[str, Any] = {"v": SCHEMA_VERSION}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None or value == () or value == {}:
            continue
        if isinstance(value, Enum):
            props[f.name] = value.value
        elif isinstance(value, str | int | float | bool):
            props[f.name] = clip(value) if isinstance(value, str) and f.name in _CLIPPED else value
        else:
            props[f.name] = dumps(value)
    return props


def decode(cls: type[R], props: typing.Mapping[str, Any]) -> R:
    """A record from stored properties; refuses a schema newer than this Floe understands."""
    version = int(props.get("v", 1))
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"a stored {cls.__name__} has schema version {version}, newer than this Floe ({SCHEMA_VERSION}); "
            "upgrade Floe to read it"
        )
    kwargs: dict[str, Any] = {}
    for name, kind in _field_kinds(cls).items():
        if name not in props:
            continue
        raw = props[name]
        kwargs[name] = _decode_value(kind, raw)
    return cls(**kwargs)


_CLIPPED = frozenset({"state_message", "error"})


@cache
def _field_kinds(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _decode_value(kind: Any, raw: Any) -> Any:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) else kind
    if isinstance(base, type) and issubclass(base, Enum):
        return base(raw)
    if base is Termination:
        data = json.loads(raw)
        return Termination(
            code=TerminationCode(data["code"]),
            type=TerminationType(data["type"]),
            message=data.get("message", ""),
        )
    origin = typing.get_origin(base)
    if origin is tuple:
        items = json.loads(raw)
        item_kind = typing.get_args(base)[0]
        if item_kind is RepairEntry:
            return tuple(_repair_entry(item) for item in items)
        return tuple(items)
    if origin is dict or base is dict:
        return json.loads(raw) if isinstance(raw, str) else raw
    return raw


def _repair_entry(data: dict[str, Any]) -> RepairEntry:
    return RepairEntry(
        type=data["type"],
        id=data.get("id"),
        start_time=data.get("start_time", 0),
        end_time=data.get("end_time", 0),
        task_run_ids=tuple(data.get("task_run_ids", ())),
        life_cycle=LifeCycle(data["life_cycle"]) if data.get("life_cycle") else None,
        result=Result(data["result"]) if data.get("result") else None,
    )
