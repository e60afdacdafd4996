"""What the Azure adapters share: SDK options, error translation, the account name for `repr`.

Error messages carry the operation, the HTTP status and Azure's error code, never the SDK's own text, which
may quote request URLs; a connection string, an account key or a token never reaches a message, a log line
or a repr.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

from core.store.ports import StoreError

# Blob and queue SDKs default to a service version newer than Azurite 3.37 accepts; this one is served by
# both Azure and Azurite (tables use their own, older default).
API_VERSION = "2026-06-06"

# What to do about the refusals that are about the credential, not the request.
_REFUSED_KEY_OR_TOKEN = (
    "Azure Storage did not accept the credential: a wrong key, or an expired or foreign token"
)
_AUTH_HINTS = {
    "AuthenticationFailed": _REFUSED_KEY_OR_TOKEN,
    "InvalidAuthenticationInfo": _REFUSED_KEY_OR_TOKEN,
    "NoAuthenticationInformation": _REFUSED_KEY_OR_TOKEN,
    "AuthorizationPermissionMismatch": (
        "the identity lacks a data role on the account (Storage Table Data Contributor, Storage Queue Data "
        "Contributor, Storage Blob Data Owner or Contributor); new role assignments take minutes to apply"
    ),
    "AuthorizationFailure": "the account refused the request (its network rules, or the identity's roles)",
    "KeyBasedAuthenticationNotPermitted": (
        "the account allows no key: give a connection string without AccountKey, and Floe signs in with "
        "Microsoft Entra ID"
    ),
}
_NO_TOKEN = (
    "no Microsoft Entra token: on Azure, check the app's managed identity (and AzureWebJobsStorage__clientId "
    "or FLOE_AZURE_CLIENT_ID for a user-assigned one); elsewhere sign in with `az login` or set the AZURE_* "
    "environment variables of a service principal"
)


def connection_fields(connection_string: str) -> dict[str, str]:
    """The `name=value` fields of a connection string, names lower-cased."""
    fields = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def account_name(connection_string: str) -> str:
    """The account a connection string reaches: its AccountName, else the name in its endpoints (the host's
    first label, or the first path segment of an IP-style URL such as Azurite's)."""
    fields = connection_fields(connection_string)
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return "devstoreaccount1"
    if fields.get("accountname"):
        return fields["accountname"]
    for field in ("blobendpoint", "queueendpoint", "tableendpoint"):
        if fields.get(field):
            parts = urlsplit(fields[field])
            host = parts.hostname or ""
            if host == "localhost" or _is_ip(host):
                return parts.path.strip("/").split("/")[0] or "unknown"
            return host.split(".")[0] or "unknown"
    return "unknown"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def error_code(exc: HttpResponseError) -> str:
    code: Any = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def unexpected(action: str, exc: AzureError) -> StoreError:
    """A StoreError for a failure the port has no specific error for."""
    if isinstance(exc, ClientAuthenticationError) and exc.response is None:  # raised by the token credential
        return StoreError(f"{action} failed: {type(exc).__name__}, {_NO_TOKEN}")
    if isinstance(exc, HttpResponseError):
        code = error_code(exc)
        hint = _AUTH_HINTS.get(code) if exc.status_code in (401, 403) else None
        return StoreError(
            f"{action} failed: HTTP {exc.status_code} {code}".rstrip() + (f" ({hint})" if hint else "")
        )
    return StoreError(f"{action} failed: {type(exc).__name__} (is Azure Storage reachable?)")


def bad_connection_string(exc: Exception) -> StoreError:
    return StoreError(f"the Azure Storage connection string is invalid ({type(exc).__name__})")
