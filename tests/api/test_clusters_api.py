"""The `clusters/*` routes over the real cluster service with a provider that starts nothing, through
HTTP and through the official Databricks SDK.

`create_app` mounts only the jobs and runs routes today, so `app_with_clusters` mounts `core.api.clusters`
the same way (the lead adds `clusters.ROUTES` to `create_app`'s route loop)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import ResourceDoesNotExist
from databricks.sdk.service import compute
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.api import app as app_module
from core.api import clusters as cluster_routes
from core.api import create_app
from core.api.call import API_VERSIONS
from core.clock import FakeClock
from core.clusters import ClusterService
from core.compute.clusters import ClusterHandle, ClusterSpec
from core.store import Storage, open_storage
from tests.api.fake import TOKEN, USER, FakeFloe

pytestmark = pytest.mark.timeout(60)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class InstantProvider:
    """Clusters that are 'up' at once; remembers what it was asked."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.terminated: list[str] = []

    def create(self, cluster_id, spec, log_dir, *, on_started=None):  # type: ignore[no-untyped-def]
        self.created.append(cluster_id)
        return ClusterHandle(cluster_id, f"sc://127.0.0.1:{15000 + len(self.created)}")

    def register_remote(self, cluster_id: str, spec: ClusterSpec) -> ClusterHandle:
        return ClusterHandle(cluster_id, spec.spark_connect_url, spec.master_url, remote=True)

    def is_alive(self, handle: ClusterHandle) -> bool:
        return True

    def terminate(self, handle: ClusterHandle, *, grace_seconds: float = 10) -> None:
        self.terminated.append(handle.cluster_id)


def app_with_clusters(floe: FakeFloe) -> FastAPI:
    clock = FakeClock()
    app = create_app(floe, clock=clock)
    for version in API_VERSIONS:
        for method, path, endpoint in cluster_routes.ROUTES:
            app.add_route(
                f"/api/{version}/{path}",
                app_module._route(floe, clock, "", version, method, endpoint),
                methods=[method],
                include_in_schema=False,
            )
    return app


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[FakeFloe, ClusterService, InstantProvider]]:
    store: Storage = open_storage("sqlite", root=tmp_path / "store")
    provider = InstantProvider()
    service = ClusterService(
        store.tables, store.blobs, provider, FakeClock(), "host-a", log_root=tmp_path / "logs"
    )
    floe = FakeFloe()
    floe.clusters = service  # type: ignore[attr-defined]
    try:
        yield floe, service, provider
    finally:
        service.close()
        store.close()


def test_the_cluster_lifecycle_over_http(setup: tuple[FakeFloe, ClusterService, InstantProvider]) -> None:
    floe, service, provider = setup
    client = TestClient(app_with_clusters(floe), raise_server_exceptions=False, headers=AUTH)
    body = {"cluster_name": "adhoc", "spark_version": "15.4.x", "num_workers": 2, "custom_tags": {"a": "b"}}
    reply = client.post("/api/2.0/clusters/create", json=body)
    assert reply.status_code == 200, reply.text
    cluster_id = reply.json()["cluster_id"]
    assert isinstance(cluster_id, str) and len(cluster_id.split("-")) == 3
    service.wait_until(cluster_id, ["RUNNING"], timeout=10)  # type: ignore[list-item]

    got = client.get("/api/2.1/clusters/get", params={"cluster_id": cluster_id}).json()
    assert got["state"] == "RUNNING" and got["cluster_name"] == "adhoc" and got["num_workers"] == 2
    assert got["custom_tags"] == {"a": "b"} and got["cluster_source"] == "API"
    assert got["creator_user_name"] == USER and got["spark_version"] == "15.4.x"
    assert got["default_tags"]["ClusterId"] == cluster_id
    assert got["spark_connect_url"].startswith("sc://")

    listed = client.get("/api/2.0/clusters/list").json()["clusters"]
    assert [c["cluster_id"] for c in listed] == [cluster_id]

    assert client.post("/api/2.0/clusters/delete", json={"cluster_id": cluster_id}).json() == {}
    assert service.get(cluster_id).state == "TERMINATED"
    assert provider.terminated == [cluster_id]
    assert client.post("/api/2.0/clusters/delete", json={"cluster_id": cluster_id}).status_code == 200

    assert (
        client.post("/api/2.0/clusters/edit", json={"cluster_id": cluster_id, "num_workers": 4}).json() == {}
    )
    client.post("/api/2.0/clusters/start", json={"cluster_id": cluster_id})
    service.wait_until(cluster_id, ["RUNNING"], timeout=10)  # type: ignore[list-item]
    assert client.get("/api/2.0/clusters/get", params={"cluster_id": cluster_id}).json()["num_workers"] == 4
    client.post("/api/2.0/clusters/restart", json={"cluster_id": cluster_id})
    service.wait_until(cluster_id, ["RUNNING"], timeout=10)  # type: ignore[list-item]
    assert len(provider.created) == 3

    assert client.post("/api/2.0/clusters/permanent-delete", json={"cluster_id": cluster_id}).json() == {}
    missing = client.get("/api/2.0/clusters/get", params={"cluster_id": cluster_id})
    assert missing.status_code == 400
    assert missing.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Cluster {cluster_id} does not exist.",
    }


def test_bad_requests_name_the_field(setup: tuple[FakeFloe, ClusterService, InstantProvider]) -> None:
    floe, _, _ = setup
    client = TestClient(app_with_clusters(floe), raise_server_exceptions=False, headers=AUTH)
    reply = client.post("/api/2.0/clusters/create", json={"cluster_name": "x"})
    assert reply.status_code == 400 and "num_workers or autoscale" in reply.json()["message"]
    reply = client.post("/api/2.0/clusters/create", json={"autoscale": {"min_workers": 3, "max_workers": 2}})
    assert reply.status_code == 400
    assert "autoscale.min_workers (3) must not exceed" in reply.json()["message"]
    reply = client.get("/api/2.0/clusters/get")
    assert reply.status_code == 400 and "cluster_id" in reply.json()["message"]
    assert client.post("/api/2.0/clusters/start", json={"cluster_id": "nope"}).status_code == 400


def test_a_remote_cluster_is_registered_running_and_never_started(
    setup: tuple[FakeFloe, ClusterService, InstantProvider],
) -> None:
    floe, _, provider = setup
    client = TestClient(app_with_clusters(floe), raise_server_exceptions=False, headers=AUTH)
    body = {"cluster_name": "far", "spark_connect_url": "sc://spark.example:15002"}
    cluster_id = client.post("/api/2.0/clusters/create", json=body).json()["cluster_id"]
    got = client.get("/api/2.0/clusters/get", params={"cluster_id": cluster_id}).json()
    assert got["state"] == "RUNNING" and got["spark_connect_url"] == "sc://spark.example:15002"
    assert provider.created == []


@pytest.fixture
def served(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, setup: tuple[FakeFloe, ClusterService, InstantProvider]
) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("DATABRICKS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    config = uvicorn.Config(
        app_with_clusters(setup[0]), host="127.0.0.1", port=0, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_sdk_creates_gets_lists_and_deletes_clusters(served: str) -> None:
    w = WorkspaceClient(host=served, token=TOKEN)
    details = w.clusters.create(
        spark_version="15.4.x-scala2.12", cluster_name="sdk", num_workers=1, node_type_id="local"
    ).result(timeout=timedelta(seconds=30))
    assert details.state == compute.State.RUNNING and details.cluster_name == "sdk"
    assert w.clusters.get(details.cluster_id).cluster_source == compute.ClusterSource.API
    assert [c.cluster_id for c in w.clusters.list()] == [details.cluster_id]
    ended = w.clusters.delete(details.cluster_id).result(timeout=timedelta(seconds=30))
    assert ended.state == compute.State.TERMINATED
    with pytest.raises(ResourceDoesNotExist):
        w.clusters.get("0101-000000-missing0")
