"""The Functions app without a Functions host: the app indexed once per session, its functions called with
real trigger objects, and a small stand-in for the host's queue listener, all against Azurite.

`QueueHost` does what the host does for queue triggers, with host.json's settings: it receives from the
queue a binding names (app-setting expressions such as `%FLOE_STORAGE_PREFIX%` resolved from the
environment), base64-decodes the text, calls the function with an `azure.functions.queue.QueueMessage`,
deletes the message on success, makes it visible again on an exception, and after `maxDequeueCount`
deliveries moves it to `<queue>-poison` as it was.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueClient

from core.clock import Clock
from core.store.azure._common import API_VERSION
from functions import root

REPO = Path(__file__).resolve().parents[2]
HOST_JSON = json.loads((REPO / "host.json").read_text())
TOKEN = "floe-functions-test-token"


@pytest.fixture(scope="session")
def indexed() -> dict[str, Any]:
    """The app's functions by name. `get_functions()` may be called once per FunctionApp."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@dataclass
class FunctionsEnv:
    """The environment of one test's Functions app: settings as app settings, and what the test needs."""

    connection: str
    prefix: str
    workspace: Path
    home: Path

    def blob_endpoint(self) -> str:
        return dict(p.split("=", 1) for p in self.connection.split(";") if "=" in p)["BlobEndpoint"]


@pytest.fixture
def app_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite: str) -> Iterator[FunctionsEnv]:
    """App settings for a Functions app on the session's Azurite, with a unique storage prefix; the process's
    `Floe` is rebuilt from them on first use and closed afterwards."""
    import os

    for name in list(os.environ):
        if name.startswith(("FLOE_", "AzureWebJobs", "FloeStorage")):
            monkeypatch.delenv(name)
    prefix = f"fn{secrets.token_hex(4)}"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env = FunctionsEnv(azurite, prefix, workspace, tmp_path / "home")
    settings = {
        "AzureWebJobsStorage": azurite,  # the host's own storage; one Azurite here, two accounts on Azure
        "FloeStorage": azurite,
        "FLOE_STORAGE": "azure",
        "FLOE_AZURE_CONNECTION_STRING": azurite,
        "FLOE_STORAGE_PREFIX": prefix,
        "FLOE_HOME": str(env.home),
        "FLOE_WORKSPACE": str(workspace),
        "FLOE_ADMIN_TOKEN": TOKEN,
        "FLOE_TRIGGER_MIN_SECONDS": "0",
        "FLOE_TRIGGER_POLL_SECONDS": "60",
        "FLOE_TASK_POLL_SECONDS": "0.5",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    root.reset()
    try:
        yield env
    finally:
        root.reset()


@pytest.fixture
def use_clock() -> Callable[[Clock], None]:
    """Rebuild the process's `Floe` with a clock of the test's."""
    return lambda clock: root.reset(clock=clock)


# ------------------------------------------------------------------------------------------------- HTTP


class Api:
    """Calls to the `http` function, as the host makes them: a `func.HttpRequest` with the full path."""

    def __init__(self, function: Callable[..., Any], token: str = TOKEN) -> None:
        self._function = function
        self._token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else b""
        request = func.HttpRequest(method, f"https://floe.example.net{path}", headers=headers, body=data)
        response = asyncio.run(self._function(request, None))
        payload = response.get_body()
        return response.status_code, json.loads(payload) if payload else {}

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        status, body = self.call("GET", f"{path}?{urlencode(query)}" if query else path)
        assert status == 200, body
        return body

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.call("POST", path, body)
        assert status == 200, answer
        return answer


@pytest.fixture
def api(indexed: dict[str, Any]) -> Api:
    return Api(indexed["http"].get_user_function())


# ----------------------------------------------------------------------------------------------- queues


def resolve(expression: str) -> str:
    """An app-setting binding expression (`%NAME%` parts) resolved as the host does; a missing setting is
    an error, as it is for the host ("does not resolve to a value")."""
    import os

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise LookupError(f"'%{name}%' does not resolve to a value")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", value, expression)


def _seconds(timespan: str) -> float:
    hours, minutes, seconds = timespan.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass
class _Listener:
    name: str
    client: QueueClient
    poison: QueueClient
    function: Callable[..., Any]


class QueueHost:
    """The Functions host's queue listener for every queue-triggered function (see the module docstring).
    `retry_after` overrides host.json's `visibilityTimeout` (tests of poison handling use 0)."""

    def __init__(self, indexed: dict[str, Any], connection: str, *, retry_after: float | None = None) -> None:
        queues = HOST_JSON["extensions"]["queues"]
        assert queues.get("messageEncoding", "base64") == "base64"
        self.max_dequeue = int(queues["maxDequeueCount"])
        self.retry_after = _seconds(queues["visibilityTimeout"]) if retry_after is None else retry_after
        self.delivered: list[tuple[str, TriggerMessage]] = []
        self.failures: list[tuple[str, BaseException]] = []
        self._listeners = []
        for name, function in indexed.items():
            trigger = json.loads(function.get_function_json())["bindings"][0]
            if trigger["type"] != "queueTrigger":
                continue
            queue = resolve(trigger["queueName"])
            connection_string = resolve("%" + trigger["connection"] + "%")
            assert connection_string == connection
            self._listeners.append(
                _Listener(
                    name,
                    self._client(connection, queue),
                    self._client(connection, queue + "-poison"),
                    function.get_user_function(),
                )
            )

    @staticmethod
    def _client(connection: str, queue: str) -> QueueClient:
        client = QueueClient.from_connection_string(connection, queue, api_version=API_VERSION)
        try:
            client.create_queue()
        except ResourceExistsError:
            pass
        return client

    def close(self) -> None:
        for listener in self._listeners:
            listener.client.close()
            listener.poison.close()

    def pump(self) -> int:
        """Deliver every message visible now, once; returns how many were delivered."""
        count = 0
        for listener in self._listeners:
            for item in listener.client.receive_messages(messages_per_page=16, visibility_timeout=60):
                count += 1
                message = TriggerMessage(
                    id=item.id,
                    body=base64.b64decode(item.content),
                    dequeue_count=item.dequeue_count,
                    pop_receipt=item.pop_receipt,
                    insertion_time=item.inserted_on,
                    expiration_time=item.expires_on,
                )
                self.delivered.append((listener.name, message))
                try:
                    listener.function(message)
                except Exception as failed:
                    self.failures.append((listener.name, failed))
                    if (item.dequeue_count or 0) >= self.max_dequeue:
                        listener.poison.send_message(item.content)
                        listener.client.delete_message(item)
                    else:
                        listener.client.update_message(item, visibility_timeout=int(self.retry_after))
                else:
                    listener.client.delete_message(item)
        return count

    def run_until(
        self, done: Callable[[], Any], *, timeout: float = 30.0, what: str = "the condition"
    ) -> Any:
        """Pump until `done()` returns something truthy (returned); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump()
            result = done()
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout:.0f} s", pytrace=False)
            time.sleep(0.05)


@pytest.fixture
def start_runner(app_settings: FunctionsEnv) -> Iterator[Callable[[], Any]]:
    """Starts `floe runner` hosts on the same storage (in this process, each with its own home): they
    receive the task.start messages the app submits to floe-tasks and run the task processes."""
    import dataclasses
    import os

    from core.runtime.runner import RunnerHost

    started: list[RunnerHost] = []

    def start() -> RunnerHost:
        home = app_settings.home.parent / f"runner-{len(started)}"
        host = RunnerHost(dataclasses.replace(root.settings_from(os.environ), home=home))
        host.start()
        started.append(host)
        return host

    try:
        yield start
    finally:
        for host in started:
            host.stop()


@pytest.fixture
def runner(start_runner: Callable[[], Any]) -> Any:
    return start_runner()


@pytest.fixture
def queue_host(indexed: dict[str, Any], app_settings: FunctionsEnv) -> Iterator[QueueHost]:
    host = QueueHost(indexed, app_settings.connection)
    try:
        yield host
    finally:
        host.close()
