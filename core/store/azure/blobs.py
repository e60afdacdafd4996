"""Blobs in one Azure Storage container: one ContainerClient, whose per-blob clients share its transport.

Azure reports ETags quoted in some answers and bare in listings; they are normalised to the quoted form so
that every ETag of a blob compares equal. `append` writes append blobs (created on first use); appending to
a blob written by `put` (a block blob) is refused by Azure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient

from core.store import limits
from core.store.azure._common import API_VERSION, bad_connection_string, error_code, unexpected
from core.store.azure._connect import service_client
from core.store.ports import Blob, BlobExists, BlobInfo, BlobNotFound, BlobStore, EtagMismatch, LimitExceeded

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def _etag(value: str) -> str:
    return value if value.startswith('"') else f'"{value}"'


class AzureBlobStore(BlobStore):
    def __init__(
        self,
        connection_string: str,
        container: str,
        options: Mapping[str, Any] | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        try:
            self._service = service_client(
                BlobServiceClient,
                BlobServiceClient.from_connection_string,
                "blob",
                connection_string,
                credential,
                {"api_version": API_VERSION, **(options or {})},
            )
        except (ValueError, TypeError, AzureError) as exc:
            raise bad_connection_string(exc) from None  # the SDK's message may quote the string
        self._container = self._service.get_container_client(container)
        self._created = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        account, container = self._service.account_name, self._container.container_name
        return f"AzureBlobStore(account={account!r}, container={container!r})"

    def _ready(self) -> ContainerClient:
        """The container client, the container created on first use."""
        if not self._created:
            with self._lock:
                if not self._created:
                    try:
                        self._container.create_container()
                    except ResourceExistsError:
                        pass
                    except AzureError as exc:
                        raise unexpected(f"creating container {self._container.container_name}", exc) from exc
                    self._created = True
        return self._container

    def _blob(self, path: str) -> BlobClient:
        limits.check_blob_path(path)
        return self._ready().get_blob_client(path)

    def put(self, path: str, data: bytes, *, if_absent: bool = False, etag: str | None = None) -> str:
        if if_absent and etag is not None:
            raise ValueError(f"put of blob {path!r}: if_absent and etag exclude each other")
        blob = self._blob(path)
        try:
            if if_absent:
                result = blob.upload_blob(data, overwrite=False)
            elif etag is not None:
                result = blob.upload_blob(
                    data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            else:
                result = blob.upload_blob(data, overwrite=True)
        except ResourceExistsError as exc:
            if if_absent:
                raise BlobExists(f"blob {path!r} already exists") from exc
            raise unexpected(f"put of blob {path!r}", exc) from exc
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            if etag is None:
                raise unexpected(f"put of blob {path!r}", exc) from exc
            if self.stat(path) is None:  # Azure answers 412, not 404, for If-Match on a missing blob
                raise BlobNotFound(f"blob {path!r} does not exist") from exc
            raise EtagMismatch(f"blob {path!r} changed since it was read (etag {etag!r} is stale)") from exc
        except AzureError as exc:
            raise unexpected(f"put of blob {path!r}", exc) from exc
        return _etag(result["etag"])

    def get(self, path: str, *, offset: int = 0, length: int | None = None) -> Blob | None:
        limits.check_range(offset, length)
        blob = self._blob(path)
        if length == 0:
            info = self.stat(path)
            return None if info is None else Blob(b"", info.etag)
        try:
            whole = offset == 0 and length is None  # a ranged read of an empty blob answers 416
            download = blob.download_blob(offset=None if whole else offset, length=length)
            return Blob(download.readall(), _etag(download.properties.etag))
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code != 416:  # the range starts at or past the end
                raise unexpected(f"read of blob {path!r}", exc) from exc
        except AzureError as exc:
            raise unexpected(f"read of blob {path!r}", exc) from exc
        info = self.stat(path)
        return None if info is None else Blob(b"", info.etag)

    def append(self, path: str, data: bytes) -> None:
        limits.check_append(data)
        blob = self._blob(path)
        try:
            try:
                if data:
                    blob.append_block(data)
                    return
            except ResourceNotFoundError:
                pass
            try:
                blob.create_append_blob(match_condition=MatchConditions.IfMissing)
            except ResourceExistsError:
                pass  # created meanwhile by another writer
            if data:
                blob.append_block(data)
        except HttpResponseError as exc:
            if error_code(exc) == "InvalidBlobType":
                raise LimitExceeded(
                    f"cannot append to blob {path!r}: it was written whole by put, and Azure appends only to "
                    "blobs made by append"
                ) from exc
            raise unexpected(f"append to blob {path!r}", exc) from exc
        except AzureError as exc:
            raise unexpected(f"append to blob {path!r}", exc) from exc

    def stat(self, path: str) -> BlobInfo | None:
        blob = self._blob(path)
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise unexpected(f"stat of blob {path!r}", exc) from exc
        return BlobInfo(path, properties.size, _etag(properties.etag), properties.last_modified)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        container = self._ready()
        try:
            for item in container.list_blobs(name_starts_with=prefix or None):
                yield BlobInfo(item.name, item.size, _etag(item.etag), item.last_modified)
        except AzureError as exc:
            raise unexpected(f"listing blobs under {prefix!r}", exc) from exc

    def delete(self, path: str) -> None:
        blob = self._blob(path)
        try:
            blob.delete_blob()
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise unexpected(f"delete of blob {path!r}", exc) from exc

    def close(self) -> None:
        self._service.close()
