"""Tables on Azure Table Storage (azure-data-tables): one TableClient per table, sharing one connection pool.

Ints outside int32 are written as Edm.Int64 (the SDK refuses them otherwise) and every Int64 read back is
turned into a plain int, so a Floe id round-trips; floats are sent as Edm.Double, so 1.0 stays a float.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import (
    EdmType,
    EntityProperty,
    TableClient,
    TableEntity,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from core.store import limits
from core.store.azure._common import bad_connection_string, unexpected
from core.store.azure._connect import service_client
from core.store.ports import (
    BatchFailed,
    BatchOp,
    Entity,
    EntityExists,
    EntityNotFound,
    EtagMismatch,
    Page,
    StoreError,
    Table,
    TableStore,
    Value,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _to_azure(partition_key: str, row_key: str, properties: Mapping[str, Value]) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": partition_key, "RowKey": row_key}
    for name, value in properties.items():
        if type(value) is int and not _INT32_MIN <= value <= _INT32_MAX:
            entity[name] = EntityProperty(value, EdmType.INT64)
        else:
            entity[name] = value
    return entity


def _from_azure(entity: TableEntity) -> Entity:
    properties: dict[str, Value] = {}
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        properties[name] = value.value if isinstance(value, EntityProperty) else value
    return Entity(entity["PartitionKey"], entity["RowKey"], properties, entity.metadata["etag"])


def _encode_token(token: Any) -> str | None:
    if token is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode("ascii")


def _decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error) as exc:
        raise StoreError(f"invalid continuation token {token[:40]!r}") from exc


class AzureTable(Table):
    def __init__(self, client: TableClient, name: str) -> None:
        self.name = name
        self._client = client

    def __repr__(self) -> str:
        return f"AzureTable({self.name!r}, account={self._client.account_name!r})"

    def _ref(self, partition_key: str, row_key: str) -> str:
        return f"entity ({partition_key!r}, {row_key!r}) of table {self.name}"

    def _cause(
        self, status: int | None, partition_key: str, row_key: str, etag: str | None
    ) -> StoreError | None:
        """The port error for a failed write's status, or None when the port has none for it."""
        if status == 409:
            return EntityExists(f"{self._ref(partition_key, row_key)} already exists")
        if status == 404:
            return EntityNotFound(f"{self._ref(partition_key, row_key)} does not exist")
        if status == 412:
            return EtagMismatch(
                f"{self._ref(partition_key, row_key)} changed since it was read (etag {etag!r} is stale)"
            )
        return None

    def get(self, partition_key: str, row_key: str) -> Entity | None:
        limits.check_keys(partition_key, row_key)
        try:
            return _from_azure(self._client.get_entity(partition_key, row_key))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise unexpected(f"read of {self._ref(partition_key, row_key)}", exc) from exc

    def insert(self, entity: Entity) -> Entity:
        properties = limits.check_entity(entity)
        pk, rk = entity.partition_key, entity.row_key
        try:
            metadata = self._client.create_entity(_to_azure(pk, rk, properties))
        except ResourceExistsError as exc:
            raise EntityExists(f"{self._ref(pk, rk)} already exists") from exc
        except AzureError as exc:
            raise unexpected(f"insert of {self._ref(pk, rk)}", exc) from exc
        return Entity(pk, rk, properties, metadata["etag"])

    def replace(self, entity: Entity) -> Entity:
        pk, rk = entity.partition_key, entity.row_key
        if entity.etag is None:
            raise ValueError(f"replace of {self._ref(pk, rk)} needs the etag it was read with")
        properties = limits.check_entity(entity)
        try:
            metadata = self._client.update_entity(
                _to_azure(pk, rk, properties),
                mode=UpdateMode.REPLACE,
                etag=entity.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise self._cause(exc.status_code, pk, rk, entity.etag) or unexpected("replace", exc) from exc
        except AzureError as exc:
            raise unexpected(f"replace of {self._ref(pk, rk)}", exc) from exc
        return Entity(pk, rk, properties, metadata["etag"])

    def upsert(self, entity: Entity) -> Entity:
        properties = limits.check_entity(entity)
        pk, rk = entity.partition_key, entity.row_key
        try:
            metadata = self._client.upsert_entity(_to_azure(pk, rk, properties), mode=UpdateMode.REPLACE)
        except AzureError as exc:
            raise unexpected(f"upsert of {self._ref(pk, rk)}", exc) from exc
        return Entity(pk, rk, properties, metadata["etag"])

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        limits.check_keys(partition_key, row_key)
        if etag is not None:
            # The SDK's delete_entity swallows 404, which a conditional delete must report: a one-operation
            # transaction reports it (and costs one request all the same).
            try:
                self.batch([BatchOp.delete(Entity(partition_key, row_key, etag=etag))])
            except BatchFailed as exc:
                raise exc.cause from exc
            return
        try:
            self._client.delete_entity(partition_key, row_key)
        except AzureError as exc:
            raise unexpected(f"delete of {self._ref(partition_key, row_key)}", exc) from exc

    def query(
        self,
        partition_key: str,
        *,
        row_key_from: str | None = None,
        row_key_to: str | None = None,
        limit: int | None = None,
        continuation: str | None = None,
    ) -> Page:
        size = limits.check_page_size(limit)
        limits.check_key("PartitionKey", partition_key)
        conditions = ["PartitionKey eq @pk"]
        parameters = {"pk": partition_key}
        if row_key_from is not None:
            conditions.append("RowKey ge @lo")
            parameters["lo"] = row_key_from
        if row_key_to is not None:
            conditions.append("RowKey lt @hi")
            parameters["hi"] = row_key_to
        token = None if continuation is None else _decode_token(continuation)
        try:
            pages: Any = self._client.query_entities(
                " and ".join(conditions), parameters=parameters, results_per_page=size
            ).by_page(continuation_token=token)
            page = next(pages, None)
            entities = [_from_azure(entity) for entity in page] if page is not None else []
        except AzureError as exc:
            raise unexpected(f"query of partition {partition_key!r} of table {self.name}", exc) from exc
        return Page(entities, _encode_token(pages.continuation_token))

    def batch(self, ops: Sequence[BatchOp]) -> list[Entity | None]:
        checked = limits.check_batch(ops)
        if not ops:
            return []
        conditional = {"match_condition": MatchConditions.IfNotModified}
        operations: list[Any] = []
        for op, properties in zip(ops, checked, strict=True):
            entity = op.entity
            body = _to_azure(entity.partition_key, entity.row_key, properties)
            if op.kind == "insert":
                operations.append(("create", body))
            elif op.kind == "replace":
                operations.append(
                    ("update", body, {"mode": UpdateMode.REPLACE, "etag": entity.etag, **conditional})
                )
            elif op.kind == "upsert":
                operations.append(("upsert", body, {"mode": UpdateMode.REPLACE}))
            else:
                options = {"etag": entity.etag, **conditional} if entity.etag is not None else {}
                operations.append(("delete", body, options))
        try:
            results = self._client.submit_transaction(operations)
        except TableTransactionError as exc:
            failed = ops[exc.index].entity if 0 <= exc.index < len(ops) else ops[0].entity
            cause = self._cause(exc.status_code, failed.partition_key, failed.row_key, failed.etag)
            if cause is None:
                raise unexpected(f"batch on table {self.name}", exc) from exc
            raise BatchFailed(exc.index, cause) from exc
        except AzureError as exc:
            raise unexpected(f"batch on table {self.name}", exc) from exc
        return [
            None
            if op.kind == "delete"
            else Entity(op.entity.partition_key, op.entity.row_key, properties, result["etag"])
            for op, properties, result in zip(ops, checked, results, strict=True)
        ]


class AzureTableStore(TableStore):
    def __init__(
        self,
        connection_string: str,
        prefix: str = "",
        options: Mapping[str, Any] | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        try:
            self._service = service_client(
                TableServiceClient,
                TableServiceClient.from_connection_string,
                "table",
                connection_string,
                credential,
                options or {},
            )
        except (ValueError, TypeError, AzureError) as exc:
            raise bad_connection_string(exc) from None  # the SDK's message may quote the string
        self._prefix = prefix
        self._tables: dict[str, AzureTable] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureTableStore(account={self._service.account_name!r})"

    def table(self, name: str) -> Table:
        found = self._tables.get(name)
        if found is not None:
            return found
        limits.check_table_name(name)
        full_name = self._prefix + name
        limits.check_table_name(full_name)
        with self._lock:
            found = self._tables.get(name)
            if found is None:
                client = self._service.get_table_client(full_name)
                try:
                    client.create_table()
                except ResourceExistsError:
                    pass
                except AzureError as exc:
                    raise unexpected(f"creating table {full_name}", exc) from exc
                found = self._tables[name] = AzureTable(client, name)
        return found

    def close(self) -> None:
        self._service.close()  # the table clients share its transport
