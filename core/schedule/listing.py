"""The reconcile listing of a file-arrival location: every file under it, as `reconcile_listing` takes them.

`list_location` returns `(path, size_bytes, modified_ms)` tuples sorted by path. `path` is relative to
the location and is the same string `location.relative(<URL or absolute path of that file>)` returns,
so events and listings name a file alike. The listing is complete or it raises: a partial listing would
make `reconcile_listing` forget files.

**What is not a file.** A path any of whose segments below the location is `ignored` is left out, on
both kinds of store, so a trigger behaves the same wherever its folder lives (event sources should apply
`ignored` too):

- hidden names (`.x`, and everything inside a `.x/` folder): editors' swap files, rsync's `.name.XXXXXX`
  temporaries, `.DS_Store`;
- files still being written by the usual tools: names starting with `~` (Office lock files) and names
  ending in `.tmp`, `.part` or `._COPYING_` (Hadoop's `fs -put`), case-insensitively. A writer that
  renames on completion is seen once, under its final name.

Names starting with `_` (Spark's `_SUCCESS`) are files. Locally, symlinks to files are listed with their
target's size and modified time; symlinks to folders are not descended (no cycles, no escaping the
folder); broken symlinks are skipped. On Azure, folder markers (names ending in `/`, and the zero-length
`hdi_isfolder` blobs of hierarchical-namespace accounts) are not files.

**Missing is empty.** A local folder or Azure container that does not exist lists as empty: it may be
created after the trigger.

**Errors.** More than `limit` files (Databricks allows 10,000 per location), a local location that is a
file or cannot be read, or an Azure account Floe has no connection string for: `InvalidState` naming the
location and what to do; retrying without a change fails the same way. An Azure request that fails:
`StoreError` (possibly transient).

Azure credentials: Floe lists only the account its own connection string reaches. The connection
string's account must equal the location's; its endpoints (Azurite's loopback URL included) are used.
One `ContainerClient` per (connection string, container) is kept for the process.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from core.errors import InvalidState
from core.schedule.urls import StorageLocation

if TYPE_CHECKING:
    from azure.storage.blob import BlobProperties, ContainerClient

MAX_FILES = 10_000  # Databricks' file-arrival limit per location
_TEMPORARY_SUFFIXES = (".tmp", ".part", "._copying_")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

Listing = list[tuple[str, int, int]]


def ignored(relative_path: str) -> bool:
    """True when a file at `relative_path` (below a location, `/`-separated) is not taken as an arrival."""
    return any(_ignored_name(name) for name in relative_path.split("/"))


def _ignored_name(name: str) -> bool:
    return name.startswith((".", "~")) or name.lower().endswith(_TEMPORARY_SUFFIXES)


def list_location(
    location: StorageLocation,
    *,
    azure_connection_string: str = "",
    azure_client_id: str = "",
    limit: int = MAX_FILES,
) -> Listing:
    """Every file under `location`, `(relative path, size in bytes, modified epoch ms)`, sorted by path.
    A keyless connection string signs in with Entra ID (`azure_client_id`: a user-assigned identity)."""
    if location.kind == "local":
        files = _list_local(location, limit)
    else:
        files = _list_azure(location, azure_connection_string, azure_client_id, limit)
    return sorted(files)


def _url(location: StorageLocation) -> str:
    """The location as a URL for messages: `file:///...` or its blob endpoint URL."""
    if location.kind == "local":
        return location.prefix
    return f"{location.endpoint}/{location.container}/{location.path}"


def _too_many(location: StorageLocation, limit: int) -> InvalidState:
    return InvalidState(
        f"{_url(location)} has more than {limit} files; a file-arrival trigger watches at most "
        f"{limit} files per location: point the trigger at a narrower folder, or move processed files away"
    )


# ------------------------------------------------------------------------------------------------- local


def _list_local(location: StorageLocation, limit: int) -> Listing:
    files: Listing = []
    pending = [(location.path, "")]
    while pending:
        folder, rel = pending.pop()
        try:
            with os.scandir(folder) as entries:
                children = list(entries)
        except FileNotFoundError:
            continue  # not created yet, or removed while we walked: nothing in it now
        except NotADirectoryError:
            raise InvalidState(f"{_url(location)} is a file; a file-arrival URL names a folder") from None
        except PermissionError:
            raise InvalidState(
                f"{_url(location)} cannot be listed: permission denied on {folder}; "
                "let the Floe process read the folder"
            ) from None
        for entry in children:
            if _ignored_name(entry.name):
                continue
            path = f"{rel}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, path + "/"))
                    continue
                if not entry.is_file():  # broken symlink, symlink to a folder, socket, fifo
                    continue
                stat = entry.stat()
            except FileNotFoundError:
                continue  # removed since scandir: not there now
            files.append((path, stat.st_size, stat.st_mtime_ns // 1_000_000))
            if len(files) > limit:
                raise _too_many(location, limit)
    return files


# ------------------------------------------------------------------------------------------------- azure


def _list_azure(location: StorageLocation, connection_string: str, client_id: str, limit: int) -> Listing:
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from core.store.azure._common import account_name, unexpected

    if not connection_string:
        raise InvalidState(
            f"{_url(location)} cannot be listed: Floe has no Azure Storage connection string; "
            f"configure one for account {location.account!r}"
        )
    account = account_name(connection_string).lower()
    if account != location.account:
        raise InvalidState(
            f"{_url(location)} cannot be listed: it is in storage account {location.account!r}, "
            f"but Floe's connection string is for account {account!r}; Floe lists only the account its "
            "connection string reaches"
        )
    container = _container_client(connection_string, location.container or "", client_id)
    files: Listing = []
    try:
        for blob in container.list_blobs(name_starts_with=location.path or None, include=["metadata"]):
            if _is_folder_marker(blob):
                continue
            path = _relative_blob_name(blob.name[len(location.path) :])
            if path is None or ignored(path):
                continue
            files.append((path, int(blob.size or 0), (blob.last_modified - _EPOCH) // _MS))
            if len(files) > limit:
                raise _too_many(location, limit)
    except ResourceNotFoundError:
        return []  # the container does not exist (yet)
    except AzureError as exc:
        raise unexpected(f"listing {_url(location)}", exc) from exc
    return files


def _relative_blob_name(rest: str) -> str | None:
    """The blob name below the location as `StorageLocation.relative` spells it from the blob's URL
    (empty and `.` segments collapsed); None for names no URL reaches (`..` segments, the folder itself)."""
    segments = [s for s in rest.split("/") if s not in ("", ".")]
    if not segments or ".." in segments:
        return None
    return "/".join(segments)


def _is_folder_marker(blob: BlobProperties) -> bool:
    return blob.name.endswith("/") or (blob.metadata or {}).get("hdi_isfolder", "").lower() == "true"


@functools.lru_cache(maxsize=32)
def _container_client(connection_string: str, container: str, client_id: str) -> ContainerClient:
    from azure.core.exceptions import AzureError
    from azure.storage.blob import BlobServiceClient

    from core.store.azure._common import API_VERSION, bad_connection_string
    from core.store.azure._connect import default_credential, is_keyless, service_client

    credential = default_credential(client_id) if is_keyless(connection_string) else None
    try:
        service = service_client(
            BlobServiceClient,
            BlobServiceClient.from_connection_string,
            "blob",
            connection_string,
            credential,
            {"api_version": API_VERSION},
        )
        return service.get_container_client(container)
    except (ValueError, TypeError, AzureError) as exc:
        raise bad_connection_string(exc) from None  # the SDK's message may quote the string
