"""One typed settings object, loaded from a mapping that defaults to `os.environ`.

Every setting Floe reads is listed here, with its environment variable. Unknown `FLOE_*` variables are
rejected (a typo should not silently fall back to a default). `repr` masks secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from core.errors import InvalidParameterValue

_SECRET = "***"


@dataclass(frozen=True)
class Settings:
    home: Path = Path(".floe")  # FLOE_HOME: SQLite file, blobs, local logs
    storage: str = "sqlite"  # FLOE_STORAGE: "sqlite" (embedded default) or "azure"
    # FLOE_AZURE_CONNECTION_STRING or AzureWebJobsStorage. Without a key (endpoints or an account name only)
    # Floe signs in with Microsoft Entra ID (core/store/azure/_connect.py).
    azure_connection_string: str = field(default="", repr=False)
    # FLOE_AZURE_CLIENT_ID: the user-assigned managed identity a keyless
    # connection signs in with (default: the system-assigned one, or `az login` off Azure)
    azure_client_id: str = ""
    storage_prefix: str = ""  # FLOE_STORAGE_PREFIX: prepended to table/queue/container names
    admin_token: str = field(default="", repr=False)  # FLOE_ADMIN_TOKEN: accepted as an admin bearer token
    workspace: Path | None = (
        None  # FLOE_WORKSPACE: where relative task file paths resolve (default <home>/workspace)
    )
    host: str = "127.0.0.1"  # FLOE_HOST
    port: int = 8080  # FLOE_PORT
    workers: int = 4  # FLOE_WORKERS: queue worker threads per host
    public_url: str = ""  # FLOE_PUBLIC_URL: base of run_page_url (default: the request's own base URL)
    tick_seconds: float = 1.0  # FLOE_TICK_SECONDS: how often the local runtime ticks
    log_format: str = "text"  # FLOE_LOG_FORMAT: `floe serve` logs as "text" or "json" lines (with trace ids)
    python: str = ""  # FLOE_PYTHON: interpreter for Python tasks (default: the one running Floe)
    # FLOE_TRIGGER_MIN_SECONDS: the floor of file-arrival / table-update timers (Databricks: 60)
    trigger_min_seconds: int = 60
    # FLOE_TRIGGER_POLL_SECONDS: how often file-arrival folders are listed and Delta tables polled
    trigger_poll_seconds: float = 60.0
    # Notifications (core.notify): the SMTP server emails go through; no host means emails are skipped.
    smtp_host: str = ""  # FLOE_SMTP_HOST
    smtp_port: int = 25  # FLOE_SMTP_PORT
    smtp_security: str = "none"  # FLOE_SMTP_SECURITY: "none", "starttls" or "ssl" (implicit TLS)
    smtp_user: str = ""  # FLOE_SMTP_USER: log in when set
    smtp_password: str = field(default="", repr=False)  # FLOE_SMTP_PASSWORD
    smtp_from: str = "floe@localhost"  # FLOE_SMTP_FROM: the sender address
    # FLOE_TASKS: where task attempts run: "local" (on the host that receives their task.start, from
    # floe-work) or "runners" (sent to the floe-tasks queue, which only `floe runner` hosts receive)
    tasks: str = "local"
    # FLOE_TASK_POLL_SECONDS: with runners, how often a dispatcher checks a run's attempts (run.poll)
    task_poll_seconds: float = 30.0
    # FLOE_RUNNER_SLOTS: the most task processes a `floe runner` runs at once (0: no limit)
    runner_slots: int = 0

    @property
    def workspace_dir(self) -> Path:
        return self.workspace or self.home / "workspace"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the settings from `env` (default `os.environ`); keyword overrides win (used by the CLI)."""
        env = os.environ if env is None else env
        unknown = sorted(k for k in env if k.startswith("FLOE_") and k not in _KNOWN)
        if unknown:
            raise InvalidParameterValue(
                f"unknown setting(s) {', '.join(unknown)}; "
                f"known FLOE_* settings are {', '.join(sorted(_KNOWN))}"
            )
        values: dict[str, object] = {}
        for name, var in _ENV.items():
            if var in env and env[var] != "":
                values[name] = env[var]
        if "azure_connection_string" not in values and env.get("AzureWebJobsStorage"):
            values["azure_connection_string"] = env["AzureWebJobsStorage"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRETS:
                value = _SECRET if value else ""
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


_ENV = {
    "home": "FLOE_HOME",
    "storage": "FLOE_STORAGE",
    "azure_connection_string": "FLOE_AZURE_CONNECTION_STRING",
    "azure_client_id": "FLOE_AZURE_CLIENT_ID",
    "storage_prefix": "FLOE_STORAGE_PREFIX",
    "admin_token": "FLOE_ADMIN_TOKEN",
    "workspace": "FLOE_WORKSPACE",
    "host": "FLOE_HOST",
    "port": "FLOE_PORT",
    "workers": "FLOE_WORKERS",
    "public_url": "FLOE_PUBLIC_URL",
    "tick_seconds": "FLOE_TICK_SECONDS",
    "log_format": "FLOE_LOG_FORMAT",
    "python": "FLOE_PYTHON",
    "trigger_min_seconds": "FLOE_TRIGGER_MIN_SECONDS",
    "trigger_poll_seconds": "FLOE_TRIGGER_POLL_SECONDS",
    "smtp_host": "FLOE_SMTP_HOST",
    "smtp_port": "FLOE_SMTP_PORT",
    "smtp_security": "FLOE_SMTP_SECURITY",
    "smtp_user": "FLOE_SMTP_USER",
    "smtp_password": "FLOE_SMTP_PASSWORD",
    "smtp_from": "FLOE_SMTP_FROM",
    "tasks": "FLOE_TASKS",
    "task_poll_seconds": "FLOE_TASK_POLL_SECONDS",
    "runner_slots": "FLOE_RUNNER_SLOTS",
}
_KNOWN = frozenset(_ENV.values())
_SECRETS = frozenset({"azure_connection_string", "admin_token", "smtp_password"})


def _coerce(values: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in values.items():
        var = _ENV.get(name, name)
        if name in ("home", "workspace"):
            out[name] = Path(str(value)).expanduser()
        elif name in ("port", "workers", "trigger_min_seconds", "smtp_port", "runner_slots"):
            try:
                number = int(str(value))
            except ValueError:
                raise InvalidParameterValue(f"{var}: {value!r} is not an integer") from None
            low, high = {
                "port": (1, 65535),
                "workers": (1, 256),
                "trigger_min_seconds": (0, 60),
                "smtp_port": (1, 65535),
                "runner_slots": (0, 1024),
            }[name]
            if not low <= number <= high:
                raise InvalidParameterValue(f"{var}: {number} is outside {low}..{high}")
            out[name] = number
        elif name in ("tick_seconds", "trigger_poll_seconds", "task_poll_seconds"):
            try:
                seconds = float(str(value))
            except ValueError:
                raise InvalidParameterValue(f"{var}: {value!r} is not a number") from None
            low, high = {
                "tick_seconds": (0.05, 60),
                "trigger_poll_seconds": (0.1, 3600),
                "task_poll_seconds": (0.1, 3600),
            }[name]
            if not low <= seconds <= high:
                raise InvalidParameterValue(f"{var}: {seconds} is outside {low}..{high} seconds")
            out[name] = seconds
        elif name == "storage":
            if value not in ("sqlite", "azure"):
                raise InvalidParameterValue(f"{var}: {value!r} is not one of 'sqlite', 'azure'")
            out[name] = value
        elif name == "log_format":
            if value not in ("text", "json"):
                raise InvalidParameterValue(f"{var}: {value!r} is not one of 'text', 'json'")
            out[name] = value
        elif name == "tasks":
            if value not in ("local", "runners"):
                raise InvalidParameterValue(f"{var}: {value!r} is not one of 'local', 'runners'")
            out[name] = value
        elif name == "smtp_security":
            if value not in ("none", "starttls", "ssl"):
                raise InvalidParameterValue(f"{var}: {value!r} is not one of 'none', 'starttls', 'ssl'")
            out[name] = value
        else:
            out[name] = str(value)
    if out.get("storage") == "azure" and not out.get("azure_connection_string"):
        raise InvalidParameterValue(
            "FLOE_STORAGE=azure needs a connection string in FLOE_AZURE_CONNECTION_STRING or "
            "AzureWebJobsStorage: with a key, or without one (AccountName=<account>, or the account's "
            "BlobEndpoint, QueueEndpoint and TableEndpoint) to sign in with Microsoft Entra ID"
        )
    return out
