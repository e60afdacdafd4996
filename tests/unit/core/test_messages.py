from __future__ import annotations

import pytest

from core.messages import InvalidMessage, WorkMessage


def test_round_trip() -> None:
    message = WorkMessage("task.start", 12, 34, traceparent="00-abc-def-01")
    assert WorkMessage.decode(message.encode()) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"v": 2, "kind": "run.advance", "run_id": 1}', "version 2"),
        ('{"v": 1, "kind": "run.explode", "run_id": 1}', "kind 'run.explode'"),
        ('{"v": 1, "kind": "run.advance"}', "lacks run_id"),
        ('{"v": 1, "kind": "task.start", "run_id": 1}', "lacks task_run_id"),
        ('{"v": 1, "kind": "run.advance", "run_id": "1"}', "run_id '1' is not a positive int64"),
        ('{"v": 1, "kind": "run.advance", "run_id": true}', "run_id True is not a positive int64"),
        ('{"v": 1, "kind": "run.advance", "run_id": -4}', "run_id -4"),
    ],
)
def test_bad_messages_are_poison(body: str, message: str) -> None:
    with pytest.raises(InvalidMessage, match=message):
        WorkMessage.decode(body)
