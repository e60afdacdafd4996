"""Task values in references: `{{tasks.<key>.values.<name>}}` read from `ReferenceContext.task_values`,
JSON-encoded unless a string (booleans as true/false), in parameters and in condition tasks."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import LifeCycle, ReferenceContext, Result, resolve
from tests.unit.engine.harness import Sim, condition, task

T = LifeCycle.TERMINATED
VALUES: dict[str, Any] = {
    "text": "hello",
    "count": 250,
    "ratio": 0.5,
    "flag": True,
    "off": False,
    "nothing": None,
    "list": [1, "a", True],
    "obj": {"k": [1, {"z": False}]},
    "unicode": "Zürich",
}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("text", "hello"),
        ("count", "250"),
        ("ratio", "0.5"),
        ("flag", "true"),
        ("off", "false"),
        ("nothing", "null"),
        ("list", '[1,"a",true]'),
        ("obj", '{"k":[1,{"z":false}]}'),
        ("unicode", "Zürich"),
    ],
)
def test_a_task_value_becomes_text(name: str, text: str) -> None:
    assert (
        resolve(f"{{{{tasks.produce.values.{name}}}}}", ReferenceContext(task_values={"produce": VALUES}))
        == text
    )


@pytest.mark.parametrize(
    ("op", "left", "right", "outcome"),
    [
        ("EQUAL_TO", "{{tasks.produce.values.flag}}", "true", "true"),
        ("EQUAL_TO", "{{tasks.produce.values.off}}", "true", "false"),
        ("NOT_EQUAL", "{{tasks.produce.values.text}}", "hello", "false"),
        ("GREATER_THAN", "{{tasks.produce.values.count}}", "99", "true"),  # numbers, not strings
        ("LESS_THAN", "{{tasks.produce.values.ratio}}", "0.25", "false"),
        ("EQUAL_TO", "{{tasks.produce.values.count}}", "250.0", "false"),  # EQUAL_TO compares strings
        ("EQUAL_TO", "{{tasks.produce.values.list}}", '[1,"a",true]', "true"),
    ],
)
def test_a_condition_task_compares_a_task_value(op: str, left: str, right: str, outcome: str) -> None:
    sim = Sim.create({"tasks": [task("produce"), {**condition("check", op, left, right, ["produce"])}]})
    sim.ctx = ReferenceContext(task_values={"produce": VALUES})
    sim.start_run()
    sim.run_task("produce")

    check = sim.latest("check")
    assert (check.life_cycle, check.result, check.outcome) == (T, Result.SUCCESS, outcome)


def test_a_condition_on_a_value_never_set_fails_with_the_reference_named() -> None:
    sim = Sim.create(
        {
            "tasks": [
                task("produce"),
                condition("check", "EQUAL_TO", "{{tasks.produce.values.x}}", "1", ["produce"]),
            ]
        }
    )
    sim.ctx = ReferenceContext(task_values={"produce": {}})
    sim.start_run()
    sim.run_task("produce")
    check = sim.latest("check")
    assert (check.result, check.state_message) == (
        Result.FAILED,
        "Cannot resolve {{tasks.produce.values.x}}: task 'produce' did not set the task value 'x'.",
    )
