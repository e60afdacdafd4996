"""Notification destinations: where `webhook_notifications` send, managed through
`/api/2.0/notification-destinations` in the shapes of the Databricks SDK (`settings.NotificationDestination`).

A destination has a UUID `id`, a `display_name`, and a `config` wrapping exactly one of:

| config key | destination_type | fields Floe uses |
|---|---|---|
| `generic_webhook` | WEBHOOK | `url` (required), `username`, `password` (optional; `core.notify.delivery`) |
| `slack` | SLACK | `url`: a Slack incoming-webhook URL (required) |
| `microsoft_teams` | MICROSOFT_TEAMS | `url`: a Teams incoming-webhook or Workflows URL (required) |
| `email` | EMAIL | `addresses`: email addresses (required), sent through FLOE_SMTP_* |

PagerDuty and the Databricks Slack / Teams apps are refused, as are the app fields of `slack`
(`oauth_token`, `channel_id`) and `microsoft_teams` (`app_id`, `auth_secret`, `channel_url`, `tenant_id`):
Floe only posts to webhook URLs.

Secrets are write-only, as on Databricks: `url`, `username` and `password` are never returned; reads
show `url_set`, `username_set`, `password_set` instead (`email.addresses` is shown). The type cannot
change. An update merges: the fields it gives replace the stored ones (an empty string clears an optional
one), the others are kept, so a client that read a destination (and so never saw its secrets) can rename it
or change one field. `*_set` fields sent back by a client are ignored.

Storage: table `destinations`, PartitionKey `d`, RowKey the id; the config is JSON in one property,
secrets included (delivery needs them in the clear, like webhook-trigger secrets). An update is a
conditional replace on the ETag that was read. Listing is by id, `page_size` (1..100, default 100) at a
time, with an opaque `page_token`.
"""

from __future__ import annotations

import base64
import builtins
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.clock import Clock, to_millis
from core.errors import InvalidParameterValue, ResourceConflict, ResourceDoesNotExist
from core.model.base import invalid
from core.notify.delivery import DeliveryError, check_address
from core.store import Entity, EntityExists, EtagMismatch, TableStore

__all__ = [
    "Destination",
    "DestinationNotFound",
    "DestinationService",
    "DestinationType",
    "render_destination",
]

MAX_DISPLAY_NAME = 255
MAX_URL = 2048
MAX_ADDRESSES = 100
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
_PARTITION = "d"
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


class DestinationType(StrEnum):
    WEBHOOK = "WEBHOOK"
    SLACK = "SLACK"
    MICROSOFT_TEAMS = "MICROSOFT_TEAMS"
    EMAIL = "EMAIL"


# config key -> (type, fields accepted, secret fields, required fields)
_KINDS: dict[str, tuple[DestinationType, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "generic_webhook": (
        DestinationType.WEBHOOK,
        ("url", "username", "password"),
        ("url", "username", "password"),
        ("url",),
    ),
    "slack": (DestinationType.SLACK, ("url",), ("url",), ("url",)),
    "microsoft_teams": (DestinationType.MICROSOFT_TEAMS, ("url",), ("url",), ("url",)),
    "email": (DestinationType.EMAIL, ("addresses",), (), ("addresses",)),
}
_KEY_OF = {kind: key for key, (kind, *_) in _KINDS.items()}
_UNSUPPORTED = {
    "pagerduty": "PagerDuty destinations are not supported by Floe",
    "databricks_app_slack": "the Databricks Slack app is not available in Floe",
    "databricks_app_teams": "the Databricks Teams app is not available in Floe",
}
_APP_FIELDS = {
    "slack": ("channel_id", "oauth_token"),
    "microsoft_teams": ("app_id", "auth_secret", "channel_url", "tenant_id"),
}


class DestinationNotFound(ResourceDoesNotExist):
    def __init__(self, destination_id: str) -> None:
        super().__init__(f"Notification destination {destination_id[:80]} does not exist.")
        self.destination_id = destination_id


@dataclass(frozen=True)
class Destination:
    id: str
    display_name: str
    type: DestinationType
    config: dict[str, Any] = field(repr=False)  # the inner config (e.g. the `slack` object), secrets included
    created_time: int = 0
    etag: str | None = field(default=None, repr=False)


def render_destination(destination: Destination, *, with_config: bool = True) -> dict[str, Any]:
    """The API shape: `NotificationDestination` (with its config, secrets as `*_set` flags), or the
    `ListNotificationDestinationsResult` of a listing (`with_config=False`)."""
    body: dict[str, Any] = {
        "id": destination.id,
        "display_name": destination.display_name,
        "destination_type": destination.type.value,
    }
    if with_config:
        key = _KEY_OF[destination.type]
        _, fields, secrets, _ = _KINDS[key]
        shown: dict[str, Any] = {}
        for name in fields:
            value = destination.config.get(name)
            if name in secrets:
                shown[f"{name}_set"] = bool(value)
            elif value:
                shown[name] = value
        body["config"] = {key: shown}
    return body


class DestinationService:
    """CRUD of destinations. Every method raises `InvalidParameterValue` naming the field for a bad body and
    `DestinationNotFound` (404 RESOURCE_DOES_NOT_EXIST) for an unknown id."""

    def __init__(self, tables: TableStore, clock: Clock) -> None:
        self.table = tables.table("destinations")
        self.clock = clock

    def __repr__(self) -> str:
        return "DestinationService()"

    def create(self, body: Mapping[str, Any]) -> Destination:
        name = _display_name(body.get("display_name"), required=True)
        raw = body.get("config")
        if raw is None:
            raise invalid("config", "is required: wrap exactly one of " + ", ".join(_KINDS))
        key, given = _one_config(raw)
        kind, _, _, required = _KINDS[key]
        config = _config_fields(key, given)
        for name_ in required:
            if not config.get(name_):
                raise invalid(f"config.{key}.{name_}", "is required")
        now = to_millis(self.clock.now())
        while True:
            destination = Destination(str(uuid.uuid4()), name, kind, config, now)
            try:
                stored = self.table.insert(Entity(_PARTITION, destination.id, _props(destination)))
            except EntityExists:  # a UUID collision: draw again
                continue
            return _replace_etag(destination, stored.etag)

    def get(self, destination_id: str) -> Destination:
        if not isinstance(destination_id, str) or _ID.fullmatch(destination_id) is None:
            raise DestinationNotFound(str(destination_id))
        entity = self.table.get(_PARTITION, destination_id)
        if entity is None:
            raise DestinationNotFound(destination_id)
        return _destination(entity)

    def find(self, destination_id: str) -> Destination | None:
        """The destination, or None (for delivery, which records a missing one as a failure)."""
        try:
            return self.get(destination_id)
        except DestinationNotFound:
            return None

    def list(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, page_token: str | None = None
    ) -> tuple[builtins.list[Destination], str | None]:
        """One page, by id, and the token of the next page (None after the last)."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 1 and {MAX_PAGE_SIZE}", page_size)
        after = _decode_token(page_token) if page_token else None
        found: builtins.list[Destination] = []
        low = after + "\x00" if after is not None else None
        for entity in self.table.scan(_PARTITION, row_key_from=low):
            found.append(_destination(entity))
            if len(found) > page_size:
                break
        page = found[:page_size]
        more = len(found) > page_size
        return page, (_encode_token(page[-1].id) if more and page else None)

    def update(self, destination_id: str, body: Mapping[str, Any]) -> Destination:
        if body.get("display_name") is None and body.get("config") is None:
            raise InvalidParameterValue(
                "At least one of display_name and config is required to update a notification destination."
            )
        for _ in range(10):
            current = self.get(destination_id)
            name = current.display_name
            if body.get("display_name") is not None:
                name = _display_name(body.get("display_name"), required=True)
            config = dict(current.config)
            if body.get("config") is not None:
                key, given = _one_config(body["config"])
                if _KINDS[key][0] is not current.type:
                    raise invalid(
                        f"config.{key}",
                        f"cannot change the type of destination {current.id} ({current.type.value})",
                    )
                for name_, value in _config_fields(key, given).items():
                    if value in ("", None, []) and name_ in _KINDS[key][3]:
                        raise invalid(f"config.{key}.{name_}", "cannot be cleared: it is required", value)
                    config[name_] = value
                config = {k: v for k, v in config.items() if v not in ("", None, [])}
            updated = Destination(current.id, name, current.type, config, current.created_time)
            try:
                stored = self.table.replace(Entity(_PARTITION, current.id, _props(updated), current.etag))
            except EtagMismatch:
                continue
            return _replace_etag(updated, stored.etag)
        raise ResourceConflict(
            f"Notification destination {destination_id} changed while it was updated; try again."
        )

    def delete(self, destination_id: str) -> None:
        self.get(destination_id)  # DestinationNotFound for an unknown id, as Databricks answers
        self.table.delete(_PARTITION, destination_id)


# -- validation -----------------------------------------------------------------------------------------


def _display_name(value: Any, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise invalid("display_name", "is required and must be a non-empty string", value)
    if len(value) > MAX_DISPLAY_NAME:
        raise invalid("display_name", f"must be at most {MAX_DISPLAY_NAME} characters; it has {len(value)}")
    return value.strip()


def _one_config(raw: Any) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(raw, Mapping):
        raise invalid("config", "must be a JSON object", raw)
    keys = [k for k, v in raw.items() if v is not None]
    for key in keys:
        if key in _UNSUPPORTED:
            raise invalid(
                f"config.{key}",
                f"cannot be used: {_UNSUPPORTED[key]}; use generic_webhook, slack, microsoft_teams or email",
            )
    known = [k for k in keys if k in _KINDS]
    if len(known) != 1 or len(keys) != 1:
        raise invalid("config", "must wrap exactly one of " + ", ".join(_KINDS), sorted(keys))
    key = known[0]
    given = raw[key]
    if not isinstance(given, Mapping):
        raise invalid(f"config.{key}", "must be a JSON object", given)
    return key, given


def _config_fields(key: str, given: Mapping[str, Any]) -> dict[str, Any]:
    _, fields, _, _ = _KINDS[key]
    out: dict[str, Any] = {}
    for name, value in given.items():
        path = f"config.{key}.{name}"
        if name.endswith("_set"):
            continue  # an output-only flag a client echoed back
        if name in _APP_FIELDS.get(key, ()):
            raise invalid(path, "is not supported: Floe posts to webhook URLs (set url instead)")
        if name not in fields:
            raise invalid(path, "is not a field of " + key + " (fields: " + ", ".join(fields) + ")")
        if value is None:
            continue
        if name == "url":
            out[name] = _url(value, path)
        elif name == "addresses":
            out[name] = _addresses(value, path)
        else:
            if not isinstance(value, str):
                raise invalid(path, "must be a string")  # never echoed: it may be a secret
            out[name] = value
    return out


def _url(value: Any, path: str) -> str:
    # The value is never echoed back: Slack and Teams URLs are secrets.
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise invalid(path, "must be an http:// or https:// URL")
    if len(value) > MAX_URL:
        raise invalid(path, f"must be at most {MAX_URL} characters; it has {len(value)}")
    return value


def _addresses(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise invalid(path, "must be a non-empty JSON array of email addresses", value)
    if len(value) > MAX_ADDRESSES:
        raise invalid(path, f"must have at most {MAX_ADDRESSES} addresses; it has {len(value)}")
    for i, address in enumerate(value):
        try:
            check_address(address.strip())
        except DeliveryError:
            raise invalid(f"{path}[{i}]", "must be an email address", address) from None
    return [a.strip() for a in value]


# -- storage --------------------------------------------------------------------------------------------


def _props(destination: Destination) -> dict[str, Any]:
    return {
        "display_name": destination.display_name,
        "type": destination.type.value,
        "config": json.dumps(destination.config, separators=(",", ":")),
        "created": destination.created_time,
    }


def _destination(entity: Entity) -> Destination:
    return Destination(
        id=entity.row_key,
        display_name=str(entity.get("display_name", "")),
        type=DestinationType(str(entity.get("type"))),
        config=json.loads(str(entity.get("config") or "{}")),
        created_time=int(entity.get("created", 0)),
        etag=entity.etag,
    )


def _replace_etag(destination: Destination, etag: str | None) -> Destination:
    return Destination(
        destination.id,
        destination.display_name,
        destination.type,
        destination.config,
        destination.created_time,
        etag,
    )


def _encode_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        value = ""
    if _ID.fullmatch(value) is None:
        raise invalid("page_token", "is not a page token this server issued", token[:64])
    return value
