"""The app as the Functions host sees it: what indexing produces (names, triggers, queues, schedule,
route), what the Python worker checks when it loads a function, host.json, the sample settings, and a
cold start that imports no Spark. None of it needs Azurite."""

from __future__ import annotations

import inspect
import json
import os
import re
import secrets
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from core.errors import InvalidParameterValue
from core.messages import MAX_DEQUEUE
from functions import events, root
from tests.functions.conftest import HOST_JSON, REPO

DEV = "UseDevelopmentStorage=true"
HOST = (
    "DefaultEndpointsProtocol=https;AccountName=floehost;AccountKey=aG9zdA==;EndpointSuffix=core.windows.net"
)
AZURITE_EXPLICIT = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)


def _bindings(function: Any) -> list[dict[str, Any]]:
    return json.loads(function.get_function_json())["bindings"]


def test_the_app_indexes_one_function_per_trigger(indexed: dict[str, Any]) -> None:
    assert sorted(indexed) == ["blob_created", "http", "tick", "work", "work_poison"]
    triggers = {name: type(f.get_trigger()).__name__ for name, f in indexed.items()}
    assert triggers == {
        "http": "HttpTrigger",
        "tick": "TimerTrigger",
        "work": "QueueTrigger",
        "work_poison": "QueueTrigger",
        "blob_created": "EventGridTrigger",
    }


def test_http_serves_every_path_and_method_anonymously(indexed: dict[str, Any]) -> None:
    trigger, output = _bindings(indexed["http"])
    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == "{*route}"
    assert trigger["authLevel"] == "ANONYMOUS"  # Floe checks its own bearer tokens
    assert set(trigger["methods"]) == {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
    assert output == {"direction": "OUT", "type": "http", "name": "$return"}
    assert HOST_JSON["extensions"]["http"]["routePrefix"] == ""  # /api/2.2/... arrives unchanged


def test_tick_runs_every_minute_with_the_schedule_monitor(indexed: dict[str, Any]) -> None:
    [trigger] = _bindings(indexed["tick"])
    assert trigger == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "0 * * * * *",
        "runOnStartup": False,
        "useMonitor": True,
    }


def test_queue_functions_listen_on_floes_prefixed_queues(indexed: dict[str, Any]) -> None:
    [work] = _bindings(indexed["work"])
    [poison] = _bindings(indexed["work_poison"])
    assert work["queueName"] == "%FLOE_STORAGE_PREFIX%floe-work"
    assert poison["queueName"] == "%FLOE_STORAGE_PREFIX%floe-work-poison"
    # floe-tasks is the runners' (functions.root): the app binds no trigger to it
    # Floe's state account, apart from the host's own storage (AzureWebJobsStorage)
    assert work["connection"] == poison["connection"] == "FloeStorage"
    queues = HOST_JSON["extensions"]["queues"]
    assert queues["maxDequeueCount"] == MAX_DEQUEUE
    assert queues["messageEncoding"] == "base64"


def test_blob_created_is_an_event_grid_trigger(indexed: dict[str, Any]) -> None:
    [trigger] = _bindings(indexed["blob_created"])
    assert trigger == {"direction": "IN", "type": "eventGridTrigger", "name": "event"}


def test_every_function_loads_in_the_python_worker(indexed: dict[str, Any]) -> None:
    """The checks the worker makes when it loads a function: the annotations resolve at run time (none
    hides behind TYPE_CHECKING), every parameter is a binding, `context` is `func.Context`."""
    for name, function in indexed.items():
        user = function.get_user_function()
        hints = typing.get_type_hints(user)
        params = set(inspect.signature(user).parameters)
        bound = {b["name"] for b in _bindings(function) if b["name"] != "$return"}
        assert params - {"context"} == bound, name
        if "context" in params:
            assert hints["context"] is func.Context, name
        for param in bound:
            assert isinstance(hints[param], type), (name, param)


def test_host_json_choices() -> None:
    assert HOST_JSON["version"] == "2.0"
    assert HOST_JSON["telemetryMode"] == "OpenTelemetry"
    assert HOST_JSON["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    hours, minutes, seconds = map(int, HOST_JSON["functionTimeout"].split(":"))
    assert 0 < hours * 3600 + minutes * 60 + seconds <= 600  # the Consumption plan's maximum
    queues = HOST_JSON["extensions"]["queues"]
    assert 1 <= queues["batchSize"] <= 32


def test_the_sample_settings_are_floes_and_each_is_explained_in_the_readme() -> None:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())
    values = sample["Values"]
    assert all(isinstance(v, str) for v in values.values())
    settings = root.settings_from(values)
    assert settings.storage == "azure"
    assert settings.azure_connection_string == DEV
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Azure Functions") :]
    section = section[: section.find("\n## ", 3)]
    for name in values:
        assert f"`{name}`" in section, name


def test_funcignore_keeps_tests_and_tools_out_of_the_package() -> None:
    ignored = set((REPO / ".funcignore").read_text().split())
    assert {"tests", ".venv", ".tools", "local.settings.json", "bench"} <= ignored
    assert not {"core", "functions", "function_app.py", "host.json", "requirements.txt"} & ignored


# ------------------------------------------------------------------------------------------ settings


def test_settings_default_to_azure_runners_and_a_temporary_home() -> None:
    settings = root.settings_from({"FloeStorage": DEV, "AzureWebJobsStorage": HOST})
    assert settings.storage == "azure"
    assert settings.tasks == "runners"
    assert settings.azure_connection_string == DEV  # the triggers' account, never the host's own storage
    assert settings.home.is_absolute() and settings.home.name == "floe"


def test_settings_refuse_sqlite() -> None:
    with pytest.raises(
        InvalidParameterValue, match="FLOE_STORAGE: 'sqlite' cannot serve the Azure Functions"
    ):
        root.settings_from({"FloeStorage": DEV, "FLOE_STORAGE": "sqlite"})


def test_settings_refuse_task_processes_on_functions_instances() -> None:
    with pytest.raises(
        InvalidParameterValue, match="FLOE_TASKS: 'local' would run task processes on Functions"
    ):
        root.settings_from({"FloeStorage": DEV, "FLOE_TASKS": "local"})


def test_settings_need_the_triggers_connection() -> None:
    with pytest.raises(InvalidParameterValue, match="FloeStorage: the queue triggers' connection"):
        root.settings_from({"AzureWebJobsStorage": HOST})


def test_with_the_apps_identity_floe_signs_in_to_the_triggers_account_without_a_key() -> None:
    env = {
        "FloeStorage__queueServiceUri": "https://floestate.queue.core.windows.net/",
        "AzureWebJobsStorage__accountName": "floehost",
    }
    settings = root.settings_from(env)
    assert settings.azure_connection_string == (
        "DefaultEndpointsProtocol=https;AccountName=floestate;EndpointSuffix=core.windows.net"
    )
    with pytest.raises(InvalidParameterValue, match="cannot tell its storage account from"):
        root.settings_from({"FloeStorage__queueServiceUri": "https://127.0.0.1:10001/devstoreaccount1"})
    user_assigned = {**env, "FloeStorage__clientId": "0000aaaa-11bb-22cc-33dd-444444eeeeee"}
    assert root.settings_from(user_assigned).azure_client_id == "0000aaaa-11bb-22cc-33dd-444444eeeeee"
    elsewhere = {  # another cloud: its three endpoints, as Functions' identity-based settings name them
        f"FloeStorage__{kind}ServiceUri": f"https://st.{kind}.core.chinacloudapi.cn/"
        for kind in ("blob", "queue", "table")
    }
    assert root.settings_from(elsewhere).azure_connection_string == (
        "BlobEndpoint=https://st.blob.core.chinacloudapi.cn;QueueEndpoint=https://st.queue.core.chinacloudapi.cn;"
        "TableEndpoint=https://st.table.core.chinacloudapi.cn"
    )
    explicit = "AccountName=floestate"
    assert root.settings_from({**env, "FLOE_AZURE_CONNECTION_STRING": explicit}).azure_connection_string == (
        explicit
    )


def test_settings_refuse_a_floe_account_other_than_the_triggers() -> None:
    other = (
        "DefaultEndpointsProtocol=https;AccountName=elsewhere;AccountKey=c2VjcmV0;EndpointSuffix=example.net"
    )
    with pytest.raises(
        InvalidParameterValue, match=re.escape("at https://elsewhere.queue.example.net, but")
    ) as caught:
        root.settings_from({"FloeStorage": DEV, "FLOE_AZURE_CONNECTION_STRING": other})
    assert "c2VjcmV0" not in caught.value.message  # never the key
    identity = {
        "FloeStorage__queueServiceUri": "https://prod.queue.core.windows.net",
        "FLOE_AZURE_CONNECTION_STRING": other,
    }
    with pytest.raises(
        InvalidParameterValue,
        match=re.escape("FloeStorage's, at https://prod.queue.core.windows.net"),
    ):
        root.settings_from(identity)


def test_settings_accept_one_account_written_two_ways() -> None:
    settings = root.settings_from({"FloeStorage": DEV, "FLOE_AZURE_CONNECTION_STRING": AZURITE_EXPLICIT})
    assert settings.azure_connection_string == AZURITE_EXPLICIT


# ------------------------------------------------------------------------------------------- events


def _event(event_type: str, **data: Any) -> func.EventGridEvent:
    return func.EventGridEvent(
        id="e1",
        data=data,
        topic="/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a",
        subject="/blobServices/default/containers/c/blobs/in/x.csv",
        event_type=event_type,
        event_time=None,
        data_version="1",
    )


@pytest.mark.parametrize(
    "event",
    [
        _event("Microsoft.Storage.BlobDeleted", url="https://a.blob.core.windows.net/c/in/x.csv"),
        _event(
            "Microsoft.Storage.BlobCreated", api="CreateFile", url="https://a/c/in/x.csv", contentLength=0
        ),
        _event("Microsoft.Storage.BlobCreated", contentLength=3),
    ],
    ids=["other-type", "not-written-yet", "no-url"],
)
def test_events_that_are_no_arrival_are_ignored_without_building_floe(
    event: func.EventGridEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unexpected() -> None:
        raise AssertionError("the event was taken for an arrival")

    monkeypatch.setattr(root, "floe", unexpected)
    events.blob_created(event)


# -------------------------------------------------------------------------------------------- cold start

_COLD_START = """
import sys
import function_app
heavy = ("pyspark", "nbclient", "nbformat", "pandas", "numpy", "pyarrow", "azure.storage", "azure.data",
         "fastapi", "core.handlers")
loaded = sorted({m for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")})
assert not loaded, loaded
print(len(function_app.app.get_functions()))
"""

_FIRST_INVOCATION = """
import sys
from azure.functions.timer import TimerRequest
import function_app
from functions import root, timer
timer.tick(TimerRequest(past_due=False))
root.reset()
# (zstandard is left out: urllib3 imports it whenever it is installed, to decode zstd responses)
runner_only = ("pyspark", "nbclient", "pandas", "numpy", "pyarrow", "grpc", "ipykernel")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in runner_only)
assert not loaded, loaded
print("ok")
"""


# The app as its package installs it, without requirements-runner.txt: those imports fail, and the API, the
# timer and the work function (a run's poll) still serve a job from creation to its submitted task.
_WITHOUT_RUNNER_PACKAGES = """
import asyncio, json, sys
import importlib.abc

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pyspark", "nbclient", "pandas", "numpy", "pyarrow", "grpc", "ipykernel"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NotInstalled())
import azure.functions as func
from azure.functions.timer import TimerRequest
import function_app
from functions import root, timer

http = {f.get_function_name(): f for f in function_app.app.get_functions()}["http"].get_user_function()

def call(method, path, body=None):
    request = func.HttpRequest(
        method, "https://floe.example.net" + path, body=json.dumps(body).encode() if body else b"",
        headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
    )
    response = asyncio.run(http(request, None))
    assert response.status_code == 200, (path, response.get_body())
    return json.loads(response.get_body())

task = {"task_key": "nb", "notebook_task": {"notebook_path": "nb.ipynb"}}
job_id = call("POST", "/api/2.2/jobs/create", {"name": "j", "tasks": [task]})["job_id"]
run_id = call("POST", "/api/2.2/jobs/run-now", {"job_id": job_id})["run_id"]
run = call("GET", f"/api/2.2/jobs/runs/get?run_id={run_id}")
assert run["tasks"][0]["state"]["life_cycle_state"] == "PENDING", run
call("GET", f"/api/2.2/jobs/runs/list?job_id={job_id}")
call("GET", f"/api/2.2/jobs/runs/get-output?run_id={run['tasks'][0]['run_id']}")
timer.tick(TimerRequest(past_due=False))
root.floe().handle_message(json.dumps({"v": 1, "kind": "run.poll", "run_id": run_id}))
root.reset()
print("ok")
"""


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def _requirements(name: str) -> set[str]:
    lines = (REPO / name).read_text().splitlines()
    return {line.split("==")[0].lower() for line in lines if line and not line.startswith(("#", "-"))}


def test_the_app_package_installs_no_spark_and_runners_add_it() -> None:
    app, runner = _requirements("requirements.txt"), _requirements("requirements-runner.txt")
    runner_only = {"pyspark", "pandas", "numpy", "pyarrow", "grpcio", "nbclient", "ipykernel", "zstandard"}
    assert runner_only <= runner and not runner_only & app
    assert "requirements-runner.txt" in (REPO / ".funcignore").read_text().splitlines()
    makefile = (REPO / "Makefile").read_text()
    assert (
        "-r requirements.txt -r requirements-runner.txt" in makefile
    )  # `make install`: a host that runs tasks


def test_a_cold_start_imports_no_engine_spark_or_storage_sdk() -> None:
    assert _python(_COLD_START) == "5"


def _app_env(azurite: str, home: Path, **settings: str) -> dict[str, str]:
    """The environment of a worker process on Azurite: this one's, less its Floe and storage settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "AzureWebJobs", "FloeStorage"))}
    prefix = f"fn{secrets.token_hex(4)}"
    return {
        **env,
        "AzureWebJobsStorage": azurite,
        "FloeStorage": azurite,
        "FLOE_STORAGE_PREFIX": prefix,
        "FLOE_HOME": str(home),
        **settings,
    }


@pytest.mark.azurite
def test_the_first_invocation_imports_no_spark(azurite: str, tmp_path: Path) -> None:
    assert _python(_FIRST_INVOCATION, _app_env(azurite, tmp_path / "home")) == "ok"


@pytest.mark.azurite
def test_the_app_serves_a_run_without_the_runner_packages(azurite: str, tmp_path: Path) -> None:
    env = _app_env(azurite, tmp_path / "home", FLOE_ADMIN_TOKEN="t")
    assert _python(_WITHOUT_RUNNER_PACKAGES, env) == "ok"
