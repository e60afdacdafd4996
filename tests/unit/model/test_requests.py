"""validate_run_now and the id / boolean / integer parsers used for query strings and bodies."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import InvalidParameterValue
from core.model import RunNowRequest, parse_bool, parse_id, parse_int, validate_run_now

# ---------------------------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("value", "expected"),
    [(100, 100), ("100", 100), (" 7 ", 7), (5.0, 5), (2**63 - 1, 2**63 - 1)],
)
def test_parse_id_accepts_numbers_and_numeric_strings(value: Any, expected: int) -> None:
    assert parse_id(value, "job_id") == expected


@pytest.mark.parametrize("value", [0, -1, "-1", 2**63, "abc", "1e3", True, 1.5, [1], {}, "\u0661\u0662"])
def test_parse_id_rejects_the_rest(value: Any) -> None:
    with pytest.raises(InvalidParameterValue, match=r"^job_id must be a positive integer id below 2\*\*63"):
        parse_id(value, "job_id")


@pytest.mark.parametrize("value", [None, ""])
def test_parse_id_requires_a_value(value: Any) -> None:
    with pytest.raises(InvalidParameterValue, match=r"^run_id is required\.$"):
        parse_id(value, "run_id")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("1", True),
        (1, True),
        ("false", False),
        ("False", False),
        ("0", False),
        (0, False),
        (None, False),
        ("", False),
    ],
)
def test_parse_bool(value: Any, expected: bool) -> None:
    assert parse_bool(value, "expand_tasks") is expected


@pytest.mark.parametrize("value", ["yes", "2", 2, [], "t"])
def test_parse_bool_rejects_other_spellings(value: Any) -> None:
    with pytest.raises(InvalidParameterValue, match=r"^active_only must be a boolean \(true or false\); got"):
        parse_bool(value, "active_only")


def test_parse_int_defaults_bounds_and_messages() -> None:
    assert parse_int(None, "limit", min=0, max=100, default=20) == 20
    assert parse_int("", "limit", min=0, max=100, default=20) == 20
    assert parse_int("25", "limit", min=0, max=100, default=20) == 25
    assert parse_int("-3", "offset", min=-5, default=0) == -3
    with pytest.raises(InvalidParameterValue, match=r"^limit must be between 0 and 100; got '101'\.$"):
        parse_int("101", "limit", min=0, max=100, default=20)
    with pytest.raises(InvalidParameterValue, match=r"^offset must be at least 0; got -1\.$"):
        parse_int(-1, "offset", min=0, default=0)
    with pytest.raises(
        InvalidParameterValue, match=r"^limit must be an integer between 0 and 25; got 'ten'\.$"
    ):
        parse_int("ten", "limit", min=0, max=25, default=20)


# --------------------------------------------------------------------------------------------- run-now


def test_run_now_minimal_and_string_job_id() -> None:
    assert validate_run_now({"job_id": "100"}) == RunNowRequest(job_id=100)


def test_run_now_full_body() -> None:
    request = validate_run_now(
        {
            "job_id": 7,
            "job_parameters": {"n": 3, "flag": False, "s": "x"},
            "idempotency_token": "tok",
            "only": ["a", "+b"],
            "queue": {"enabled": True},
            "performance_target": "PERFORMANCE_OPTIMIZED",
            "python_params": ["a", 1],
            "python_named_params": {"k": "v"},
            "spark_submit_params": ["--x"],
            "sql_params": {"p": "1"},
            "pipeline_params": {"full_refresh": "true"},
            "unknown_field": 1,
        }
    )
    assert request.job_parameters == {"n": "3", "flag": "false", "s": "x"}
    assert request.only == ("a", "+b")
    assert request.queue_enabled is True
    assert request.python_params == ("a", "1")
    assert request.pipeline_params == {"full_refresh": True}
    assert request.overriding_parameters() == {
        "python_named_params": {"k": "v"},
        "sql_params": {"p": "1"},
        "python_params": ["a", "1"],
        "spark_submit_params": ["--x"],
        "pipeline_params": {"full_refresh": True},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, r"^job_id is required\.$"),
        ({"job_id": "x"}, r"^job_id must be a positive integer id"),
        ([], r"^body must be a JSON object; got \[\]\.$"),
        (
            {"job_id": 1, "job_parameters": ["a"]},
            r"^job_parameters must be a JSON object of strings; got \['a'\]\.$",
        ),
        ({"job_id": 1, "job_parameters": {"a": None}}, r"^job_parameters\.a must be a string; got None\.$"),
        ({"job_id": 1, "job_parameters": {"a": [1]}}, r"^job_parameters\.a must be a string; got \[1\]\.$"),
        (
            {"job_id": 1, "python_params": ["ok", "café"]},
            r"^python_params\[1\] must contain ASCII characters only; got 'café'\.$",
        ),
        (
            {"job_id": 1, "spark_submit_params": ["ü"]},
            r"^spark_submit_params\[0\] must contain ASCII characters only",
        ),
        ({"job_id": 1, "jar_params": "a"}, r"^jar_params must be a JSON array of strings; got 'a'\.$"),
        (
            {"job_id": 1, "notebook_params": {"a": "x" * 10_000}},
            r"^notebook_params must be at most 10000 bytes of JSON \(it is 10008\)\.$",
        ),
        (
            {"job_id": 1, "python_params": ["é" * 5000]},
            r"^python_params\[0\] must contain ASCII characters only",
        ),
        (
            {"job_id": 1, "jar_params": ["a"], "notebook_params": {"b": "c"}},
            r"^jar_params cannot be combined with notebook_params\.$",
        ),
        (
            {"job_id": 1, "idempotency_token": "t" * 65},
            r"^idempotency_token must be a string of 1 to 64 characters",
        ),
        (
            {"job_id": 1, "idempotency_token": 5},
            r"^idempotency_token must be a string of 1 to 64 characters; got 5\.$",
        ),
        ({"job_id": 1, "only": "a"}, r"^only must be a JSON array of strings; got 'a'\.$"),
        ({"job_id": 1, "queue": {"enabled": "maybe"}}, r"^queue\.enabled must be a boolean"),
        ({"job_id": 1, "queue": True}, r"^queue must be a JSON object; got True\.$"),
    ],
)
def test_run_now_rules(body: Any, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        validate_run_now(body)


def test_oversized_legacy_lists_are_measured_as_json_bytes() -> None:
    validate_run_now({"job_id": 1, "python_params": ["x" * 9_990]})
    with pytest.raises(InvalidParameterValue, match=r"^python_params must be at most 10000 bytes of JSON"):
        validate_run_now({"job_id": 1, "python_params": ["x" * 5_000, "y" * 5_000]})


def test_job_parameters_are_bounded_so_a_run_can_keep_them() -> None:
    validate_run_now({"job_id": 1, "job_parameters": {"x": "y" * 29_000}})
    with pytest.raises(InvalidParameterValue, match=r"^job_parameters must be at most 30000 bytes of JSON"):
        validate_run_now({"job_id": 1, "job_parameters": {"x": "é" * 16_000}})
