"""The official Databricks SDK drives a real Floe server end to end: jobs, runs, outputs, errors."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from databricks.sdk.errors import InvalidParameterValue, ResourceDoesNotExist
from databricks.sdk.service import jobs

from tests.fixtures.server import FloeServer

pytestmark = pytest.mark.timeout(120)

WAIT = timedelta(seconds=60)


def python_task(key: str, path: str, *params: str, depends_on: tuple[str, ...] = ()) -> jobs.Task:
    return jobs.Task(
        task_key=key,
        spark_python_task=jobs.SparkPythonTask(python_file=path, parameters=list(params)),
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on],
    )


@pytest.fixture
def scripts(floe_server: FloeServer) -> FloeServer:
    floe_server.script(
        "hello.py",
        """
        import sys
        print("hello", *sys.argv[1:])
        """,
    )
    floe_server.script(
        "fail.py",
        """
        print("about to fail")
        raise ValueError("boom")
        """,
    )
    floe_server.script(
        "sleep.py",
        """
        import time
        print("sleeping", flush=True)
        time.sleep(120)
        """,
    )
    return floe_server


def test_two_task_job_with_parameters_runs_to_success(scripts: FloeServer) -> None:
    w = scripts.client()
    job = w.jobs.create(
        name="two-tasks",
        parameters=[jobs.JobParameterDefinition(name="greeting", default="hello")],
        tasks=[
            python_task(
                "first", "hello.py", "{{job.parameters.greeting}}", "run={{job.run_id}}", "task={{task.name}}"
            ),
            python_task("second", "hello.py", "after", "{{job.id}}", depends_on=("first",)),
        ],
    )
    run = w.jobs.run_now(job.job_id, job_parameters={"greeting": "bonjour"}).result(timeout=WAIT)

    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED
    assert run.run_page_url
    by_key = {t.task_key: t for t in run.tasks}
    assert set(by_key) == {"first", "second"}
    assert all(t.state.result_state == jobs.RunResultState.SUCCESS for t in run.tasks)
    assert by_key["second"].start_time >= by_key["first"].end_time
    assert {p.name: p.value for p in run.job_parameters} == {"greeting": "bonjour"}

    first = w.jobs.get_run_output(by_key["first"].run_id)
    assert first.logs.strip() == f"hello bonjour run={run.run_id} task=first"
    assert first.metadata.run_id == by_key["first"].run_id
    second = w.jobs.get_run_output(by_key["second"].run_id)
    assert second.logs.strip() == f"hello after {job.job_id}"


def test_jobs_crud_through_the_sdk(scripts: FloeServer) -> None:
    w = scripts.client()
    created = w.jobs.create(name="crud-me", tasks=[python_task("only", "hello.py")], max_concurrent_runs=3)
    other = w.jobs.create(name="someone-else", tasks=[python_task("only", "hello.py")])

    got = w.jobs.get(created.job_id)
    assert got.settings.name == "crud-me"
    assert got.settings.max_concurrent_runs == 3
    assert got.creator_user_name
    assert [j.job_id for j in w.jobs.list(name="CRUD-ME")] == [created.job_id]
    assert {created.job_id, other.job_id} <= {j.job_id for j in w.jobs.list()}

    w.jobs.update(
        created.job_id,
        new_settings=jobs.JobSettings(name="crud-renamed", tasks=[python_task("extra", "hello.py")]),
    )
    updated = w.jobs.get(created.job_id).settings
    assert updated.name == "crud-renamed"
    assert [t.task_key for t in updated.tasks] == ["only", "extra"]  # tasks merge by key

    w.jobs.reset(
        created.job_id, new_settings=jobs.JobSettings(name="crud-reset", tasks=[python_task("z", "hello.py")])
    )
    assert [t.task_key for t in w.jobs.get(created.job_id).settings.tasks] == ["z"]

    w.jobs.delete(created.job_id)
    with pytest.raises(ResourceDoesNotExist, match=f"Job {created.job_id} does not exist"):
        w.jobs.get(created.job_id)
    with pytest.raises(ResourceDoesNotExist):
        w.jobs.get_run(123456789)


def test_pagination_of_jobs_ends_without_looping(scripts: FloeServer) -> None:
    w = scripts.client()
    ids = {w.jobs.create(name=f"page-{i}", tasks=[python_task("t", "hello.py")]).job_id for i in range(7)}
    listed = [j.job_id for j in w.jobs.list(limit=3)]
    assert len(listed) == len(set(listed))
    assert ids <= set(listed)


def test_idempotency_token_starts_one_run(scripts: FloeServer) -> None:
    w = scripts.client()
    job = w.jobs.create(name="idem", tasks=[python_task("t", "hello.py")], max_concurrent_runs=5)
    first = w.jobs.run_now(job.job_id, idempotency_token="nightly-2026-11-24")
    second = w.jobs.run_now(job.job_id, idempotency_token="nightly-2026-11-24")
    assert first.run_id == second.run_id
    third = w.jobs.run_now(job.job_id, idempotency_token="nightly-2026-11-25")
    assert third.run_id != first.run_id
    first.result(timeout=WAIT)
    third.result(timeout=WAIT)
    runs = list(w.jobs.list_runs(job_id=job.job_id))
    assert sorted(r.run_id for r in runs) == sorted({first.run_id, third.run_id})


def test_runs_submit_runs_a_one_time_run(scripts: FloeServer) -> None:
    w = scripts.client()
    run = w.jobs.submit(
        run_name="one-off",
        tasks=[
            jobs.SubmitTask(
                task_key="only",
                spark_python_task=jobs.SparkPythonTask(python_file="hello.py", parameters=["once"]),
            )
        ],
    ).result(timeout=WAIT)
    assert run.state.result_state == jobs.RunResultState.SUCCESS
    assert run.run_type == jobs.RunType.SUBMIT_RUN
    assert run.run_name == "one-off"
    assert w.jobs.get_run_output(run.tasks[0].run_id).logs.strip() == "hello once"
    # a job run with a single task also answers get-output by its own id
    assert w.jobs.get_run_output(run.run_id).logs.strip() == "hello once"


def test_a_failed_task_fails_the_run_and_skips_its_dependents(scripts: FloeServer) -> None:
    w = scripts.client()
    job = w.jobs.create(
        name="failing",
        tasks=[
            python_task("ok", "hello.py"),
            python_task("breaks", "fail.py", depends_on=("ok",)),
            python_task("never", "hello.py", depends_on=("breaks",)),
            python_task("parallel", "hello.py", depends_on=("ok",)),
        ],
    )
    run = w.jobs.run_now(job.job_id).result(timeout=WAIT)
    assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert run.state.result_state == jobs.RunResultState.FAILED
    results = {t.task_key: t.state.result_state for t in run.tasks}
    assert results == {
        "ok": jobs.RunResultState.SUCCESS,
        "breaks": jobs.RunResultState.FAILED,
        "never": jobs.RunResultState.UPSTREAM_FAILED,
        "parallel": jobs.RunResultState.SUCCESS,
    }
    broken = next(t for t in run.tasks if t.task_key == "breaks")
    output = w.jobs.get_run_output(broken.run_id)
    assert output.error == "ValueError: boom"
    assert "Traceback (most recent call last)" in output.error_trace
    assert "about to fail" in output.logs


def test_cancel_stops_a_long_task_within_seconds(scripts: FloeServer) -> None:
    w = scripts.client()
    job = w.jobs.create(
        name="long",
        tasks=[python_task("sleep", "sleep.py"), python_task("after", "hello.py", depends_on=("sleep",))],
    )
    waiter = w.jobs.run_now(job.job_id)
    deadline = time.monotonic() + 30
    while w.jobs.get_run(waiter.run_id).tasks[0].state.life_cycle_state != jobs.RunLifeCycleState.RUNNING:
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    started = time.monotonic()
    run = w.jobs.cancel_run(waiter.run_id).result(timeout=WAIT)
    assert time.monotonic() - started < 10
    assert run.state.result_state == jobs.RunResultState.CANCELED
    results = {t.task_key: t.state.result_state for t in run.tasks}
    assert results["sleep"] == jobs.RunResultState.CANCELED
    assert results["after"] in (jobs.RunResultState.CANCELED, jobs.RunResultState.UPSTREAM_CANCELED)
    assert not scripts.host.floe.executor.supervisor.running()


def test_bad_job_definitions_get_clear_errors(scripts: FloeServer) -> None:
    w = scripts.client()
    with pytest.raises(InvalidParameterValue, match=r"a -> b -> a"):
        w.jobs.create(
            name="cycle",
            tasks=[
                python_task("a", "hello.py", depends_on=("b",)),
                python_task("b", "hello.py", depends_on=("a",)),
            ],
        )
    with pytest.raises(InvalidParameterValue, match="nope"):
        w.jobs.create(name="unknown-dep", tasks=[python_task("a", "hello.py", depends_on=("nope",))])
    # Only jobs/get and runs/get are mapped to ResourceDoesNotExist by the SDK; elsewhere, as on Databricks,
    # a missing job is a 400 INVALID_PARAMETER_VALUE.
    with pytest.raises(InvalidParameterValue, match="Job 987654321 does not exist"):
        w.jobs.run_now(987654321)
