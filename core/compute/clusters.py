"""The cluster port: what a Spark cluster is to Floe, and the `ClusterProvider` contract that makes one.

A cluster is described by a `ClusterSpec` (the Jobs API `new_cluster` / Clusters API `create` body), made real
by a `ClusterProvider`, and known afterwards by its `ClusterHandle`: the endpoints a task connects to and
the processes that have to be killed to end it. Handles are small JSON, persisted on the cluster record
(`core.clusters`), so a later process or host can check the cluster and terminate it.

Contract of every provider:

- `create` is blocking: it returns once the cluster accepts Spark Connect sessions, or raises
  `ClusterError` (whose message ends with the tail of the Spark log) after killing whatever it started.
  `on_started`, when given, is called with the handle as soon as the processes exist and before the wait
  for readiness, so the caller can persist them: a caller that dies during the wait leaves processes that
  a later `reap` can still find and kill.
- `is_alive` is cheap (reads /proc), may be asked from any process of the host that started the cluster,
  and is False for processes of another host or boot (they cannot be seen from here).
- `terminate` is idempotent: it kills every process group of the cluster (SIGTERM, then SIGKILL after
  `grace_seconds`), returns once they are gone, and does nothing for a remote cluster or a handle whose
  processes already ended. No JVM of the cluster is left behind, executors included.

A *remote* cluster (`spark_connect_url` or `master_url` in the spec) runs elsewhere: Floe starts no process
for it, considers it alive, and never terminates it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.compute.process import ProcessHandle
from core.errors import FloeError, InvalidParameterValue

__all__ = [
    "ClusterError",
    "ClusterHandle",
    "ClusterProvider",
    "ClusterSource",
    "ClusterSpec",
    "ClusterState",
]

_HANDLE_VERSION = 1
_MAX_WORKERS = 100_000
_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


class ClusterError(FloeError):
    """A cluster could not be started (or died while starting). The message says why and ends with the tail
    of the Spark log; the cluster record goes to ERROR with it as `state_message`."""

    error_code = "INTERNAL_ERROR"
    http_status = 500


class ClusterState(enum.StrEnum):
    """The Clusters API's `state`. Floe uses PENDING, RUNNING, RESTARTING, TERMINATING, TERMINATED and
    ERROR; RESIZING and UNKNOWN exist for clients that expect them."""

    PENDING = "PENDING"  # being created (processes starting, or claimed by a host that will start them)
    RUNNING = "RUNNING"  # accepts Spark Connect sessions
    RESTARTING = "RESTARTING"  # the processes are being replaced (restart)
    RESIZING = "RESIZING"
    TERMINATING = "TERMINATING"  # asked to end; the owning host kills the processes
    TERMINATED = "TERMINATED"  # no process left; `start` brings it back (all-purpose clusters)
    ERROR = "ERROR"  # the start failed; `state_message` says why
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in (ClusterState.TERMINATED, ClusterState.ERROR)


class ClusterSource(enum.StrEnum):
    JOB = "JOB"  # a job cluster: made for one run, terminated when the run ends
    API = "API"  # an all-purpose cluster made through the Clusters API; never terminated by a run


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A cluster's settings, as the Jobs API `new_cluster` and the Clusters API `create` carry them.

    `spark_version` and `node_type_id` are kept (and shown back) but mean nothing locally. Either
    `num_workers` or `autoscale` (`min_workers` <= `max_workers`) sizes the cluster. `spark_connect_url` /
    `master_url` (Floe's extension) register a remote cluster instead of starting one. `raw` is the body as
    given, so a client reads back every field it sent.
    """

    cluster_name: str = ""
    spark_version: str = ""
    node_type_id: str = ""
    num_workers: int | None = None
    autoscale_min: int | None = None
    autoscale_max: int | None = None
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    spark_env_vars: Mapping[str, str] = field(default_factory=dict)
    custom_tags: Mapping[str, str] = field(default_factory=dict)
    spark_connect_url: str | None = None
    master_url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_remote(self) -> bool:
        return bool(self.spark_connect_url or self.master_url)

    @property
    def workers(self) -> int:
        """How many workers were asked for: `num_workers`, else `autoscale.max_workers`, else 0."""
        if self.num_workers is not None:
            return self.num_workers
        return self.autoscale_max or 0

    @classmethod
    def from_dict(cls, body: Mapping[str, Any], *, field_name: str = "new_cluster") -> ClusterSpec:
        """Parse and validate; raises `InvalidParameterValue` naming the field, the value and the rule."""
        if not isinstance(body, Mapping):
            raise InvalidParameterValue(f"{field_name} must be an object, not {_shown(body)}.")
        num_workers = body.get("num_workers")
        if num_workers is not None:
            num_workers = _count(num_workers, f"{field_name}.num_workers", minimum=0)
        auto_min = auto_max = None
        autoscale = body.get("autoscale")
        if autoscale is not None:
            if not isinstance(autoscale, Mapping):
                raise InvalidParameterValue(
                    f"{field_name}.autoscale must be an object, not {_shown(autoscale)}."
                )
            auto_min = _count(autoscale.get("min_workers"), f"{field_name}.autoscale.min_workers", minimum=1)
            auto_max = _count(autoscale.get("max_workers"), f"{field_name}.autoscale.max_workers", minimum=1)
            if auto_min > auto_max:
                raise InvalidParameterValue(
                    f"{field_name}.autoscale.min_workers ({auto_min}) must not exceed "
                    f"{field_name}.autoscale.max_workers ({auto_max})."
                )
        connect = _optional_text(body, "spark_connect_url", field_name)
        master = _optional_text(body, "master_url", field_name)
        if connect is not None and not connect.startswith("sc://"):
            raise InvalidParameterValue(
                f"{field_name}.spark_connect_url must start with 'sc://', not {connect!r}."
            )
        if master is not None and not master.startswith("spark://"):
            raise InvalidParameterValue(
                f"{field_name}.master_url must start with 'spark://', not {master!r}."
            )
        if num_workers is None and autoscale is None and connect is None and master is None:
            raise InvalidParameterValue(
                f"{field_name} must set num_workers or autoscale (or spark_connect_url / master_url for a "
                "cluster that runs elsewhere)."
            )
        return cls(
            cluster_name=_optional_text(body, "cluster_name", field_name) or "",
            spark_version=_optional_text(body, "spark_version", field_name) or "",
            node_type_id=_optional_text(body, "node_type_id", field_name) or "",
            num_workers=num_workers,
            autoscale_min=auto_min,
            autoscale_max=auto_max,
            spark_conf=_string_map(body.get("spark_conf"), f"{field_name}.spark_conf"),
            spark_env_vars=_string_map(body.get("spark_env_vars"), f"{field_name}.spark_env_vars"),
            custom_tags=_string_map(body.get("custom_tags"), f"{field_name}.custom_tags"),
            spark_connect_url=connect,
            master_url=master,
            raw=dict(body),
        )


@dataclass(frozen=True, slots=True)
class ClusterHandle:
    """A cluster that exists: its endpoints and, for a local one, its processes (driver first).

    `spark_connect_url` is what tasks get as `SPARK_REMOTE`; `master_url` is the standalone master (None for
    a `local[N]` cluster); `ui_url` the Spark UI when enabled.
    """

    cluster_id: str
    spark_connect_url: str | None
    master_url: str | None = None
    ui_url: str | None = None
    processes: tuple[ProcessHandle, ...] = ()
    remote: bool = False
    log_dir: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": _HANDLE_VERSION,
                "cluster_id": self.cluster_id,
                "spark_connect_url": self.spark_connect_url,
                "master_url": self.master_url,
                "ui_url": self.ui_url,
                "processes": [json.loads(p.to_json()) for p in self.processes],
                "remote": self.remote,
                "log_dir": self.log_dir,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ClusterHandle:
        """Parse `to_json` output; ValueError for anything else or a handle from a newer Floe."""
        try:
            data = json.loads(text)
            if int(data["v"]) > _HANDLE_VERSION:
                raise ValueError(f"cluster handle version {data['v']} is newer than {_HANDLE_VERSION}")
            return cls(
                cluster_id=str(data["cluster_id"]),
                spark_connect_url=data.get("spark_connect_url"),
                master_url=data.get("master_url"),
                ui_url=data.get("ui_url"),
                processes=tuple(ProcessHandle.from_json(json.dumps(p)) for p in data.get("processes", ())),
                remote=bool(data.get("remote", False)),
                log_dir=data.get("log_dir"),
            )
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a cluster handle: {text[:200]!r}") from exc


class ClusterProvider(Protocol):
    """Makes clusters real. See the module docstring for the contract every method keeps."""

    def create(
        self,
        cluster_id: str,
        spec: ClusterSpec,
        log_dir: Path,
        *,
        on_started: Callable[[ClusterHandle], None] | None = None,
    ) -> ClusterHandle:
        """Start the cluster and return once it accepts Spark Connect sessions. Logs go to files in
        `log_dir`. Raises `ClusterError` (with the log tail) after cleaning up what it started."""
        ...

    def register_remote(self, cluster_id: str, spec: ClusterSpec) -> ClusterHandle:
        """A handle for a cluster that runs elsewhere (`spec.is_remote`); starts nothing."""
        ...

    def is_alive(self, handle: ClusterHandle) -> bool:
        """True while every process of the cluster runs (always True for a remote cluster)."""
        ...

    def terminate(self, handle: ClusterHandle, *, grace_seconds: float = 10) -> None:
        """Kill every process group of the cluster and wait for them to end. Idempotent; a no-op for a
        remote cluster."""
        ...


# ------------------------------------------------------------------------------------------------ parsing


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_WORKERS:
        raise InvalidParameterValue(
            f"{name} must be an integer between {minimum} and {_MAX_WORKERS}, not {_shown(value)}."
        )
    return value


def _optional_text(body: Mapping[str, Any], key: str, field_name: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameterValue(f"{field_name}.{key} must be a string, not {_shown(value)}.")
    return value


def _string_map(value: Any, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParameterValue(f"{name} must be an object of strings, not {_shown(value)}.")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or not _KEY.match(key):
            raise InvalidParameterValue(
                f"{name} has the key {_shown(key)}; keys are letters, digits, '_', '.' and '-'."
            )
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        if not isinstance(item, str):
            raise InvalidParameterValue(f"{name}.{key} must be a string, not {_shown(item)}.")
        result[key] = item
    return result
