"""`/api/2.0/notification-destinations`, as the Databricks SDK's `NotificationDestinationsAPI` calls it,
and Floe's record of a run's notifications.

| method | path | body / query | answer |
|---|---|---|---|
| POST | `notification-destinations` | `{display_name, config}` | the `NotificationDestination` |
| GET | `notification-destinations` | `page_size`, `page_token` | `{results: [...], next_page_token?}` |
| GET | `notification-destinations/{id}` | | the `NotificationDestination` |
| PATCH | `notification-destinations/{id}` | `{display_name?, config?}` | the `NotificationDestination` |
| DELETE | `notification-destinations/{id}` | | `{}` |
| GET | `/api/floe/runs/notifications` | `run_id` | `{notifications: [...]}` (`Notifier.history`) |

The service is `call.floe.destinations` (`core.notify.DestinationService`): shapes, secrets and validation
are described there. An unknown id is 404 RESOURCE_DOES_NOT_EXIST. A run's notification record is not part of
runs/get: the Jobs API has no field for it, and it stays off the wire clients parse.
"""

from __future__ import annotations

import builtins
from typing import Any, Protocol

from core.api.call import Call, Endpoint
from core.errors import InvalidParameterValue
from core.notify.destinations import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Destination, render_destination

__all__ = ["HISTORY_PATH", "ROUTES", "DestinationsApi", "history"]

HISTORY_PATH = "/api/floe/runs/notifications"


class DestinationsApi(Protocol):
    def create(self, body: dict[str, Any]) -> Destination: ...

    def get(self, destination_id: str) -> Destination: ...

    def list(
        self, *, page_size: int = ..., page_token: str | None = ...
    ) -> tuple[builtins.list[Destination], str | None]: ...

    def update(self, destination_id: str, body: dict[str, Any]) -> Destination: ...

    def delete(self, destination_id: str) -> None: ...


def _service(call: Call) -> DestinationsApi:
    service = getattr(call.floe, "destinations", None)
    if service is None:
        raise InvalidParameterValue("This Floe server does not manage notification destinations.")
    return service  # type: ignore[no-any-return]


def _id(call: Call) -> str:
    return str(call.params.get("id") or "")


def _body(call: Call) -> dict[str, Any]:
    return {k: v for k, v in call.params.items() if k != "id"}


def create(call: Call) -> dict[str, Any]:
    return render_destination(_service(call).create(_body(call)))


def get(call: Call) -> dict[str, Any]:
    return render_destination(_service(call).get(_id(call)))


def list_destinations(call: Call) -> dict[str, Any]:
    size = call.get_int("page_size", min=0, max=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
    page, token = _service(call).list(page_size=size, page_token=call.page_token())
    body: dict[str, Any] = {"results": [render_destination(d, with_config=False) for d in page]}
    if token:
        body["next_page_token"] = token
    return body


def update(call: Call) -> dict[str, Any]:
    return render_destination(_service(call).update(_id(call), _body(call)))


def delete(call: Call) -> dict[str, Any]:
    _service(call).delete(_id(call))
    return {}


def history(call: Call) -> dict[str, Any]:
    """What Floe sent (or failed to send) for a run: `GET /api/floe/runs/notifications?run_id=N`."""
    run_id = call.get_id("run_id")
    call.floe.get_run(run_id)  # RunNotFound for a run that does not exist
    notifier = getattr(call.floe, "notifier", None)
    return {"notifications": notifier.history(run_id) if notifier is not None else []}


ROUTES: tuple[tuple[str, str, Endpoint], ...] = (
    ("POST", "notification-destinations", create),
    ("GET", "notification-destinations", list_destinations),
    ("GET", "notification-destinations/{id}", get),
    ("PATCH", "notification-destinations/{id}", update),
    ("DELETE", "notification-destinations/{id}", delete),
)
