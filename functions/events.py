"""Event Grid: `Microsoft.Storage.BlobCreated` events become file arrivals (`Floe.handle_blob_created`).

An Event Grid subscription on each storage account that holds file-arrival folders delivers here
(filter it to BlobCreated; every other event type is ignored). The run itself starts at the next tick,
once the trigger's `wait_after_last_change_seconds` and `min_time_between_triggers_seconds` allow; the
periodic listing of every location finds what an event missed.

Why no blob trigger (`source=EventGrid`): it binds one container fixed at deployment and downloads the
blob, while file-arrival locations are any folder of any account, chosen when a job is saved, and Floe
needs only the URL and the size. The Event Grid trigger takes events from any account, reads nothing,
and is what a blob trigger with `source=EventGrid` receives underneath anyway.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions import root

log = logging.getLogger("floe.functions")

bp = func.Blueprint()

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# Accounts with a hierarchical namespace announce a file twice: CreateFile (still empty) and, once its
# content is written, FlushWithClose. Only the second is an arrival.
_NOT_YET_WRITTEN = frozenset({"CreateFile"})


@bp.function_name("blob_created")
@bp.event_grid_trigger(arg_name="event")
def blob_created(event: func.EventGridEvent) -> None:
    if event.event_type != BLOB_CREATED:
        log.debug("ignoring Event Grid event %s of type %s", event.id, event.event_type)
        return
    data = event.get_json()
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url:
        log.warning("ignoring BlobCreated event %s without a blob url (subject %s)", event.id, event.subject)
        return
    if data.get("api") in _NOT_YET_WRITTEN:
        log.debug("ignoring BlobCreated event %s for %s: the file is not written yet", event.id, url)
        return
    size = data.get("contentLength")
    recorded = root.floe().handle_blob_created(url, size if isinstance(size, int) else 0, None)
    log.info("blob %s arrived for %d file-arrival trigger(s)", url, recorded)
