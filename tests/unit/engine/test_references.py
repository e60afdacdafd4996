"""Dynamic value references: resolution for a run, validation of job settings."""

from __future__ import annotations

from typing import Any

import pytest

from core.engine import ReferenceContext, check_references, parse, resolve, resolve_all
from core.errors import InvalidParameterValue

START = 1_767_609_045_123  # 2026-01-05T10:30:45.123Z, a Monday
CTX = ReferenceContext(
    job_id=11,
    job_name="nightly etl",
    run_id=22,
    repair_count=1,
    start_time_ms=START,
    trigger_type="PERIODIC",
    trigger_time_ms=1_767_830_400_000,  # 2026-01-08T00:00:00Z, a Thursday
    file_arrival_location="abfss://in@acct.dfs.core.windows.net/drop/",
    updated_tables=("/data/sales", "/data/stock"),
    parameters={"env": "prod", "my-param": "dash", "n": "3"},
    task_key="transform",
    task_run_id=33,
    attempt_number=2,
    execution_count=4,
    notebook_path="/Repos/etl/transform",
    task_values={
        "ingest": {"rows": 250, "ok": True, "name": "x", "nothing": None, "obj": {"a": [1, 2]}, "ratio": 0.5},
        "odd-key": {"the value": "v"},
    },
    task_results={"ingest": "SUCCESS", "load": "FAILED"},
    task_error_codes={"load": "RUN_EXECUTION_ERROR"},
    input={"city": "Oslo", "geo": {"lat": 59.9}},
    workspace_id="1234567890",
    workspace_url="https://floe.example.com",
)

RESOLVE_TABLE = [
    ("{{job.id}}", "11"),
    ("{{job.name}}", "nightly etl"),
    ("{{job.run_id}}", "22"),
    ("{{job.repair_count}}", "1"),
    ("{{job.start_time.iso_date}}", "2026-01-05"),
    ("{{job.start_time.iso_datetime}}", "2026-01-05T10:30:45"),
    ("{{job.start_time.year}}", "2026"),
    ("{{job.start_time.month}}", "1"),
    ("{{job.start_time.day}}", "5"),
    ("{{job.start_time.hour}}", "10"),
    ("{{job.start_time.minute}}", "30"),
    ("{{job.start_time.second}}", "45"),
    ("{{job.start_time.timestamp_ms}}", str(START)),
    ("{{job.start_time.iso_weekday}}", "1"),
    ("{{job.start_time.is_weekday}}", "true"),
    ("{{job.trigger.type}}", "PERIODIC"),
    ("{{job.trigger.time.iso_date}}", "2026-01-08"),
    ("{{job.trigger.file_arrival.location}}", "abfss://in@acct.dfs.core.windows.net/drop/"),
    ("{{job.trigger.table_update.updated_tables}}", '["/data/sales","/data/stock"]'),
    ("{{job.parameters.env}}", "prod"),
    ("{{job.parameters.`my-param`}}", "dash"),
    ("{{task.name}}", "transform"),
    ("{{task.run_id}}", "33"),
    ("{{task.execution_count}}", "4"),
    ("{{task.notebook_path}}", "/Repos/etl/transform"),
    ("{{tasks.ingest.values.rows}}", "250"),
    ("{{tasks.ingest.values.ok}}", "true"),
    ("{{tasks.ingest.values.name}}", "x"),
    ("{{tasks.ingest.values.nothing}}", "null"),
    ("{{tasks.ingest.values.ratio}}", "0.5"),
    ("{{tasks.ingest.values.obj}}", '{"a":[1,2]}'),
    ("{{tasks.`odd-key`.values.`the value`}}", "v"),
    ("{{tasks.ingest.result_state}}", "SUCCESS"),
    ("{{tasks.ingest.error_code}}", ""),
    ("{{tasks.load.error_code}}", "RUN_EXECUTION_ERROR"),
    ("{{input}}", '{"city":"Oslo","geo":{"lat":59.9}}'),
    ("{{input.city}}", "Oslo"),
    ("{{input.geo.lat}}", "59.9"),
    ("{{workspace.id}}", "1234567890"),
    ("{{workspace.url}}", "https://floe.example.com"),
    # deprecated forms
    ("{{job_id}}", "11"),
    ("{{run_id}}", "33"),  # the task run
    ("{{parent_run_id}}", "22"),  # the job run
    ("{{start_date}}", "2026-01-05"),
    ("{{start_time}}", str(START)),
    ("{{task_key}}", "transform"),
    ("{{task_retry_count}}", "2"),
    # spacing, mixing, repetition
    ("{{ job.id }}", "11"),
    ("run-{{job.run_id}}-{{task.name}}.log", "run-22-transform.log"),
    ("{{job.id}}{{job.id}}", "1111"),
    ("no references", "no references"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), RESOLVE_TABLE)
def test_resolve(text: str, expected: str) -> None:
    assert resolve(text, CTX) == expected


LITERAL_TABLE = [
    "{{job.id",  # missing brace
    "{job.id}}",
    "{{job.id}",
    "{{}}",
    "{{ }}",
    "{{job..id}}",  # empty segment
    "{{job.parameters.my-param}}",  # needs backticks
    "{{job.parameters.``}}",  # empty quoted segment
    "{{ job . id }}",
    "{{foo}}",  # unknown namespace
    "{{backfill.iso_date}}",  # a namespace Floe does not know (yet)
    "{{secrets/scope/key}}",
]


@pytest.mark.parametrize("text", LITERAL_TABLE)
def test_malformed_and_foreign_references_stay_literal(text: str) -> None:
    assert resolve(text, CTX) == text


def test_literal_text_around_a_malformed_reference_does_not_stop_a_good_one() -> None:
    assert resolve("{{job.id {{job.run_id}}", CTX) == "{{job.id 22"


UNRESOLVABLE_TABLE = [
    (
        "{{tasks.ingest.values.missing}}",
        "Cannot resolve {{tasks.ingest.values.missing}}: task 'ingest' did not set the task value 'missing'.",
    ),
    ("{{tasks.nope.values.rows}}", "task 'nope' did not set the task value 'rows'"),
    ("{{tasks.pending.result_state}}", "task 'pending' has not finished in this run"),
    ("{{job.parameters.absent}}", "the run has no job parameter 'absent'"),
    ("{{input.country}}", "the input has no field 'country'"),
    ("{{input.city.name}}", "the input has no field 'city.name'"),
    ("{{job.naem}}", "{{job.naem}} is not a valid dynamic value reference: 'naem' is not a field of 'job'"),
]


@pytest.mark.parametrize(("text", "message"), UNRESOLVABLE_TABLE)
def test_unresolvable_references_raise(text: str, message: str) -> None:
    with pytest.raises(
        InvalidParameterValue, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")
    ):
        resolve(text, CTX)


def test_input_outside_a_for_each_task() -> None:
    with pytest.raises(InvalidParameterValue, match=r"only exists inside the task of a for_each_task"):
        resolve("{{input}}", ReferenceContext())


def test_context_fields_left_none_read_as_empty() -> None:
    ctx = ReferenceContext(file_arrival_location=None, task_key=None)  # type: ignore[arg-type]
    assert resolve("[{{job.trigger.file_arrival.location}}][{{task.name}}]", ctx) == "[][]"


def test_trigger_time_falls_back_to_the_start_time() -> None:
    ctx = ReferenceContext(start_time_ms=START)
    assert resolve("{{job.trigger.time.iso_date}}", ctx) == "2026-01-05"


@pytest.mark.parametrize(
    ("epoch_ms", "weekday", "is_weekday"),
    [(1_767_830_400_000, "4", "true"), (1_768_003_200_000, "6", "false")],
)
def test_weekdays(epoch_ms: int, weekday: str, is_weekday: str) -> None:
    ctx = ReferenceContext(start_time_ms=epoch_ms)
    assert (
        resolve("{{job.start_time.iso_weekday}}/{{job.start_time.is_weekday}}", ctx)
        == f"{weekday}/{is_weekday}"
    )


def test_resolve_all_walks_dicts_and_lists_and_leaves_keys_alone() -> None:
    given: dict[str, Any] = {
        "{{job.id}}": ["{{job.run_id}}", 5, {"x": "{{task.name}}"}],
        "flag": True,
        "none": None,
    }
    assert resolve_all(given, CTX) == {
        "{{job.id}}": ["22", 5, {"x": "transform"}],
        "flag": True,
        "none": None,
    }
    assert given["{{job.id}}"][0] == "{{job.run_id}}"  # not modified


def test_parse_maps_deprecated_names() -> None:
    reference = parse("run_id")
    assert reference is not None and reference.path == ("task", "run_id")
    assert parse("job.parameters.`a.b`") is not None
    assert parse("job.parameters.`a.b`").path == ("job", "parameters", "a.b")  # type: ignore[union-attr]
    assert parse("nope.x") is None


# -- check_references ---------------------------------------------------------------------------------


def job(**extra: Any) -> dict[str, Any]:
    """A job with tasks ingest and transform, a for-each task with inner task per_city, and parameter env."""
    settings: dict[str, Any] = {
        "parameters": [{"name": "env", "default": "dev"}, {"name": "my-param", "default": "x"}],
        "tasks": [
            {"task_key": "ingest", "notebook_task": {"notebook_path": "/a", "base_parameters": {}}},
            {"task_key": "transform", "spark_python_task": {"python_file": "t.py", "parameters": []}},
            {
                "task_key": "loop",
                "for_each_task": {
                    "inputs": "[1,2]",
                    "task": {
                        "task_key": "per_city",
                        "notebook_task": {"notebook_path": "/c", "base_parameters": {}},
                    },
                },
            },
        ],
    }
    settings.update(extra)
    return settings


def with_param(text: str, where: str = "notebook") -> dict[str, Any]:
    settings = job()
    if where == "notebook":
        settings["tasks"][0]["notebook_task"]["base_parameters"] = {"p": text}
    elif where == "python":
        settings["tasks"][1]["spark_python_task"]["parameters"] = ["--x", text]
    elif where == "for_each_inner":
        settings["tasks"][2]["for_each_task"]["task"]["notebook_task"]["base_parameters"] = {"p": text}
    elif where == "for_each_inputs":
        settings["tasks"][2]["for_each_task"]["inputs"] = text
    elif where == "default":
        settings["parameters"][0]["default"] = text
    elif where == "condition":
        settings["tasks"].append(
            {"task_key": "c", "condition_task": {"op": "EQUAL_TO", "left": text, "right": "1"}}
        )
    elif where == "run_job":
        settings["tasks"].append(
            {"task_key": "r", "run_job_task": {"job_id": 1, "job_parameters": {"k": text}}}
        )
    elif where == "sql":
        settings["tasks"].append(
            {"task_key": "s", "sql_task": {"warehouse_id": "w", "parameters": {"k": text}}}
        )
    elif where == "wheel":
        settings["tasks"].append(
            {
                "task_key": "w",
                "python_wheel_task": {
                    "package_name": "p",
                    "entry_point": "e",
                    "named_parameters": {"k": text},
                },
            }
        )
    return settings


VALID = [
    ("{{job.id}} {{job.name}} {{job.run_id}} {{job.repair_count}}", "notebook"),
    ("{{job.start_time.iso_date}} {{job.trigger.time.hour}} {{job.trigger.type}}", "notebook"),
    ("{{job.trigger.file_arrival.location}}", "python"),
    ("{{job.parameters.env}} {{job.parameters.`my-param`}}", "python"),
    ("{{tasks.ingest.values.rows}} {{tasks.transform.result_state}} {{tasks.ingest.error_code}}", "notebook"),
    ("{{tasks.per_city.values.x}}", "notebook"),  # a for-each inner task is a task of the job
    ("{{input}} {{input.city}}", "for_each_inner"),
    ("{{tasks.ingest.values.cities}}", "for_each_inputs"),
    ("{{task.name}} {{task.run_id}} {{task.execution_count}} {{task.notebook_path}}", "notebook"),
    ("{{workspace.id}} {{workspace.url}}", "notebook"),
    (
        "{{job_id}} {{run_id}} {{start_date}} {{start_time}} "
        "{{task_key}} {{parent_run_id}} {{task_retry_count}}",
        "notebook",
    ),
    ("{{job.id", "notebook"),  # malformed: literal
    ("{{foo.bar}}", "notebook"),  # unknown namespace: literal
    ("{{job.start_time.iso_date}}", "default"),
    ("{{tasks.ingest.values.flag}}", "condition"),
    ("{{job.parameters.env}}", "run_job"),
    ("{{job.id}}", "sql"),
    ("{{job.id}}", "wheel"),
]


@pytest.mark.parametrize(("text", "where"), VALID)
def test_valid_references_pass(text: str, where: str) -> None:
    check_references(with_param(text, where))


INVALID = [
    (
        "{{job.naem}}",
        "notebook",
        "tasks[0].notebook_task.base_parameters.p: {{job.naem}} is not a valid dynamic value reference: "
        "'naem' is not a field of 'job' (known: id, name, run_id,",
    ),
    (
        "{{task.foo}}",
        "python",
        "tasks[1].spark_python_task.parameters[1]: {{task.foo}} is not a valid dynamic value reference: "
        "'foo' is not a field of 'task'",
    ),
    (
        "{{tasks.x.values.y}}",
        "notebook",
        "tasks[0].notebook_task.base_parameters.p: {{tasks.x.values.y}} "
        "is not a valid dynamic value reference: the job has no task 'x'.",
    ),
    ("{{tasks.ingest.values}}", "notebook", "write tasks.<task_key>.values.<key>"),
    (
        "{{tasks.ingest.output}}",
        "notebook",
        "write tasks.<task_key>.<field> with a field among values, result_state, error_code",
    ),
    (
        "{{job.start_time.bogus}}",
        "notebook",
        "{{job.start_time.bogus}} is not a valid dynamic value reference: "
        "write job.start_time.<arg> with an arg among iso_date,",
    ),
    ("{{job.start_time}}", "notebook", "write job.start_time.<arg>"),
    ("{{job.trigger.when}}", "notebook", "known trigger references: job.trigger.type"),
    ("{{job.id.x}}", "notebook", "job.id has no field 'x'"),
    ("{{job.parameters.nope}}", "notebook", "the job defines no parameter 'nope' in `parameters`"),
    ("{{input.city}}", "notebook", "{{input}} is only available in the task of a for_each_task"),
    ("{{workspace.name}}", "notebook", "'name' is not a field of 'workspace'"),
    ("{{job}}", "notebook", "'job' needs a field"),
    ("{{job.naem}}", "default", "parameters[0].default: {{job.naem}}"),
    ("{{job.naem}}", "condition", "tasks[3].condition_task.left: {{job.naem}}"),
    ("{{job.naem}}", "for_each_inputs", "tasks[2].for_each_task.inputs: {{job.naem}}"),
    (
        "{{job.naem}}",
        "for_each_inner",
        "tasks[2].for_each_task.task.notebook_task.base_parameters.p: {{job.naem}}",
    ),
    ("{{job.naem}}", "run_job", "tasks[3].run_job_task.job_parameters.k: {{job.naem}}"),
    ("{{job.naem}}", "sql", "tasks[3].sql_task.parameters.k: {{job.naem}}"),
    ("{{job.naem}}", "wheel", "tasks[3].python_wheel_task.named_parameters.k: {{job.naem}}"),
]


@pytest.mark.parametrize(("text", "where", "message"), INVALID, ids=[f"{t}@{w}" for t, w, _ in INVALID])
def test_invalid_references_name_the_field_the_reference_and_the_rule(
    text: str, where: str, message: str
) -> None:
    with pytest.raises(InvalidParameterValue) as raised:
        check_references(with_param(text, where))
    assert message in raised.value.message


def test_check_references_tolerates_odd_settings() -> None:
    check_references({})
    check_references({"tasks": [None, {"task_key": 3}, {"for_each_task": "x"}], "parameters": ["p"]})
    check_references({"tasks": 5, "parameters": "x"})


def test_an_iteration_context_decodes_its_input() -> None:
    ctx = ReferenceContext().for_iteration('{"city": "Oslo", "n": 2, "ok": true}')
    assert resolve("{{input}}", ctx) == '{"city":"Oslo","n":2,"ok":true}'
    assert [resolve(f"{{{{input.{k}}}}}", ctx) for k in ("city", "n", "ok")] == ["Oslo", "2", "true"]
    assert resolve("{{input}}", ReferenceContext().for_iteration('"plain"')) == "plain"


def test_a_task_that_is_not_an_iteration_keeps_its_context() -> None:
    ctx = ReferenceContext(job_id=3)
    assert ctx.for_iteration(None) is ctx
    with pytest.raises(InvalidParameterValue, match=r"only exists inside the task of a for_each_task"):
        resolve("{{input}}", ctx.for_iteration(None))


def test_a_corrupt_iteration_input_is_reported() -> None:
    with pytest.raises(InvalidParameterValue, match=r"^The iteration's input '\{oops' is not JSON\.$"):
        ReferenceContext().for_iteration("{oops")
