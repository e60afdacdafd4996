"""The composition root of the Azure Functions app: one `Floe` per worker process, built on first use.

Nothing here runs at import: indexing the app reads no setting and opens no connection, so a bad setting
fails the first invocation with a message instead of leaving the host with "0 functions loaded". The
first invocation reads `Settings.from_env()`, opens the Azure stores once (`storage_from`) and builds the
`Floe` every function of this process shares.

The app never runs a task process or a Spark cluster (`run_tasks=False`, `FLOE_TASKS=runners`): an
instance lives as long as the platform wants, and a Spark job lives longer. A pending attempt is submitted
to the `floe-tasks` queue, which `floe runner` hosts receive from (`core.runtime.runner`), and the app
follows each run with delayed `run.poll` messages on its work queue (`Floe._poll_run`). So no invocation
waits for Spark, and an instance the platform scales in takes no task with it; nor does it own anything
that needs a heartbeat or a queue of its own.

Floe's state lives in the account of `FloeStorage` (`CONNECTION`), the connection the queue triggers
listen on; `AzureWebJobsStorage` is the Functions host's own (timer locks, keys). When set,
`FLOE_AZURE_CONNECTION_STRING` must name the triggers' account (`settings_from` refuses another one:
messages would go where no trigger listens).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.errors import InvalidParameterValue
from core.settings import Settings

if TYPE_CHECKING:
    from core.clock import Clock
    from core.handlers import Floe

log = logging.getLogger("floe.functions")

_DEVELOPMENT_QUEUES = "http://127.0.0.1:10001/devstoreaccount1"  # UseDevelopmentStorage=true
# The app setting (or prefix of identity-based settings) of the queue triggers' connection: Floe's state
# account. AzureWebJobsStorage is the Functions host's own storage, another account on Azure.
CONNECTION = "FloeStorage"

_lock = threading.Lock()
_floe: Floe | None = None
_clock: Clock | None = None


def floe() -> Floe:
    """This process's `Floe`, built on the first call."""
    global _floe
    found = _floe
    if found is not None:
        return found
    with _lock:
        if _floe is None:
            from core.handlers import Floe
            from core.runtime.host import storage_from
            from core.telemetry import configure

            settings = settings_from(os.environ)
            # Once per process; with PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true the worker has
            # configured Azure Monitor already and Floe only uses its providers.
            configure(os.environ)
            if not settings.admin_token:
                log.warning("FLOE_ADMIN_TOKEN is not set: only API tokens stored by Floe authenticate")
            _floe = Floe(settings, storage_from(settings), clock=_clock, run_tasks=False)
            log.info("Floe host %s ready (storage prefix %r)", _floe.host_id, settings.storage_prefix)
        return _floe


def reset(*, clock: Clock | None = None) -> None:
    """Close this process's `Floe` so the next call builds a new one from the environment, with `clock`
    (tests; default the system clock)."""
    global _floe, _clock
    with _lock:
        if _floe is not None:
            _floe.close()
        _floe, _clock = None, clock


def settings_from(env: Mapping[str, str]) -> Settings:
    """Floe's settings for the Functions deployment: `Settings.from_env` with defaults of its own: storage
    `azure` (the triggers are Azure's) in the account of the queue triggers' connection (`CONNECTION`),
    tasks on `runners`, and a home under the temporary folder (the app's folder is read-only when it runs
    from a package)."""
    triggers = _trigger_queues(env)
    defaults: dict[str, object] = {}
    if not env.get("FLOE_STORAGE"):
        defaults["storage"] = "azure"
    if not env.get("FLOE_TASKS"):
        defaults["tasks"] = "runners"
    if not env.get("FLOE_HOME"):
        defaults["home"] = Path(tempfile.gettempdir()) / "floe"
    if not env.get("FLOE_AZURE_CONNECTION_STRING"):
        defaults["azure_connection_string"] = _connection_of_triggers(env)
    if not env.get("FLOE_AZURE_CLIENT_ID") and env.get(f"{CONNECTION}__clientId"):
        defaults["azure_client_id"] = env[f"{CONNECTION}__clientId"]  # a user-assigned identity
    settings = Settings.from_env(env, **defaults)
    if settings.storage != "azure":
        raise InvalidParameterValue(
            f"FLOE_STORAGE: {settings.storage!r} cannot serve the Azure Functions app, whose queue "
            "triggers listen on Azure Storage; use 'azure' (or leave it unset)"
        )
    if settings.tasks != "runners":
        raise InvalidParameterValue(
            f"FLOE_TASKS: {settings.tasks!r} would run task processes on Functions instances, which the "
            "platform stops at will; the app submits them to `floe runner` hosts: use 'runners' (or leave "
            "it unset)"
        )
    mine = _queue_endpoint(settings.azure_connection_string)
    if mine and mine != triggers:
        raise InvalidParameterValue(
            f"FLOE_AZURE_CONNECTION_STRING names the queues at {mine}, but the queue triggers listen on "
            f"{CONNECTION}'s, at {triggers}: Floe's messages would never reach its functions. Leave "
            f"FLOE_AZURE_CONNECTION_STRING unset (Floe then uses {CONNECTION}) or point both at one account"
        )
    return settings


def _trigger_queues(env: Mapping[str, str]) -> str:
    """The queue service the queue triggers listen on: the one `CONNECTION` names, as a connection string
    or as an identity-based connection (`<CONNECTION>__queueServiceUri`)."""
    if env.get(CONNECTION):
        endpoint = _queue_endpoint(env[CONNECTION])
    else:
        endpoint = env.get(f"{CONNECTION}__queueServiceUri", "").rstrip("/").lower()
    if not endpoint:
        raise InvalidParameterValue(
            f"{CONNECTION}: the queue triggers' connection to Floe's storage account is not set; give "
            f"{CONNECTION} a connection string (UseDevelopmentStorage=true for Azurite) or, with the app's "
            f"identity, {CONNECTION}__queueServiceUri (https://<account>.queue.core.windows.net)"
        )
    return endpoint


def _connection_of_triggers(env: Mapping[str, str]) -> str:
    """Floe's connection string when FLOE_AZURE_CONNECTION_STRING is unset: the triggers' own; for an
    identity-based connection, the account's endpoints without a key (Floe then signs in as the app):
    `<CONNECTION>__blobServiceUri`, `__queueServiceUri` and `__tableServiceUri` when all three are set,
    else the account of a queue service URI `https://<account>.queue.<suffix>`."""
    if env.get(CONNECTION):
        return env[CONNECTION]
    uris = {
        kind: env.get(f"{CONNECTION}__{kind.lower()}ServiceUri", "") for kind in ("Blob", "Queue", "Table")
    }
    if all(uris.values()):
        return ";".join(f"{kind}Endpoint={uri.rstrip('/')}" for kind, uri in uris.items())
    uri = uris["Queue"].rstrip("/")
    host = urlsplit(uri).hostname or ""
    account, _, rest = host.partition(".queue.")
    if urlsplit(uri).scheme != "https" or not account or not rest or urlsplit(uri).path not in ("", "/"):
        raise InvalidParameterValue(
            f"{CONNECTION}__queueServiceUri: Floe cannot tell its storage account from {uri!r}; set "
            "FLOE_AZURE_CONNECTION_STRING to the account's endpoints (BlobEndpoint=...;QueueEndpoint=...;"
            "TableEndpoint=..., no key: Floe signs in as the app)"
        )
    return f"DefaultEndpointsProtocol=https;AccountName={account};EndpointSuffix={rest}"


def _queue_endpoint(connection_string: str) -> str:
    """The queue service a connection string names (no key in it), or "" when it names none."""
    from core.store.azure._common import connection_fields

    fields = connection_fields(connection_string)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return _DEVELOPMENT_QUEUES
    if fields.get("queueendpoint"):
        return fields["queueendpoint"].rstrip("/").lower()
    if fields.get("accountname"):
        protocol = fields.get("defaultendpointsprotocol", "https")
        suffix = fields.get("endpointsuffix", "core.windows.net")
        return f"{protocol}://{fields['accountname']}.queue.{suffix}".lower()
    return ""
