"""Job-completion triggers: every upstream job must finish with the configured status since the last fire."""

from __future__ import annotations

import pytest

from core.schedule.job_completion import (
    JobCompletionState,
    completed_jobs,
    matches_status,
    on_run_finished,
)

T0 = 1_767_225_600_000


@pytest.mark.parametrize(
    ("if_status", "result", "matches"),
    [
        (None, "SUCCESS", True),
        (None, "FAILED", False),
        ("SUCCESS", "SUCCESS", True),
        ("SUCCESS", "SUCCESS_WITH_FAILURES", True),
        ("SUCCESS", "FAILED", False),
        ("SUCCESS", "CANCELED", False),
        ("FAILED", "FAILED", True),
        ("FAILED", "TIMEDOUT", True),
        ("FAILED", "INTERNAL_ERROR", True),
        ("FAILED", "SUCCESS", False),
        ("FAILED", "CANCELED", False),
        ("DONE", "SUCCESS", True),
        ("DONE", "FAILED", True),
        ("DONE", "CANCELED", True),
    ],
)
def test_matches_status(if_status: str | None, result: str, matches: bool) -> None:
    assert matches_status(if_status, result) is matches


ONE = {"jobs": [{"job_id": "11"}]}
TWO = {"jobs": [{"job_id": 11}, {"job_id": "22", "workspace_id": "w"}], "if_status": "SUCCESS"}


def _feed(settings: dict, events: list[tuple]) -> tuple[list[bool], JobCompletionState]:
    state = JobCompletionState()
    fired = []
    for job, run, result, end in events:
        fire, state = on_run_finished(settings, state, job, run, result, end)
        fired.append(fire)
    return fired, state


@pytest.mark.parametrize(
    ("settings", "events", "fired"),
    [
        # one upstream job: each matching completion fires
        (ONE, [(11, 1, "SUCCESS", T0), (11, 2, "SUCCESS", T0 + 1)], [True, True]),
        (ONE, [(11, 1, "FAILED", T0), (11, 2, "SUCCESS", T0 + 1)], [False, True]),
        # an unrelated job never fires
        (ONE, [(99, 1, "SUCCESS", T0)], [False]),
        # redelivery of the same completion: once
        (ONE, [(11, 1, "SUCCESS", T0), (11, 1, "SUCCESS", T0)], [True, False]),
        # an older completion delivered late: ignored
        (ONE, [(11, 2, "SUCCESS", T0 + 5), (11, 1, "SUCCESS", T0)], [True, False]),
        # two upstream jobs: fires when both have completed, then waits for both again
        (
            TWO,
            [
                (11, 1, "SUCCESS", T0),
                (11, 2, "SUCCESS", T0 + 1),  # the same job twice does not complete the set
                ("22", 3, "SUCCESS", T0 + 2),
                (22, 4, "SUCCESS", T0 + 3),
                (11, 5, "SUCCESS", T0 + 4),
            ],
            [False, False, True, False, True],
        ),
        # a non-matching result neither counts nor cancels a matching one already seen
        (
            TWO,
            [(11, 1, "SUCCESS", T0), (11, 2, "FAILED", T0 + 1), (22, 3, "SUCCESS", T0 + 2)],
            [False, False, True],
        ),
        (TWO, [(11, 1, "SUCCESS", T0), (22, 2, "CANCELED", T0 + 1)], [False, False]),
    ],
)
def test_on_run_finished(settings: dict, events: list[tuple], fired: list[bool]) -> None:
    assert _feed(settings, events)[0] == fired


def test_paused_ignores_completions() -> None:
    fire, state = on_run_finished(ONE, JobCompletionState(), 11, 1, "SUCCESS", T0, paused=True)
    assert (fire, state) == (False, JobCompletionState())


def test_completed_jobs_and_state_round_trip() -> None:
    fired, state = _feed(TWO, [(22, 7, "SUCCESS", T0 + 2), (11, 5, "SUCCESS_WITH_FAILURES", T0 + 3)])
    assert fired == [False, True]
    assert completed_jobs(TWO, state) == [
        {
            "job_id": "11",
            "run_id": "5",
            "completion_time": T0 + 3,
            "termination_code": "SUCCESS_WITH_FAILURES",
        },
        {"job_id": "22", "run_id": "7", "completion_time": T0 + 2, "termination_code": "SUCCESS"},
    ]
    assert state.pending == frozenset()
    half = _feed(TWO, [(22, 7, "SUCCESS", T0 + 2)])[1]
    for s in (state, half):
        assert JobCompletionState.from_json(s.to_json()) == s
