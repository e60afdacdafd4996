"""The `clusters/*` endpoints: the Clusters API subset clients use (create, get, list, start, restart,
delete, permanent-delete, edit), mounted under every API version like the jobs routes (the SDK calls
`/api/2.1/clusters/...`, older clients `/api/2.0/...`).

The service is `call.floe.clusters` (a `ClustersApi`, implemented by `core.clusters.ClusterService`). A
missing cluster is 400 INVALID_PARAMETER_VALUE "Cluster <id> does not exist.", the wording the Databricks
SDK turns into `ResourceDoesNotExist` for `clusters/get`.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from core.api.call import Call, Endpoint
from core.clusters import ClusterRecord
from core.compute.clusters import ClusterSource
from core.errors import InvalidParameterValue

__all__ = ["ROUTES", "ClustersApi", "render_cluster"]

# Fields of the create / edit body that are stored and shown back as given.
_SPEC_FIELDS = (
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autoscale",
    "spark_conf",
    "spark_env_vars",
    "custom_tags",
    "autotermination_minutes",
    "data_security_mode",
    "runtime_engine",
    "single_user_name",
    "policy_id",
    "spark_connect_url",
    "master_url",
)


class ClustersApi(Protocol):
    """What the routes need of the cluster service; every method raises `FloeError`s (a missing cluster is
    `ClusterNotFound`)."""

    def create(self, spec: dict[str, Any], *, creator: str) -> str: ...

    def get(self, cluster_id: str) -> ClusterRecord: ...

    def list(self) -> builtins.list[ClusterRecord]: ...

    def start(self, cluster_id: str) -> None: ...

    def restart(self, cluster_id: str) -> None: ...

    def terminate(self, cluster_id: str, *, reason: str = ...) -> None: ...

    def permanent_delete(self, cluster_id: str) -> None: ...

    def edit(self, cluster_id: str, spec: dict[str, Any]) -> None: ...


def _service(call: Call) -> ClustersApi:
    service = getattr(call.floe, "clusters", None)
    if service is None:
        raise InvalidParameterValue("This Floe server does not manage clusters.")
    return service  # type: ignore[no-any-return]


def _cluster_id(call: Call) -> str:
    value = call.params.get("cluster_id")
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterValue(f"cluster_id must be a non-empty string, not {value!r}.")
    return value.strip()


def _spec(call: Call) -> dict[str, Any]:
    return {k: call.params[k] for k in _SPEC_FIELDS if call.params.get(k) is not None}


def render_cluster(record: ClusterRecord) -> dict[str, Any]:
    """The Clusters API `ClusterDetails` shape."""
    spec = record.spec
    body: dict[str, Any] = {k: spec[k] for k in _SPEC_FIELDS if k in spec}
    body.update(
        cluster_id=record.cluster_id,
        cluster_name=record.cluster_name,
        state=record.state.value,
        state_message=record.state_message,
        spark_conf=dict(spec.get("spark_conf") or {}),
        custom_tags=record.custom_tags,
        default_tags={
            "Vendor": "Floe",
            "Creator": record.creator,
            "ClusterName": record.cluster_name,
            "ClusterId": record.cluster_id,
            **(
                {"RunName": str(record.run_id), "JobClusterKey": record.job_cluster_key or ""}
                if record.cluster_source == ClusterSource.JOB
                else {}
            ),
        },
        cluster_source=record.cluster_source.value,
        creator_user_name=record.creator,
        start_time=record.start_time,
    )
    if record.terminated_time is not None:
        body["terminated_time"] = record.terminated_time
    if "num_workers" not in body and "autoscale" not in body:
        body["num_workers"] = 0
    if record.spark_connect_url:
        body["spark_connect_url"] = record.spark_connect_url
    if record.master_url:
        body["master_url"] = record.master_url
    if record.handle is not None and record.handle.processes:
        body["spark_context_id"] = record.handle.processes[-1].start_ticks
    return body


def create(call: Call) -> dict[str, Any]:
    return {"cluster_id": _service(call).create(_spec(call), creator=call.user)}


def get(call: Call) -> dict[str, Any]:
    return render_cluster(_service(call).get(_cluster_id(call)))


def list_clusters(call: Call) -> dict[str, Any]:
    return {"clusters": [render_cluster(r) for r in _service(call).list()]}


def start(call: Call) -> dict[str, Any]:
    _service(call).start(_cluster_id(call))
    return {}


def restart(call: Call) -> dict[str, Any]:
    _service(call).restart(_cluster_id(call))
    return {}


def delete(call: Call) -> dict[str, Any]:
    _service(call).terminate(_cluster_id(call), reason=f"Terminated by {call.user}")
    return {}


def permanent_delete(call: Call) -> dict[str, Any]:
    _service(call).permanent_delete(_cluster_id(call))
    return {}


def edit(call: Call) -> dict[str, Any]:
    _service(call).edit(_cluster_id(call), _spec(call))
    return {}


ROUTES: tuple[tuple[str, str, Endpoint], ...] = (
    ("POST", "clusters/create", create),
    ("GET", "clusters/get", get),
    ("GET", "clusters/list", list_clusters),
    ("POST", "clusters/start", start),
    ("POST", "clusters/restart", restart),
    ("POST", "clusters/delete", delete),
    ("POST", "clusters/permanent-delete", permanent_delete),
    ("POST", "clusters/edit", edit),
)
