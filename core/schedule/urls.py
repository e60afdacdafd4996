"""Where a file-arrival trigger looks: trigger URLs parsed into one `StorageLocation`, and the test of
whether a blob (or local file) lies under it.

Supported forms (anything else is an `InvalidParameterValue` naming the field and these forms):

| form | kind |
|---|---|
| `file:///abs/folder/` (`file://localhost/abs/folder/` too) | local folder, the embedded default |
| `abfss://<container>@<account>.dfs.core.windows.net/<path>/` | Azure (ADLS Gen2 / blob) |
| `https://<account>.blob.core.windows.net/<container>/<path>/` (or `.dfs.`) | Azure |
| `http://127.0.0.1:10000/devstoreaccount1/<container>/<path>/` | Azurite (path-style: account first) |

Path-style URLs (account as the first path segment) are accepted for loopback hosts (`127.0.0.1`,
`localhost`, `::1`) and for dot-less host names such as a docker-compose service `azurite`.

A trigger URL always names a **folder**: a missing trailing `/` is added, so `.../in` watches `in/x`
and never `inbox/x`. URL paths are percent-decoded once (Event Grid sends `%20`; a bare local path is
taken as it is), repeated `/` and `.`
segments are collapsed, and `..` is refused. Account and container names are lower-cased (Azure
names are case-insensitive); blob names and local paths keep their case. A blob URL's host may say
`blob` or `dfs`: both reach the same account, so either matches a trigger written with the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from core.errors import InvalidParameterValue
from core.model.base import invalid

SUPPORTED_FORMS = (
    "file:///<absolute folder>/ (local), "
    "abfss://<container>@<account>.dfs.core.windows.net/<path>/, "
    "https://<account>.blob.core.windows.net/<container>/<path>/ "
    "or http://127.0.0.1:<port>/<account>/<container>/<path>/ (Azurite)"
)

_AZURE_SUFFIXES = (".blob.core.windows.net", ".dfs.core.windows.net")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class StorageLocation:
    """A normalised trigger location.

    `path` is the folder inside its store: an absolute POSIX path for `local`, a blob-name prefix
    (no leading `/`, empty for a whole container) for `azure`; a folder location's `path` ends with
    `/` (the container root is `""`). `prefix` is the canonical string that matching compares:
    `file:///abs/folder/` or `azure://<account>/<container>/<path>`. `endpoint` is where an Azure
    client connects (`https://<account>.blob.core.windows.net` or the Azurite base URL), None for local.
    """

    kind: Literal["local", "azure"]
    account: str | None
    container: str | None
    prefix: str
    path: str
    endpoint: str | None = None

    def relative(self, blob_url_or_path: str) -> str | None:
        """The file's path relative to this location (`sub/x.csv`), or None when it is not under it."""
        try:
            other = _parse(blob_url_or_path, folder=False, field="url")
        except InvalidParameterValue:
            return None
        if not other.prefix.startswith(self.prefix):
            return None
        rest = other.prefix[len(self.prefix) :]
        return rest or None


def parse_location(url: object, *, field: str = "url") -> StorageLocation:
    """Parse a trigger URL (always a folder); raise `InvalidParameterValue` naming `field`."""
    if not isinstance(url, str) or not url.strip():
        raise invalid(field, f"must be a non-empty URL: {SUPPORTED_FORMS}", url)
    return _parse(url.strip(), folder=True, field=field)


def matches(location: StorageLocation, blob_url_or_path: str) -> bool:
    """True when the file at `blob_url_or_path` (a blob URL in any supported form, a `file://` URL or
    an absolute local path) lies under `location`. Unparseable input is simply not a match."""
    return location.relative(blob_url_or_path) is not None


def _parse(url: str, *, folder: bool, field: str) -> StorageLocation:
    if url.startswith("/"):
        if folder:  # a trigger must say file://; the folder watcher may hand us bare paths
            raise _unsupported(field, url)
        return _local(url, folder=False, field=field, original=url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise invalid(
                field, f"must be a file:/// URL of an absolute folder on this host: {SUPPORTED_FORMS}", url
            )
        return _local(unquote(parts.path), folder=folder, field=field, original=url)
    if scheme == "abfss":
        container, at, host = parts.netloc.rpartition("@")
        host = host.lower()
        if not at or not container or not host.endswith(".dfs.core.windows.net"):
            raise invalid(
                field,
                "must be abfss://<container>@<account>.dfs.core.windows.net/<path>/",
                url,
            )
        account = host.removesuffix(".dfs.core.windows.net")
        return _azure(
            account, container, parts.path, folder, field, url, f"https://{account}.blob.core.windows.net"
        )
    if scheme in ("https", "http"):
        host = (parts.hostname or "").lower()
        for suffix in _AZURE_SUFFIXES:
            if host.endswith(suffix) and scheme == "https":
                account = host.removesuffix(suffix)
                container, _, rest = parts.path.lstrip("/").partition("/")
                return _azure(
                    account, container, rest, folder, field, url, f"https://{account}.blob.core.windows.net"
                )
        if host in _LOOPBACK or (host and "." not in host):
            account, _, rest = parts.path.lstrip("/").partition("/")
            container, _, rest = rest.partition("/")
            base = f"{scheme}://{parts.netloc}/{account}"
            return _azure(account, container, rest, folder, field, url, base)
    raise _unsupported(field, url)


def _unsupported(field: str, url: str) -> InvalidParameterValue:
    return invalid(field, f"must use a supported storage URL: {SUPPORTED_FORMS}", url)


def _clean(path: str, field: str, original: str) -> str:
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise invalid(field, "must not contain '..' segments", original)
    return "/".join(segments)


def _local(path: str, *, folder: bool, field: str, original: str) -> StorageLocation:
    if not path.startswith("/"):
        raise invalid(
            field, f"must be a file:/// URL of an absolute folder on this host: {SUPPORTED_FORMS}", original
        )
    inner = _clean(path, field, original)
    norm = "/" + inner
    if folder and not norm.endswith("/"):
        norm += "/"
    return StorageLocation("local", None, None, "file://" + norm, norm)


def _azure(
    account: str, container: str, path: str, folder: bool, field: str, original: str, endpoint: str
) -> StorageLocation:
    account, container = account.lower(), container.lower()
    if not account or not container:
        raise invalid(field, f"must name an Azure storage account and container: {SUPPORTED_FORMS}", original)
    inner = _clean(unquote(path), field, original)
    if folder and inner:
        inner += "/"
    if not folder and not inner:
        raise invalid(field, "must name a blob inside the container", original)
    return StorageLocation(
        "azure", account, container, f"azure://{account}/{container}/{inner}", inner, endpoint
    )
