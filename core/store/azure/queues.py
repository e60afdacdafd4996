"""Queues on Azure Queue Storage: one QueueClient per queue, bodies in base64 as Functions triggers expect.

Azure counts timeouts in whole seconds, so fractions are rounded up. Messages never expire (TTL -1): a
message is deleted by its handler or moved to a poison queue by policy above, never lost silently.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import (
    QueueClient,
    QueueMessage,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from core.store import limits
from core.store.azure._common import API_VERSION, bad_connection_string, error_code, unexpected
from core.store.azure._connect import service_client
from core.store.ports import Message, Queue, QueueStore, ReceiptExpired

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0


def _receipt_expired(exc: HttpResponseError) -> bool:
    return exc.status_code == 404 or error_code(exc) == "PopReceiptMismatch"


class AzureQueue(Queue):
    def __init__(self, client: QueueClient, name: str) -> None:
        self.name = name
        self._client = client

    def __repr__(self) -> str:
        return f"AzureQueue({self.name!r}, account={self._client.account_name!r})"

    def send(self, body: str, *, delay_seconds: float = 0) -> None:
        limits.check_message(body)
        limits.check_delay(delay_seconds)
        try:
            self._client.send_message(
                body, visibility_timeout=math.ceil(delay_seconds) or None, time_to_live=-1
            )
        except AzureError as exc:
            raise unexpected(f"send to queue {self.name}", exc) from exc

    def receive(
        self, *, max_messages: int = 1, visibility_timeout: float = 30, wait_seconds: float = 0
    ) -> list[Message]:
        limits.check_receive(max_messages, visibility_timeout, wait_seconds)
        deadline = time.monotonic() + wait_seconds
        pause = _FIRST_PAUSE
        while True:
            messages = self._receive_once(max_messages, math.ceil(visibility_timeout))
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _MAX_PAUSE)

    def _receive_once(self, max_messages: int, visibility_timeout: int) -> list[Message]:
        try:
            pages = self._client.receive_messages(
                messages_per_page=max_messages, visibility_timeout=visibility_timeout
            ).by_page()
            page = next(pages, None)
            return [self._message(item) for item in page] if page is not None else []
        except AzureError as exc:
            raise unexpected(f"receive from queue {self.name}", exc) from exc

    @staticmethod
    def _message(item: QueueMessage) -> Message:
        # A received message always carries these; the SDK types them optional for its other answers.
        return Message(
            item.id,
            item.content,
            cast(int, item.dequeue_count),
            cast(str, item.pop_receipt),
            cast(datetime, item.inserted_on),
        )

    def delete(self, message: Message) -> None:
        try:
            self._client.delete_message(message.id, message.receipt)
        except HttpResponseError as exc:
            if _receipt_expired(exc):
                raise ReceiptExpired(self._expired(message, "delete")) from exc
            raise unexpected(f"delete from queue {self.name}", exc) from exc
        except AzureError as exc:
            raise unexpected(f"delete from queue {self.name}", exc) from exc

    def extend(self, message: Message, visibility_timeout: float) -> Message:
        limits.check_visibility(visibility_timeout, allow_zero=True)
        try:
            updated = self._client.update_message(
                message.id, pop_receipt=message.receipt, visibility_timeout=math.ceil(visibility_timeout)
            )
        except HttpResponseError as exc:
            if _receipt_expired(exc):
                raise ReceiptExpired(self._expired(message, "extend")) from exc
            raise unexpected(f"extend in queue {self.name}", exc) from exc
        except AzureError as exc:
            raise unexpected(f"extend in queue {self.name}", exc) from exc
        return dataclasses.replace(message, receipt=cast(str, updated.pop_receipt))

    def _expired(self, message: Message, action: str) -> str:
        return (
            f"cannot {action} message {message.id} of queue {self.name}: its receipt is no longer valid "
            "(the visibility timeout ran out, or it was deleted)"
        )

    def approximate_count(self) -> int:
        try:
            count = self._client.get_queue_properties().approximate_message_count or 0
        except AzureError as exc:
            raise unexpected(f"count of queue {self.name}", exc) from exc
        return count


class AzureQueueStore(QueueStore):
    def __init__(
        self,
        connection_string: str,
        prefix: str = "",
        options: Mapping[str, Any] | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        try:
            self._service = service_client(
                QueueServiceClient,
                QueueServiceClient.from_connection_string,
                "queue",
                connection_string,
                credential,
                {"api_version": API_VERSION, **(options or {})},
            )
        except (ValueError, TypeError, AzureError) as exc:
            raise bad_connection_string(exc) from None  # the SDK's message may quote the string
        self._prefix = prefix
        self._queues: dict[str, AzureQueue] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AzureQueueStore(account={self._service.account_name!r})"

    def queue(self, name: str) -> Queue:
        found = self._queues.get(name)
        if found is not None:
            return found
        limits.check_queue_name(name)
        full_name = self._prefix + name
        limits.check_queue_name(full_name)
        with self._lock:
            found = self._queues.get(name)
            if found is None:
                client = self._service.get_queue_client(
                    full_name,
                    message_encode_policy=TextBase64EncodePolicy(),
                    message_decode_policy=TextBase64DecodePolicy(),
                )
                try:
                    client.create_queue()
                except ResourceExistsError:
                    pass
                except AzureError as exc:
                    raise unexpected(f"creating queue {full_name}", exc) from exc
                found = self._queues[name] = AzureQueue(client, name)
        return found

    def delete_queue(self, name: str) -> None:
        limits.check_queue_name(name)
        with self._lock:
            self._queues.pop(name, None)
        try:
            self._service.delete_queue(self._prefix + name)
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise unexpected(f"deleting queue {self._prefix + name}", exc) from exc

    def close(self) -> None:
        self._service.close()  # the queue clients share its transport
