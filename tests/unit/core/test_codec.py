from __future__ import annotations

import pytest

from core.codec import SCHEMA_VERSION, decode, encode
from core.engine.records import RepairEntry, Run, TaskRun, Termination
from core.engine.states import LifeCycle, Result, RunType, TerminationCode, TerminationType, TriggerType
from core.errors import SchemaVersionError


def test_run_round_trips() -> None:
    run = Run(
        run_id=2**52 + 3,
        job_id=7,
        run_name="nightly",
        run_type=RunType.SUBMIT_RUN,
        trigger=TriggerType.PERIODIC,
        trigger_info={"time_ms": 5},
        life_cycle=LifeCycle.TERMINATED,
        result=Result.SUCCESS,
        termination=Termination(TerminationCode.SUCCESS, TerminationType.SUCCESS, "ok"),
        job_parameters={"a": "1"},
        overriding_parameters={"python_params": ["x"]},
        repair_history=(RepairEntry("ORIGINAL", None, 1, 2, (3, 4), LifeCycle.TERMINATED, Result.FAILED),),
    )
    assert decode(Run, encode(run)) == run


def test_task_run_round_trips_and_clips_long_text() -> None:
    task = TaskRun(
        task_key="t",
        run_id=9,
        parent_run_id=8,
        life_cycle=LifeCycle.RUNNING,
        resolved_values={"k": [1]},
        state_message="x" * 20_000,
    )
    decoded = decode(TaskRun, encode(task))
    assert decoded.resolved_values == {"k": [1]}
    assert len(decoded.state_message) <= 8_000
    assert decoded.state_message.endswith("[truncated]")


def test_a_newer_schema_is_refused() -> None:
    props = encode(Run(run_id=1, job_id=2))
    props["v"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match="newer than this Floe"):
        decode(Run, props)
