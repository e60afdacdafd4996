"""The storage ports: tables, queues and blobs, with Azure Storage semantics.

Every adapter (`core.store.sqlite`, `core.store.azure`) implements exactly these contracts, and one
conformance suite (`tests/conformance/`) checks each contract against every adapter. The semantics are
Azure's, because Azure is the strictest backend Floe runs on; the SQLite adapter reproduces them.

Ports are concurrency primitives, nothing more: insert-if-absent, replace-if-ETag, point read, ordered
partition range query, atomic same-partition batch, at-least-once queues with visibility timeouts, and
blobs with conditional puts. Policy (leases, de-duplication, poison handling, retries) lives in core above
them.

Azure's limits are enforced for every adapter by `core.store.limits` (Azurite does not enforce all of them):
an entity is at most 1 MiB, a string property at most 32,768 characters (64 KiB of UTF-16), at most 252
properties, keys at most 512 characters without `/ \\ # ?` or control characters, a batch at most 100
operations in one partition. A value that would break a limit belongs in a blob, referenced from the entity.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.errors import FloeError

# A property value: str, int (int64 range), float, bool or bytes. A None value means "no property" and is
# not stored. Datetimes are stored by callers as epoch-millisecond ints.
Value = str | int | float | bool | bytes


# ------------------------------------------------------------------------------------------------ errors


class StoreError(FloeError):
    """Base of the errors the ports raise; adapters translate SDK and driver errors into these."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class EntityExists(StoreError):
    """Insert of an entity whose (PartitionKey, RowKey) already exists (Azure: 409)."""


class EntityNotFound(StoreError, LookupError):
    """Replace (or a batch replace/delete with an ETag) of an entity that does not exist (Azure: 404)."""


class EtagMismatch(StoreError):
    """A conditional write lost a race: the stored ETag is not the one given (Azure: 412).

    The caller re-reads, decides again from what it finds, and usually finds nothing left to do.
    """


class BatchFailed(StoreError):
    """One operation of a batch failed, so none was applied. `index` is that operation's position and
    `cause` the error it alone would have raised (`EntityExists`, `EtagMismatch` or `EntityNotFound`)."""

    def __init__(self, index: int, cause: StoreError) -> None:
        super().__init__(f"batch operation {index} failed: {cause.message}")
        self.index = index
        self.cause = cause


class LimitExceeded(StoreError):
    """An entity, property, key or batch breaks an Azure Storage limit; the message names which and by how
    much.

    This is a programming error in core (large values belong in blobs), reported as 500."""

    error_code = "INTERNAL_ERROR"
    http_status = 500


class ReceiptExpired(StoreError):
    """Delete or extend of a queue message whose receipt is no longer valid: its visibility timeout ran out
    and it was (or may be) delivered again. The work it carried may run twice; handlers are idempotent."""


class BlobExists(StoreError):
    """A create-only put (`if_absent=True`) of a blob that exists (Azure: 409)."""


class BlobNotFound(StoreError, LookupError):
    """A conditional put (with an `etag`) of a blob that does not exist. (A read of a missing blob, ranged or
    not, returns None.)"""


# ------------------------------------------------------------------------------------------------ tables


@dataclass(frozen=True, slots=True)
class Entity:
    """One table entity: its keys, its properties (without the keys) and, once stored, its ETag."""

    partition_key: str
    row_key: str
    properties: Mapping[str, Value] = field(default_factory=dict)
    etag: str | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)

    def __getitem__(self, name: str) -> Value:
        return self.properties[name]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a partition query; `continuation` is None on the last page, else an opaque string."""

    entities: list[Entity]
    continuation: str | None


@dataclass(frozen=True, slots=True)
class BatchOp:
    """One operation of a same-partition batch.

    kind: "insert" (fails if present), "replace" (needs `etag`; fails if changed or absent), "upsert"
    (insert or replace whole, unconditionally), "delete" (with `etag`: fails if changed or absent; without:
    fails if absent).
    """

    kind: Literal["insert", "replace", "upsert", "delete"]
    entity: Entity

    @classmethod
    def insert(cls, entity: Entity) -> BatchOp:
        return cls("insert", entity)

    @classmethod
    def replace(cls, entity: Entity) -> BatchOp:
        return cls("replace", entity)

    @classmethod
    def upsert(cls, entity: Entity) -> BatchOp:
        return cls("upsert", entity)

    @classmethod
    def delete(cls, entity: Entity) -> BatchOp:
        return cls("delete", entity)


class Table(abc.ABC):
    """One table. Entities are addressed by (PartitionKey, RowKey); every stored entity has an ETag that
    changes on each write. Writes replace an entity whole (no merge)."""

    name: str

    @abc.abstractmethod
    def get(self, partition_key: str, row_key: str) -> Entity | None:
        """Point read: the entity with its ETag, or None if it does not exist."""

    @abc.abstractmethod
    def insert(self, entity: Entity) -> Entity:
        """Insert if absent; returns the stored entity with its ETag.

        Raises EntityExists if the keys are taken (the basis of every de-duplication in Floe)."""

    @abc.abstractmethod
    def replace(self, entity: Entity) -> Entity:
        """Replace the entity whole if its stored ETag equals `entity.etag` (which must be set).

        Raises EtagMismatch if it changed since it was read, EntityNotFound if it is gone."""

    @abc.abstractmethod
    def upsert(self, entity: Entity) -> Entity:
        """Insert or replace whole, unconditionally; returns the stored entity with its new ETag."""

    @abc.abstractmethod
    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        """Delete. Without an ETag, deleting an absent entity is not an error (idempotent).
        With one, raises EtagMismatch if the entity changed and EntityNotFound if it is gone."""

    @abc.abstractmethod
    def query(
        self,
        partition_key: str,
        *,
        row_key_from: str | None = None,
        row_key_to: str | None = None,
        limit: int | None = None,
        continuation: str | None = None,
    ) -> Page:
        """Entities of one partition with `row_key_from <= RowKey < row_key_to` (either bound optional),
        in ascending RowKey order (ordinal string order), at most `limit` per page (default and maximum
        1000). Pass the returned `continuation` back to get the next page; it is None after the last one.
        A page may hold fewer than `limit` entities even when more follow (Azure does this): loop until
        `continuation` is None."""

    def scan(
        self, partition_key: str, *, row_key_from: str | None = None, row_key_to: str | None = None
    ) -> Iterator[Entity]:
        """Every entity of the range, following continuations."""
        continuation: str | None = None
        while True:
            page = self.query(
                partition_key, row_key_from=row_key_from, row_key_to=row_key_to, continuation=continuation
            )
            yield from page.entities
            if page.continuation is None:
                return
            continuation = page.continuation

    @abc.abstractmethod
    def batch(self, ops: Sequence[BatchOp]) -> list[Entity | None]:
        """Apply up to 100 operations on entities of ONE partition atomically: all or none.

        Returns, per operation, the stored entity with its new ETag (None for a delete). Raises
        BatchFailed naming the first failing operation; LimitExceeded for more than 100 operations or
        for two partitions. An entity may appear at most once in a batch."""


class TableStore(abc.ABC):
    @abc.abstractmethod
    def table(self, name: str) -> Table:
        """The table with that name (3-63 letters and digits, starting with a letter), created if
        missing. The same object is returned on every call: adapters keep one client per table."""


# ------------------------------------------------------------------------------------------------ queues


@dataclass(frozen=True, slots=True)
class Message:
    """A received message. `receipt` proves this delivery; `dequeue_count` counts deliveries, this one
    included (1 on the first)."""

    id: str
    body: str
    dequeue_count: int
    receipt: str
    inserted_at: datetime


class Queue(abc.ABC):
    """An at-least-once queue. A received message is invisible for its visibility timeout, then delivered
    again (with a higher dequeue_count) unless deleted. Order is roughly FIFO, never guaranteed. A message
    body is text of at most 48 KiB (Azure's limit after base64 encoding)."""

    name: str

    @abc.abstractmethod
    def send(self, body: str, *, delay_seconds: float = 0) -> None:
        """Enqueue; the message becomes visible after `delay_seconds` (0 to 7 days)."""

    @abc.abstractmethod
    def receive(
        self, *, max_messages: int = 1, visibility_timeout: float = 30, wait_seconds: float = 0
    ) -> list[Message]:
        """Up to `max_messages` (1-32) visible messages, each made invisible for `visibility_timeout`
        seconds. If none is visible, waits up to `wait_seconds` for one: a message sent by this process
        wakes the waiter at once; messages from other processes are noticed by a short poll."""

    @abc.abstractmethod
    def delete(self, message: Message) -> None:
        """Delete a received message. Raises ReceiptExpired if its receipt is no longer valid."""

    @abc.abstractmethod
    def extend(self, message: Message, visibility_timeout: float) -> Message:
        """Keep (or, with 0, release) a received message invisible for `visibility_timeout` more seconds
        from now; returns it with its new receipt. Raises ReceiptExpired if the receipt is no longer valid."""

    @abc.abstractmethod
    def approximate_count(self) -> int:
        """Roughly how many messages the queue holds, visible or not."""


class QueueStore(abc.ABC):
    @abc.abstractmethod
    def queue(self, name: str) -> Queue:
        """The queue with that name (3-63 lowercase letters, digits and single hyphens), created if
        missing. The same object is returned on every call."""

    @abc.abstractmethod
    def delete_queue(self, name: str) -> None:
        """Delete a queue and its messages; deleting an absent queue is not an error. Meant for queues whose
        name is never used again (a gone host's): Azure refuses to create a queue of the same name for
        about 30 seconds after."""


# ------------------------------------------------------------------------------------------------ blobs


@dataclass(frozen=True, slots=True)
class BlobInfo:
    path: str
    size: int
    etag: str
    modified: datetime


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    etag: str


class BlobStore(abc.ABC):
    """Blobs in one container, addressed by `/`-separated paths (no leading `/`, no `..` segments)."""

    @abc.abstractmethod
    def put(self, path: str, data: bytes, *, if_absent: bool = False, etag: str | None = None) -> str:
        """Write the whole blob; returns its new ETag. `if_absent=True` raises BlobExists if it exists;
        `etag` makes the put conditional: EtagMismatch if it changed, BlobNotFound if it is absent."""

    @abc.abstractmethod
    def get(self, path: str, *, offset: int = 0, length: int | None = None) -> Blob | None:
        """The blob's bytes from `offset` (at most `length` of them) and its ETag, or None if absent."""

    @abc.abstractmethod
    def append(self, path: str, data: bytes) -> None:
        """Append to the blob, creating it if absent (for logs). Appends of one writer keep their order.
        A single append is at most 4 MiB. A blob written by `put` cannot be appended to (Azure keeps block
        and append blobs apart): LimitExceeded; a `put` over an appended blob replaces it whole."""

    @abc.abstractmethod
    def stat(self, path: str) -> BlobInfo | None:
        """Size, ETag and modification time, or None if absent."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose path starts with `prefix`, in ascending path order."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete; deleting an absent blob is not an error."""


# ------------------------------------------------------------------------------------------------ bundle


@dataclass
class Storage:
    """The three stores one Floe host works on, built once by the composition root."""

    tables: TableStore
    queues: QueueStore
    blobs: BlobStore
    kind: str = "sqlite"

    def close(self) -> None:
        for part in (self.tables, self.queues, self.blobs):
            close = getattr(part, "close", None)
            if close is not None:
                close()
