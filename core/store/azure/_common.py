"""What the Azure adapters share: SDK options, error translation, the account name for `repr`.

Error messages carry the operation, the HTTP status and Azure's error code, never the SDK's own text, which
may quote request URLs; a connection string or account key never reaches a message, a log line or a repr.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from core.store.ports import StoreError

# Blob and queue SDKs default to a service version newer than Azurite 3.37 accepts; this one is served by
# both Azure and Azurite (tables use their own, older default).
API_VERSION = "2026-06-06"


def connection_fields(connection_string: str) -> dict[str, str]:
    """The `name=value` fields of a connection string, names lower-cased."""
    fields = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def account_name(connection_string: str) -> str:
    fields = connection_fields(connection_string)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return "devstoreaccount1"
    return fields.get("accountname", "unknown")


def error_code(exc: HttpResponseError) -> str:
    code: Any = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def unexpected(action: str, exc: AzureError) -> StoreError:
    """A StoreError for a failure the port has no specific error for."""
    if isinstance(exc, HttpResponseError):
        return StoreError(f"{action} failed: HTTP {exc.status_code} {error_code(exc)}".rstrip())
    return StoreError(f"{action} failed: {type(exc).__name__} (is Azure Storage reachable?)")


def bad_connection_string(exc: Exception) -> StoreError:
    return StoreError(f"the Azure Storage connection string is invalid ({type(exc).__name__})")
