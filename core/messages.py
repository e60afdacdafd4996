"""The queue messages Floe sends itself, and their validation.

A message is small JSON: `{"v": 1, "kind": ..., "run_id": ..., ...}`, plus the W3C `traceparent` of the run.
Queues deliver at least once and out of order, so every kind is handled idempotently: the handler reads
the current state and decides from it. A message that does not parse is poison: it is never retried.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from core.errors import FloeError

VERSION = 1
WORK_QUEUE = "floe-work"  # run.advance, run.poll (and task.start unless runners run tasks), for every host
TASK_QUEUE = "floe-tasks"  # task.start when runners run tasks (FLOE_TASKS=runners): only `floe runner` hosts
POISON_SUFFIX = "-poison"
MAX_DEQUEUE = 5  # deliveries before a message moves to `<queue>-poison`, as the Functions host does

Kind = Literal[
    "run.advance",
    "task.start",
    "run.poll",
    "task.kill",
    "cluster.start",
    "cluster.restart",
    "cluster.terminate",
]
_KINDS: frozenset[str] = frozenset(get_args(Kind))
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


class InvalidMessage(FloeError):
    """A queue message that is not one Floe understands; moved to the poison queue at once."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


@dataclass(frozen=True, slots=True)
class WorkMessage:
    """One unit of work. `cluster.*` kinds (a cluster's start handed to the runners, its restart or
    termination to the runner that owns it) name a `cluster_id` and no run (`run_id` 0)."""

    kind: Kind
    run_id: int
    task_run_id: int | None = None
    reason: str | None = None  # task.kill: the Result the killed attempt ends with
    traceparent: str | None = None  # the W3C context of the run's span (`core.telemetry.context`)
    delay_ms: int | None = None  # sent with a delay of this long (so its queue age leaves the delay out)
    cluster_id: str | None = None  # cluster.*: the cluster

    def encode(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if v is not None and not (k == "run_id" and v == 0)}
        body: dict[str, Any] = {"v": VERSION, **fields}
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> WorkMessage:
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidMessage(f"queue message is not JSON: {text[:200]!r}") from None
        if not isinstance(data, dict):
            raise InvalidMessage(f"queue message is not a JSON object: {text[:200]!r}")
        version = data.get("v")
        if version != VERSION:
            raise InvalidMessage(f"queue message version {version!r} is not {VERSION}: {text[:200]!r}")
        kind = data.get("kind")
        if kind not in _KINDS:
            raise InvalidMessage(f"queue message kind {kind!r} is not one of {sorted(_KINDS)}")
        if kind.startswith("cluster."):
            cluster_id = data.get("cluster_id")
            if not isinstance(cluster_id, str) or not _CLUSTER_ID.match(cluster_id):
                raise InvalidMessage(f"queue message of kind {kind} has no valid cluster_id: {cluster_id!r}")
            return cls(kind, 0, cluster_id=cluster_id, traceparent=_text(data, "traceparent"))  # type: ignore[arg-type]
        run_id = _id(data, "run_id", required=True) or 0
        task_run_id = _id(data, "task_run_id", required=kind not in ("run.advance", "run.poll"))
        reason = _text(data, "reason")
        traceparent = _text(data, "traceparent")
        delay_ms = data.get("delay_ms")
        if delay_ms is not None and (isinstance(delay_ms, bool) or not isinstance(delay_ms, int)):
            raise InvalidMessage(f"queue message field delay_ms {delay_ms!r} is not an integer")
        return cls(kind, run_id, task_run_id, reason, traceparent, delay_ms)  # type: ignore[arg-type]


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidMessage(f"queue message field {name} {value!r} is not a string")
    return value


def _id(data: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidMessage(f"queue message of kind {data.get('kind')} lacks {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise InvalidMessage(f"queue message field {name} {value!r} is not a positive int64")
    return value


def host_queue(host_id: str) -> str:
    """The queue of one host: work only that host can do (killing a process it started, a task start on
    a cluster it runs, restarting or terminating that cluster)."""
    return f"floe-host-{host_id}"
