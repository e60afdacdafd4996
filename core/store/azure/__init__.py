"""Azure Storage adapters: Table Storage, Queue Storage (base64 bodies) and one blob container.

Built from a connection string (`UseDevelopmentStorage=true` or explicit endpoints work for Azurite). Each
SDK client is created once, with its table, queue or container, and reused for the life of the process.
The contracts are in `core.store.ports`. Imported only when an Azure store is opened: the SDKs are heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.store.azure.blobs import AzureBlobStore
from core.store.azure.queues import AzureQueueStore
from core.store.azure.tables import AzureTableStore
from core.store.ports import Storage

__all__ = ["AzureBlobStore", "AzureQueueStore", "AzureTableStore", "open_azure"]


def open_azure(connection_string: str, prefix: str = "", options: Mapping[str, Any] | None = None) -> Storage:
    """The stores of one storage account. No request is made until a table, queue or blob is used.
    `options` go to every SDK client (e.g. `retry_total`, `connection_timeout`)."""
    return Storage(
        tables=AzureTableStore(connection_string, prefix, options),
        queues=AzureQueueStore(connection_string, prefix, options),
        blobs=AzureBlobStore(connection_string, f"{prefix}floe", options),
        kind="azure",
    )
