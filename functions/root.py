"""The composition root of the Azure Functions app: one `Floe` per worker process, built on first use.

Nothing here runs at import: indexing the app reads no setting and opens no connection, so a bad setting
fails the first invocation with a message instead of leaving the host with "0 functions loaded". The
first invocation reads `Settings.from_env()`, opens the Azure stores once (`storage_from`) and builds the
`Floe` every function of this process shares, with `run_tasks=True`: a `task.start` message starts the
task's process on the instance that received it.

Two things Floe needs from every process that runs task processes have no trigger to hang on, so
`InstanceLoop`, a daemon thread started with the `Floe`, does them:

- **heartbeat**: the timer runs on one instance at a time, and its `tick` takes the attempts of a host
  silent for a minute as lost. Each process writes its own heartbeat so its running tasks are not.
- **kills**: a kill (cancel, timeout) for an attempt goes to the queue of the host that started it,
  `floe-host-<id>`. Those names are only known at run time, so no queue trigger can bind them; the loop
  receives from this process's own queue every `KILL_POLL_SECONDS` and handles each message as the local
  runtime does (`core.runtime.host.deliver`).

The Functions deployment keeps Floe's state in the account of `AzureWebJobsStorage`, the connection the
queue triggers listen on; `FLOE_AZURE_CONNECTION_STRING`, when set, must name the same account
(`settings_from` refuses another one: messages would go where no trigger listens).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InvalidParameterValue
from core.messages import POISON_SUFFIX, host_queue
from core.settings import Settings

if TYPE_CHECKING:
    from core.clock import Clock
    from core.handlers import Floe

log = logging.getLogger("floe.functions")

KILL_POLL_SECONDS = 2.0  # how often a process looks for kills in its host queue (one receive each time)
HOST_VISIBILITY_SECONDS = 60  # a kill being handled is hidden this long from a second receive
_DEVELOPMENT_QUEUES = "http://127.0.0.1:10001/devstoreaccount1"  # UseDevelopmentStorage=true

_lock = threading.Lock()
_floe: Floe | None = None
_loop: InstanceLoop | None = None
_clock: Clock | None = None


def floe() -> Floe:
    """This process's `Floe`, built on the first call."""
    global _floe, _loop
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
            built = Floe(settings, storage_from(settings), clock=_clock, run_tasks=True)
            _loop = InstanceLoop(built)
            _loop.start()
            _floe = built
            log.info("Floe host %s ready (storage prefix %r)", built.host_id, settings.storage_prefix)
        return _floe


def reset(*, clock: Clock | None = None) -> None:
    """Stop this process's `Floe` (its task processes are killed) so the next call builds a new one from
    the environment, with `clock` (tests; default the system clock)."""
    global _floe, _loop, _clock
    with _lock:
        if _loop is not None:
            _loop.stop()
        if _floe is not None:
            _floe.close()
        _floe, _loop, _clock = None, None, clock


def settings_from(env: Mapping[str, str]) -> Settings:
    """Floe's settings for the Functions deployment: `Settings.from_env` with two defaults of its own,
    storage `azure` (the triggers are Azure's) and a home under the temporary folder (the app's folder is
    read-only when it runs from a package)."""
    defaults: dict[str, object] = {}
    if not env.get("FLOE_STORAGE"):
        defaults["storage"] = "azure"
    if not env.get("FLOE_HOME"):
        defaults["home"] = Path(tempfile.gettempdir()) / "floe"
    settings = Settings.from_env(env, **defaults)
    if settings.storage != "azure":
        raise InvalidParameterValue(
            f"FLOE_STORAGE: {settings.storage!r} cannot serve the Azure Functions app, whose queue "
            "triggers listen on Azure Storage; use 'azure' (or leave it unset)"
        )
    _check_one_account(env)
    return settings


def _check_one_account(env: Mapping[str, str]) -> None:
    floe_account = env.get("FLOE_AZURE_CONNECTION_STRING", "")
    if not floe_account:
        return  # Floe uses AzureWebJobsStorage itself
    triggers = _queue_endpoint_of_webjobs(env)
    mine = _queue_endpoint(floe_account)
    if triggers and mine and triggers != mine:
        raise InvalidParameterValue(
            f"FLOE_AZURE_CONNECTION_STRING names the queues at {mine}, but the queue triggers listen on "
            f"AzureWebJobsStorage's, at {triggers}: Floe's messages would never reach its functions. "
            "Leave FLOE_AZURE_CONNECTION_STRING unset (Floe then uses AzureWebJobsStorage) or point both "
            "at one account"
        )


def _queue_endpoint_of_webjobs(env: Mapping[str, str]) -> str:
    if env.get("AzureWebJobsStorage"):
        return _queue_endpoint(env["AzureWebJobsStorage"])
    if env.get("AzureWebJobsStorage__queueServiceUri"):  # identity-based connection
        return env["AzureWebJobsStorage__queueServiceUri"].rstrip("/").lower()
    if env.get("AzureWebJobsStorage__accountName"):
        return f"https://{env['AzureWebJobsStorage__accountName']}.queue.core.windows.net".lower()
    return ""


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


class InstanceLoop:
    """The heartbeat and the kills of one worker process (see the module's docstring)."""

    def __init__(self, floe: Floe, *, poll_seconds: float = KILL_POLL_SECONDS) -> None:
        self.floe = floe
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="floe-instance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from core.clock import to_millis
        from core.handlers import HEARTBEAT_MS
        from core.runtime.host import deliver

        floe = self.floe
        last_heartbeat = 0
        while not self._stop.is_set():
            try:
                now_ms = to_millis(floe.clock.now())
                if now_ms - last_heartbeat >= HEARTBEAT_MS:
                    floe.repo.heartbeat(floe.host_id, now_ms)
                    last_heartbeat = now_ms
                queue = floe.storage.queues.queue(host_queue(floe.host_id))
                poison = floe.storage.queues.queue(queue.name + POISON_SUFFIX)
                for message in queue.receive(max_messages=16, visibility_timeout=HOST_VISIBILITY_SECONDS):
                    deliver(floe, queue, poison, message)
            except Exception:
                log.exception("the heartbeat or the kills of Floe host %s failed", floe.host_id)
            self._stop.wait(self.poll_seconds)
