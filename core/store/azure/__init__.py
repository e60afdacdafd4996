"""Azure Storage adapters: Table Storage, Queue Storage (base64 bodies) and one blob container.

Built from a connection string (`UseDevelopmentStorage=true` or explicit endpoints work for Azurite). One
with a key or SAS is used as it is; one without (endpoints or an account name only) signs in with
Microsoft Entra ID (`core.store.azure._connect`). Each SDK client is created once, with its table, queue or
container, and reused for the life of the process. The contracts are in `core.store.ports`. Imported only
when an Azure store is opened: the SDKs are heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.store.azure._connect import check_keyless, default_credential, is_keyless
from core.store.azure.blobs import AzureBlobStore
from core.store.azure.queues import AzureQueueStore
from core.store.azure.tables import AzureTableStore
from core.store.ports import Storage

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["AzureBlobStore", "AzureQueueStore", "AzureTableStore", "open_azure"]


def open_azure(
    connection_string: str,
    prefix: str = "",
    options: Mapping[str, Any] | None = None,
    credential: TokenCredential | None = None,
    *,
    client_id: str = "",
) -> Storage:
    """The stores of one storage account. No request is made until a table, queue or blob is used.
    `options` go to every SDK client (e.g. `retry_total`, `connection_timeout`).

    A keyless connection string signs in with `credential` when given, else with this process's
    `DefaultAzureCredential` for the managed identity `client_id` ("" for the system-assigned one); a
    connection string with a key or SAS ignores both. Raises StoreError when a keyless string does not name
    an https endpoint for each service."""
    if is_keyless(connection_string):
        check_keyless(connection_string)
        credential = credential or default_credential(client_id)
    return Storage(
        tables=AzureTableStore(connection_string, prefix, options, credential),
        queues=AzureQueueStore(connection_string, prefix, options, credential),
        blobs=AzureBlobStore(connection_string, f"{prefix}floe", options, credential),
        kind="azure",
    )
