"""Azure Storage limits, enforced in core for every adapter (Azurite checks only some of them).

Each check raises `LimitExceeded` with a message naming the limit, the offending value and the rule, before
anything is sent or written. Where Azure and Azurite differ, the stricter rule wins (keys: Azurite caps them
at 512 characters, Azure at 1 KiB). Entity sizes are estimated the way Azure counts them: strings in UTF-16.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from core.store.ports import BatchOp, Entity, LimitExceeded, Value

MAX_KEY_CHARS = 512
MAX_PROPERTIES = 252
MAX_STRING_UNITS = 32_768  # UTF-16 code units: 64 KiB
MAX_BYTES_PROPERTY = 65_536
MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTY_NAME_CHARS = 255
MAX_BATCH_OPS = 100
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_PAGE_SIZE = 1000
MAX_MESSAGE_BYTES = 49_152  # 64 KiB once base64-encoded, as Azure Functions queue triggers expect
MAX_RECEIVE_MESSAGES = 32
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600
MAX_BLOB_PATH_CHARS = 1024
MAX_APPEND_BYTES = 4 * 1024 * 1024

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

_BAD_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_NAMES = frozenset({"partitionkey", "rowkey", "timestamp", "etag"})
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
_QUEUE_NAME = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")
_BAD_PATH_CHARS = re.compile(r"[\\\x00-\x1f\x7f-\x9f]")


def _show(value: str, limit: int = 60) -> str:
    """A repr short enough for an error message."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _check_text(where: str, text: str) -> None:
    """Text that UTF-8 can carry: Python strings may hold lone surrogates, which no wire format accepts."""
    if not text.isascii() and _LONE_SURROGATE.search(text):
        raise LimitExceeded(f"{where} holds a lone surrogate, which is not valid Unicode text")


def _utf16_units(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def check_key(kind: str, key: str) -> None:
    """`kind` is "PartitionKey" or "RowKey"."""
    if not isinstance(key, str):
        raise LimitExceeded(f"{kind} must be a string, got {type(key).__name__}")
    if len(key) > MAX_KEY_CHARS:
        raise LimitExceeded(
            f"{kind} {_show(key)} has {len(key):,} characters; a key holds at most {MAX_KEY_CHARS}"
        )
    bad = _BAD_KEY_CHARS.search(key)
    if bad is not None:
        raise LimitExceeded(
            f"{kind} {_show(key)} contains {bad.group()!r}; "
            "keys may not contain / \\ # ?, control characters or lone surrogates"
        )


def check_keys(partition_key: str, row_key: str) -> None:
    check_key("PartitionKey", partition_key)
    check_key("RowKey", row_key)


def _value_size(where: str, value: Value) -> int:
    """The value's size as Azure counts it; raises LimitExceeded for a value Azure would refuse."""
    if isinstance(value, str):
        _check_text(where, value)
        units = len(value) if len(value) * 2 <= MAX_STRING_UNITS else _utf16_units(value)
        if units > MAX_STRING_UNITS:
            raise LimitExceeded(
                f"{where} is a string of {units:,} UTF-16 units; a string property holds at most "
                f"{MAX_STRING_UNITS:,} (64 KiB); store large values in a blob"
            )
        return 4 + 2 * units
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise LimitExceeded(f"{where} = {value} is outside the int64 range")
        return 4 if _INT32_MIN <= value <= _INT32_MAX else 8
    if isinstance(value, float):
        return 8
    if isinstance(value, bytes):
        if len(value) > MAX_BYTES_PROPERTY:
            raise LimitExceeded(
                f"{where} holds {len(value):,} bytes; a bytes property holds at most {MAX_BYTES_PROPERTY:,} "
                "(64 KiB); store large values in a blob"
            )
        return 4 + len(value)
    raise LimitExceeded(f"{where} has type {type(value).__name__}; allowed: str, int, float, bool, bytes")


def check_entity(entity: Entity) -> dict[str, Value]:
    """Check keys, property names, values and the estimated size; returns the properties without Nones."""
    return _measure(entity)[0]


def _measure(entity: Entity) -> tuple[dict[str, Value], int]:
    """The entity's properties without Nones and its estimated size on the wire (bytes go as base64)."""
    check_keys(entity.partition_key, entity.row_key)
    properties = {name: value for name, value in entity.properties.items() if value is not None}
    if len(properties) > MAX_PROPERTIES:
        raise LimitExceeded(
            f"entity ({_show(entity.partition_key)}, {_show(entity.row_key)}) has {len(properties)} "
            f"properties; an entity holds at most {MAX_PROPERTIES}"
        )
    size = 4 + 2 * (len(entity.partition_key) + len(entity.row_key))
    binary = 0
    for name, value in properties.items():
        if (
            not isinstance(name, str)
            or len(name) > MAX_PROPERTY_NAME_CHARS
            or not _PROPERTY_NAME.fullmatch(name)
            or name.lower() in _RESERVED_NAMES
        ):
            raise LimitExceeded(
                f"property name {name!r} is invalid: use at most {MAX_PROPERTY_NAME_CHARS} letters, digits "
                "and underscores, not starting with a digit, and none of PartitionKey, RowKey, Timestamp, "
                "etag"
            )
        size += 8 + 2 * len(name) + _value_size(f"property {name!r}", value)
        if isinstance(value, bytes):
            binary += len(value)
    if size > MAX_ENTITY_BYTES:
        raise LimitExceeded(
            f"entity ({_show(entity.partition_key)}, {_show(entity.row_key)}) is about {size:,} bytes as "
            f"Azure counts it (UTF-16 strings); an entity holds at most {MAX_ENTITY_BYTES:,} (1 MiB); "
            "store large values in a blob"
        )
    return properties, size + binary // 3 + 1


def check_batch(ops: Sequence[BatchOp]) -> list[dict[str, Value]]:
    """Check the batch as a whole and each entity in it; returns each entity's properties without Nones."""
    if len(ops) > MAX_BATCH_OPS:
        raise LimitExceeded(f"a batch of {len(ops)} operations; a batch holds at most {MAX_BATCH_OPS}")
    seen: set[str] = set()
    partition = ops[0].entity.partition_key if ops else ""
    result: list[dict[str, Value]] = []
    total = 0
    for index, op in enumerate(ops):
        if op.kind not in ("insert", "replace", "upsert", "delete"):
            raise LimitExceeded(f"batch operation {index} has unknown kind {op.kind!r}")
        entity = op.entity
        if entity.partition_key != partition:
            raise LimitExceeded(
                f"batch operation {index} is on partition {_show(entity.partition_key)} but operation 0 on "
                f"{_show(partition)}; a batch works on one partition"
            )
        if entity.row_key in seen:
            raise LimitExceeded(
                f"batch operation {index} touches RowKey {_show(entity.row_key)} again; an entity may appear "
                "at most once in a batch"
            )
        seen.add(entity.row_key)
        if op.kind == "replace" and entity.etag is None:
            raise ValueError(f"batch operation {index} is a replace without the entity's etag")
        if op.kind == "delete":
            check_keys(entity.partition_key, entity.row_key)
            result.append({})
            continue
        properties, size = _measure(entity)
        total += size
        if total > MAX_BATCH_BYTES:
            raise LimitExceeded(
                f"a batch of about {total:,} bytes by operation {index}; a batch holds at most "
                f"{MAX_BATCH_BYTES:,} (4 MiB)"
            )
        result.append(properties)
    return result


def check_page_size(limit: int | None) -> int:
    """The page size to use: `limit`, or the maximum when it is None."""
    if limit is None:
        return MAX_PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise LimitExceeded(f"query limit {limit} is outside 1..{MAX_PAGE_SIZE}")
    return limit


def check_table_name(name: str) -> None:
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name) or name.lower() == "tables":
        raise LimitExceeded(
            f"table name {name!r} is invalid: 3-63 letters and digits, starting with a letter (not 'tables')"
        )


def check_queue_name(name: str, what: str = "queue") -> None:
    """Also the rule for blob container names."""
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        raise LimitExceeded(
            f"{what} name {name!r} is invalid: 3-63 lowercase letters, digits and single hyphens, starting "
            "and ending with a letter or digit"
        )


def check_message(body: str) -> None:
    if not isinstance(body, str):
        raise LimitExceeded(f"a message body must be text, got {type(body).__name__}")
    _check_text("a message body", body)
    if len(body) * 4 > MAX_MESSAGE_BYTES:  # cheap bound first: at most 4 UTF-8 bytes per character
        size = len(body.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            raise LimitExceeded(
                f"a message body of {size:,} UTF-8 bytes; a message holds at most {MAX_MESSAGE_BYTES:,} "
                "(48 KiB, 64 KiB once base64-encoded); put large payloads in a blob"
            )


def _check_seconds(what: str, seconds: float, low: float) -> None:
    if not (isinstance(seconds, int | float) and math.isfinite(seconds)) or not (
        low <= seconds <= MAX_VISIBILITY_SECONDS
    ):
        bound = "0 <" if low > 0 else "0 <="
        raise LimitExceeded(
            f"{what} {seconds!r} is outside {bound} seconds <= {MAX_VISIBILITY_SECONDS} (7 days)"
        )


def check_delay(seconds: float) -> None:
    _check_seconds("delay_seconds", seconds, 0)


def check_visibility(seconds: float, *, allow_zero: bool) -> None:
    """A receive needs a positive visibility timeout; an extend may release the message with 0."""
    _check_seconds("visibility_timeout", seconds, 0 if allow_zero else 1e-3)


def check_receive(max_messages: int, visibility_timeout: float, wait_seconds: float) -> None:
    if not 1 <= max_messages <= MAX_RECEIVE_MESSAGES:
        raise LimitExceeded(f"max_messages {max_messages} is outside 1..{MAX_RECEIVE_MESSAGES}")
    check_visibility(visibility_timeout, allow_zero=False)
    if not (math.isfinite(wait_seconds) and wait_seconds >= 0):
        raise LimitExceeded(f"wait_seconds {wait_seconds!r} must be a finite number >= 0")


def check_blob_path(path: str) -> None:
    if not isinstance(path, str) or not path:
        raise LimitExceeded(f"blob path {path!r} is invalid: it must be a non-empty string")
    if len(path) > MAX_BLOB_PATH_CHARS:
        raise LimitExceeded(
            f"blob path {_show(path)} has {len(path):,} characters; "
            f"a path holds at most {MAX_BLOB_PATH_CHARS}"
        )
    if _BAD_PATH_CHARS.search(path) or any(part in ("", ".", "..") for part in path.split("/")):
        raise LimitExceeded(
            f"blob path {_show(path)} is invalid: '/'-separated segments, no leading '/', no empty, '.' or "
            "'..' segments, no backslash or control characters"
        )


def check_append(data: bytes) -> None:
    if len(data) > MAX_APPEND_BYTES:
        raise LimitExceeded(
            f"an append of {len(data):,} bytes; one append holds at most {MAX_APPEND_BYTES:,}"
        )


def check_range(offset: int, length: int | None) -> None:
    if offset < 0 or (length is not None and length < 0):
        raise LimitExceeded(f"blob range offset={offset}, length={length}: both must be >= 0")


def check_prefix(prefix: str) -> None:
    """The isolation prefix of table, queue and container names."""
    if not re.fullmatch(r"[a-z0-9]{0,20}", prefix):
        raise LimitExceeded(f"storage prefix {prefix!r} is invalid: at most 20 lowercase letters and digits")
