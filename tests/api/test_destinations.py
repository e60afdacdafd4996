"""`/api/2.0/notification-destinations` over the real destination service: through the ASGI app, and
through the official Databricks SDK (`WorkspaceClient.notification_destinations`) against uvicorn."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, NotFound, ResourceDoesNotExist
from databricks.sdk.service import settings as sdk
from fastapi.testclient import TestClient

from core.api import create_app
from core.clock import FakeClock
from core.notify import DestinationService
from core.store import open_storage
from tests.api.fake import TOKEN, FakeFloe

pytestmark = pytest.mark.timeout(60)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "/api/2.0/notification-destinations"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
def floe(tmp_path: Path) -> Iterator[FakeFloe]:
    store = open_storage("sqlite", root=tmp_path / "store")
    floe = FakeFloe()
    floe.destinations = DestinationService(store.tables, FakeClock())  # type: ignore[attr-defined]
    try:
        yield floe
    finally:
        store.close()


@pytest.fixture
def client(floe: FakeFloe) -> TestClient:
    return TestClient(create_app(floe, clock=FakeClock()), raise_server_exceptions=False, headers=AUTH)


def test_crud_over_http(client: TestClient) -> None:
    created = client.post(BASE, json={"display_name": "alerts", "config": {"slack": {"url": SLACK}}})
    assert created.status_code == 200, created.text
    body = created.json()
    dest_id = body["id"]
    assert body == {
        "id": dest_id,
        "display_name": "alerts",
        "destination_type": "SLACK",
        "config": {"slack": {"url_set": True}},
    }
    assert len(dest_id) == 36 and dest_id.count("-") == 4  # a UUID, as on Databricks
    assert "XXXXSECRET" not in client.get(f"{BASE}/{dest_id}").text

    patched = client.patch(f"{BASE}/{dest_id}", json={"display_name": "renamed"})
    assert patched.status_code == 200 and patched.json()["display_name"] == "renamed"
    listed = client.get(BASE).json()
    assert listed == {"results": [{"id": dest_id, "display_name": "renamed", "destination_type": "SLACK"}]}

    assert client.delete(f"{BASE}/{dest_id}").json() == {}
    missing = client.get(f"{BASE}/{dest_id}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"Notification destination {dest_id} does not exist.",
    }
    assert client.get(BASE).json() == {"results": []}


def test_errors_name_the_field_and_only_2_0_serves_destinations(client: TestClient) -> None:
    bad = client.post(BASE, json={"display_name": "x", "config": {"slack": {"url": "not a url"}}})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert bad.json()["message"].startswith("config.slack.url must be an http:// or https:// URL")
    assert "not a url" not in bad.json()["message"]  # URLs are secrets: never echoed
    assert client.patch(f"{BASE}/nope", json={"display_name": "x"}).status_code == 404
    assert client.delete(f"{BASE}/nope").status_code == 404
    assert client.get("/api/2.1/notification-destinations").status_code == 404
    assert client.get(BASE, params={"page_size": 1000}).status_code == 400
    anonymous = TestClient(client.app, raise_server_exceptions=False)
    assert anonymous.get(BASE).status_code == 401


def test_listing_pages(client: TestClient) -> None:
    made = [
        client.post(BASE, json={"display_name": f"d{i}", "config": {"slack": {"url": SLACK}}}).json()["id"]
        for i in range(3)
    ]
    first = client.get(BASE, params={"page_size": 2}).json()
    second = client.get(BASE, params={"page_size": 2, "page_token": first["next_page_token"]}).json()
    assert "next_page_token" not in second
    assert sorted(d["id"] for d in first["results"] + second["results"]) == sorted(made)


@pytest.fixture
def served(floe: FakeFloe, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("DATABRICKS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    config = uvicorn.Config(create_app(floe), host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="floe-api-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_sdk_creates_gets_lists_updates_and_deletes(served: str) -> None:
    w = WorkspaceClient(host=served, token=TOKEN)
    api = w.notification_destinations

    hook = api.create(
        display_name="ops webhook",
        config=sdk.Config(
            generic_webhook=sdk.GenericWebhookConfig(
                url="https://example.com/hook", username="u", password="pw"
            )
        ),
    )
    teams = api.create(
        display_name="teams",
        config=sdk.Config(microsoft_teams=sdk.MicrosoftTeamsConfig(url="https://t.example/x")),
    )
    mail = api.create(
        display_name="mail", config=sdk.Config(email=sdk.EmailConfig(addresses=["ops@example.com"]))
    )

    assert hook.destination_type is sdk.DestinationType.WEBHOOK
    got = api.get(hook.id)
    assert got.display_name == "ops webhook"
    assert got.config.generic_webhook.url_set and got.config.generic_webhook.password_set
    assert got.config.generic_webhook.url is None and got.config.generic_webhook.password is None
    assert api.get(teams.id).config.microsoft_teams.url_set
    assert api.get(mail.id).config.email.addresses == ["ops@example.com"]

    listed = {d.id: (d.display_name, d.destination_type) for d in api.list(page_size=1)}  # paged by the SDK
    assert listed == {
        hook.id: ("ops webhook", sdk.DestinationType.WEBHOOK),
        teams.id: ("teams", sdk.DestinationType.MICROSOFT_TEAMS),
        mail.id: ("mail", sdk.DestinationType.EMAIL),
    }

    updated = api.update(hook.id, display_name="renamed", config=got.config)  # echoes the *_set flags back
    assert updated.display_name == "renamed" and updated.config.generic_webhook.password_set

    api.delete(teams.id)
    with pytest.raises(ResourceDoesNotExist) as missing:
        api.get(teams.id)
    assert isinstance(missing.value, NotFound)
    with pytest.raises(InvalidParameterValue, match=r"config\.pagerduty cannot be used"):
        api.create(display_name="pd", config=sdk.Config(pagerduty=sdk.PagerdutyConfig(integration_key="k")))
