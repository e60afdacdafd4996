"""`floe schedule next`: the preview command, through `core.schedule.cli.app`."""

from __future__ import annotations

from typer.testing import CliRunner

from core.schedule.cli import app

runner = CliRunner()


def test_prints_the_next_fires_with_the_zones_offset() -> None:
    result = runner.invoke(
        app,
        ["next", "0 0 12 * * ?", "--tz", "America/New_York", "--after", "2026-03-07T00:00:00Z", "-n", "3"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-03-07T12:00:00-05:00",
        "2026-03-08T12:00:00-04:00",
        "2026-03-09T12:00:00-04:00",
    ]


def test_count_and_default_zone() -> None:
    result = runner.invoke(
        app, ["next", "0 0/20 * * * ?", "--after", "2026-01-01T00:00:00+00:00", "--count", "2"]
    )
    assert result.stdout.splitlines() == ["2026-01-01T00:20:00+00:00", "2026-01-01T00:40:00+00:00"]


def test_an_after_without_offset_is_a_wall_time_in_the_zone() -> None:
    result = runner.invoke(
        app, ["next", "0 0 12 * * ?", "--tz", "Europe/Berlin", "--after", "2026-07-01T11:00:00"]
    )
    assert result.stdout.splitlines()[0] == "2026-07-01T12:00:00+02:00"


def test_fewer_lines_when_the_expression_ends() -> None:
    result = runner.invoke(
        app, ["next", "0 0 12 1 1 ? 2027-2028", "--after", "2026-01-01T00:00:00Z", "-n", "5"]
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["2027-01-01T12:00:00+00:00", "2028-01-01T12:00:00+00:00"]


def test_a_spring_forward_gap_fires_once_shifted() -> None:
    result = runner.invoke(
        app,
        ["next", "0 30 2 * * ?", "--tz", "America/New_York", "--after", "2026-03-07T12:00:00Z", "-n", "2"],
    )
    assert result.stdout.splitlines() == ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]


def test_an_invalid_expression_exits_2_with_the_message_on_stderr() -> None:
    result = runner.invoke(app, ["next", "0 0 12 * * *"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: schedule.quartz_cron_expression: '0 0 12 * * *' is invalid: "
        "exactly one of day-of-month and day-of-week must be '?'\n"
    )
    assert "Traceback" not in result.output


def test_too_frequent_an_unknown_zone_and_a_bad_instant_exit_2() -> None:
    for args, message in [
        (["next", "* * * * * ?"], "scheduled runs must be at least 10 s apart"),
        (["next", "0 0 12 * * ?", "--tz", "Mars/Base"], "schedule.timezone_id: 'Mars/Base' is not a known"),
        (["next", "0 0 12 * * ?", "--after", "yesterday"], "--after: 'yesterday' is not an ISO-8601"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert message in result.stderr
        assert "Traceback" not in result.output


def test_without_after_it_starts_now() -> None:
    result = runner.invoke(app, ["next", "0 0 12 * * ?", "-n", "1"])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1
