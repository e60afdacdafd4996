"""How the Azure adapters sign in: with the key or SAS of a connection string, or with Microsoft Entra ID.

A connection string with neither `AccountKey` nor `SharedAccessSignature` (and not
`UseDevelopmentStorage=true`) is *keyless*: it only names the account's endpoints, explicitly
(`BlobEndpoint=https://acct.blob.core.windows.net;QueueEndpoint=...;TableEndpoint=...`) or through the
account's name (`AccountName=acct`, with `EndpointSuffix` and `DefaultEndpointsProtocol` when they are not
`core.windows.net` and `https`). Each SDK client is then built from its service's URL with a token
credential: the caller's, else `azure.identity.DefaultAzureCredential`, created once per process and
managed-identity client id (the app's managed identity on Azure; `az login` or the `AZURE_*` environment
variables elsewhere). A string with a key or a SAS goes to the SDK's `from_connection_string` unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from core.store.azure._common import connection_fields
from core.store.ports import StoreError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

Client = TypeVar("Client")

SERVICES = ("blob", "queue", "table")
_KEYLESS = (
    "the Azure Storage connection string has no AccountKey or SharedAccessSignature, so Floe signs in with "
    "Microsoft Entra ID"
)
_credentials: dict[str, TokenCredential] = {}
_credentials_lock = threading.Lock()


def is_keyless(connection_string: str) -> bool:
    """True when the connection string carries no key, no SAS and is not the development storage."""
    fields = connection_fields(connection_string)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return False
    return "accountkey" not in fields and "sharedaccesssignature" not in fields


def service_url(connection_string: str, service: str) -> str:
    """The URL of `service` ("blob", "queue" or "table") that a keyless connection string names: its
    `<Service>Endpoint`, else `{DefaultEndpointsProtocol}://{AccountName}.{service}.{EndpointSuffix}`.
    Raises StoreError naming the rule when it names neither, or when the URL is not https (a token is
    never sent in clear). The message names fields, never their values."""
    fields = connection_fields(connection_string)
    field = f"{service.capitalize()}Endpoint"
    url = fields.get(field.lower(), "").rstrip("/")
    if not url:
        account = fields.get("accountname", "")
        if not account:
            raise StoreError(
                f"{_KEYLESS}, which needs the account's endpoints: it names no {field} and no AccountName "
                "(give BlobEndpoint, QueueEndpoint and TableEndpoint, or AccountName)"
            )
        field = "DefaultEndpointsProtocol"
        protocol = fields.get("defaultendpointsprotocol", "https").lower()
        url = f"{protocol}://{account}.{service}.{fields.get('endpointsuffix', 'core.windows.net')}"
    if not url.lower().startswith("https://"):
        raise StoreError(f"{_KEYLESS}, whose tokens go over HTTPS only: its {field} is not https")
    return url


def check_keyless(connection_string: str) -> None:
    """Raise StoreError unless a keyless connection string names an https URL for every service."""
    for service in SERVICES:
        service_url(connection_string, service)


def default_credential(client_id: str = "") -> TokenCredential:
    """This process's `DefaultAzureCredential` for `client_id` (a user-assigned managed identity; "" for the
    system-assigned one), created on first use. azure-identity is imported only here."""
    with _credentials_lock:
        found = _credentials.get(client_id)
        if found is None:
            from azure.identity import DefaultAzureCredential

            found = _credentials[client_id] = DefaultAzureCredential(
                managed_identity_client_id=client_id or None
            )
    return found


def service_client(
    factory: Callable[..., Client],
    from_connection_string: Callable[..., Client],
    service: str,
    connection_string: str,
    credential: TokenCredential | None,
    options: Mapping[str, Any],
) -> Client:
    """An SDK service client: `from_connection_string(connection_string, **options)` for a string with a key
    or SAS, else `factory(<service URL>, credential=credential or default_credential(), **options)`."""
    if not is_keyless(connection_string):
        return from_connection_string(connection_string, **options)
    url = service_url(connection_string, service)
    return factory(url, credential=credential or default_credential(), **options)
