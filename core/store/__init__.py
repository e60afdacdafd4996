"""Floe's storage: the ports (`core.store.ports`), Azure's limits (`core.store.limits`) and two adapters,
the embedded default on SQLite (`core.store.sqlite`) and Azure Storage (`core.store.azure`).

`open_storage` is the one place adapters are built; the Azure SDKs are imported only when it builds one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.store import limits
from core.store.ports import (
    BatchFailed,
    BatchOp,
    Blob,
    BlobExists,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    Entity,
    EntityExists,
    EntityNotFound,
    EtagMismatch,
    LimitExceeded,
    Message,
    Page,
    Queue,
    QueueStore,
    ReceiptExpired,
    Storage,
    StoreError,
    Table,
    TableStore,
    Value,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = [
    "BatchFailed",
    "BatchOp",
    "Blob",
    "BlobExists",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Entity",
    "EntityExists",
    "EntityNotFound",
    "EtagMismatch",
    "LimitExceeded",
    "Message",
    "Page",
    "Queue",
    "QueueStore",
    "ReceiptExpired",
    "Storage",
    "StoreError",
    "Table",
    "TableStore",
    "Value",
    "open_storage",
]


def open_storage(
    kind: str,
    *,
    root: Path | None = None,
    connection_string: str | None = None,
    prefix: str = "",
    options: Mapping[str, Any] | None = None,
    credential: TokenCredential | None = None,
    client_id: str = "",
) -> Storage:
    """The tables, queues and blobs of one Floe deployment.

    kind "sqlite" needs `root` (created if missing); kind "azure" needs `connection_string` and passes
    `options` to every SDK client. A connection string without AccountKey or SharedAccessSignature signs
    in with Microsoft Entra ID: with `credential` (any azure-core TokenCredential) when given, else with
    `DefaultAzureCredential` for the managed identity `client_id` ("" for the system-assigned one).
    `prefix` (lowercase letters and digits) is prepended to every table, queue and container name, so that
    several deployments or tests share one account; the blob container is `<prefix>floe`.
    """
    limits.check_prefix(prefix)
    if kind == "sqlite":
        if root is None:
            raise ValueError("open_storage('sqlite') needs root, the folder that holds floe.db and blobs/")
        from core.store.sqlite import open_sqlite

        return open_sqlite(Path(root), prefix)
    if kind == "azure":
        if not connection_string:
            raise ValueError("open_storage('azure') needs connection_string")
        from core.store.azure import open_azure

        return open_azure(connection_string, prefix, options, credential, client_id=client_id)
    raise ValueError(f"storage kind {kind!r} is unknown: use 'sqlite' or 'azure'")
