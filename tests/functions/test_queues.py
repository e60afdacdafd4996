"""The queue functions against Azurite: a message Floe sends is what the queue trigger reads (base64, as
the host expects), and nothing that fails is lost: poison messages are kept and logged."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueClient

from core.messages import WORK_QUEUE, WorkMessage
from core.store.azure._common import API_VERSION
from functions import root
from tests.functions.conftest import FunctionsEnv, QueueHost

pytestmark = pytest.mark.azurite


def _kept(prefix: str = "poison/") -> list[dict[str, Any]]:
    blobs = root.floe().storage.blobs
    kept = []
    for info in blobs.list(prefix):
        blob = blobs.get(info.path)
        assert blob is not None
        kept.append({"path": info.path, **json.loads(blob.data)})
    return kept


def test_a_message_floe_sends_is_what_the_queue_trigger_reads(app_settings: FunctionsEnv) -> None:
    sent = WorkMessage("task.start", 1234567, 7654321, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    root.floe().storage.queues.queue(WORK_QUEUE).send(sent.encode())
    raw = QueueClient.from_connection_string(
        app_settings.connection, app_settings.prefix + WORK_QUEUE, api_version=API_VERSION
    )
    with raw:
        [item] = raw.receive_messages(max_messages=1)
        stored = base64.b64decode(item.content, validate=True)  # the text on the queue is base64
    message = TriggerMessage(id=item.id, body=stored, dequeue_count=item.dequeue_count)
    assert WorkMessage.decode(message.get_body().decode()) == sent


def test_the_work_function_handles_a_message_and_the_host_deletes_it(
    queue_host: QueueHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="floe")
    root.floe().storage.queues.queue(WORK_QUEUE).send(WorkMessage("run.advance", 42).encode())
    queue_host.run_until(lambda: queue_host.delivered, what="a delivery")
    [(name, message)] = queue_host.delivered
    assert (name, message.dequeue_count) == ("work", 1)
    assert json.loads(message.get_body()) == {"v": 1, "kind": "run.advance", "run_id": 42}
    assert "dropping run.advance for run 42" in caplog.text  # no such run: handled, not retried
    assert queue_host.pump() == 0 and not queue_host.failures


def test_a_message_floe_cannot_read_is_kept_at_once(
    queue_host: QueueHost, caplog: pytest.LogCaptureFixture
) -> None:
    root.floe().storage.queues.queue(WORK_QUEUE).send('{"v": 1, "kind": "run.explode", "run_id": 5}')
    [kept] = queue_host.run_until(_kept, what="the poison message to be kept")
    assert [(name, m.dequeue_count) for name, m in queue_host.delivered] == [("work", 1)]
    assert not queue_host.failures  # the work function kept it itself, and the host deleted it
    assert json.loads(kept["body"]) == {"v": 1, "kind": "run.explode", "run_id": 5}
    assert kept["queue"] == WORK_QUEUE
    assert kept["path"].startswith("poison/") and kept["path"].endswith(f"/{kept['message_id']}.json")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("poison message" in e and "kind run.explode, run 5" in e for e in errors), errors


def test_a_message_that_keeps_failing_moves_to_poison_after_five_deliveries(
    indexed: dict[str, Any], app_settings: FunctionsEnv, caplog: pytest.LogCaptureFixture
) -> None:
    floe = root.floe()

    def unavailable(body: str, **delivery: object) -> None:
        raise RuntimeError("storage is down")

    floe.handle_message = unavailable  # type: ignore[method-assign]
    floe.storage.queues.queue(WORK_QUEUE).send(WorkMessage("run.advance", 77).encode())
    host = QueueHost(indexed, app_settings.connection, retry_after=0)
    try:
        [kept] = host.run_until(_kept, what="the failing message to be kept")
    finally:
        host.close()
    work = [m.dequeue_count for name, m in host.delivered if name == "work"]
    assert work == [1, 2, 3, 4, 5]
    assert [name for name, _ in host.failures] == ["work"] * 5
    assert ("work_poison", 1) in [(name, m.dequeue_count) for name, m in host.delivered]  # the host moved it
    assert json.loads(kept["body"])["run_id"] == 77
    assert kept["dequeue_count"] == 1  # its delivery from the poison queue; the five are in the log
    assert "kind run.advance, run 77" in caplog.text


def test_kept_poison_messages_are_listed_by_the_api(queue_host: QueueHost, indexed: dict[str, Any]) -> None:
    from tests.functions.conftest import Api

    queue = root.floe().storage.queues.queue(WORK_QUEUE)
    for run_id in (1, 2, 3):
        queue.send(f'{{"v": 1, "kind": "run.explode", "run_id": {run_id}}}')
    queue_host.run_until(lambda: len(_kept()) == 3, what="three poison messages to be kept")
    api = Api(indexed["http"].get_user_function())
    first = api.get("/api/floe/poison-messages", limit=2)
    assert [m["kind"] for m in first["messages"]] == ["run.explode", "run.explode"]
    second = api.get("/api/floe/poison-messages", limit=2, page_token=first["next_page_token"])
    assert "next_page_token" not in second
    runs = sorted(m["run_id"] for m in first["messages"] + second["messages"])
    assert runs == [1, 2, 3]
    status, bad = api.call("GET", "/api/floe/poison-messages?page_token=nonsense")
    assert status == 400 and "page_token 'nonsense' is not a token" in bad["message"]
