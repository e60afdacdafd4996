"""Quartz cron from a table: (expression, zone, after) -> the next fire instants, DST edges included."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.errors import InvalidParameterValue
from core.schedule import QuartzCron, check_min_interval, parse_timezone, validate_schedule

NY = "America/New_York"
BERLIN = "Europe/Berlin"
LORD_HOWE = "Australia/Lord_Howe"  # DST moves the clock by 30 minutes

CASES = [
    # (expression, zone, after, the next fires; fewer when the expression ends)
    (
        "0 0/15 * * * ?",
        "UTC",
        "2026-01-01T00:07:00+00:00",
        [
            "2026-01-01T00:15:00+00:00",
            "2026-01-01T00:30:00+00:00",
            "2026-01-01T00:45:00+00:00",
            "2026-01-01T01:00:00+00:00",
        ],
    ),
    (
        "0 0/15 * * * ?",
        "UTC",
        "2026-01-01T00:15:00+00:00",  # strictly after
        ["2026-01-01T00:30:00+00:00"],
    ),
    ("0 0/15 * * * ?", "UTC", "2026-01-01T00:14:59.999+00:00", ["2026-01-01T00:15:00+00:00"]),
    (
        "0/20 * * * * ?",
        "UTC",
        "2026-01-01T00:00:05+00:00",
        ["2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00", "2026-01-01T00:01:00+00:00"],
    ),
    (
        "0 0/20 8-9 * * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        [
            "2026-01-01T08:00:00+00:00",
            "2026-01-01T08:20:00+00:00",
            "2026-01-01T08:40:00+00:00",
            "2026-01-01T09:00:00+00:00",
            "2026-01-01T09:20:00+00:00",
            "2026-01-01T09:40:00+00:00",
            "2026-01-02T08:00:00+00:00",
        ],
    ),
    (
        "0 0 9 ? * MON-FRI",
        NY,
        "2026-03-06T15:00:00+00:00",  # Friday 10:00 EST
        ["2026-03-09T09:00:00-04:00", "2026-03-10T09:00:00-04:00"],
    ),
    ("0 0 9 ? * mon-fri", NY, "2026-03-06T15:00:00+00:00", ["2026-03-09T09:00:00-04:00"]),
    ("0 0 9 ? * 2-6", NY, "2026-03-06T15:00:00+00:00", ["2026-03-09T09:00:00-04:00"]),
    (
        "0 0 12 ? * FRI-MON",
        "UTC",
        "2026-01-01T00:00:00+00:00",  # a range that wraps past SAT
        [
            "2026-01-02T12:00:00+00:00",
            "2026-01-03T12:00:00+00:00",
            "2026-01-04T12:00:00+00:00",
            "2026-01-05T12:00:00+00:00",
            "2026-01-09T12:00:00+00:00",
        ],
    ),
    (
        "0 0 22-1 * * ?",
        "UTC",
        "2026-01-01T12:00:00+00:00",
        [
            "2026-01-01T22:00:00+00:00",
            "2026-01-01T23:00:00+00:00",
            "2026-01-02T00:00:00+00:00",
            "2026-01-02T01:00:00+00:00",
            "2026-01-02T22:00:00+00:00",
        ],
    ),
    (
        "0 0 6,18 ? JAN,JUL SUN",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        ["2026-01-04T06:00:00+00:00", "2026-01-04T18:00:00+00:00", "2026-01-11T06:00:00+00:00"],
    ),
    (
        "0 0 0 1 NOV-FEB ?",
        "UTC",
        "2026-02-15T00:00:00+00:00",
        [
            "2026-11-01T00:00:00+00:00",
            "2026-12-01T00:00:00+00:00",
            "2027-01-01T00:00:00+00:00",
            "2027-02-01T00:00:00+00:00",
            "2027-11-01T00:00:00+00:00",
        ],
    ),
    (
        "0 0 0 ? * L",
        "UTC",
        "2026-01-01T00:00:00+00:00",  # L alone in day-of-week: Saturday
        ["2026-01-03T00:00:00+00:00", "2026-01-10T00:00:00+00:00"],
    ),
    # last day of the month, and three days before it
    (
        "0 0 0 L * ?",
        "UTC",
        "2026-01-15T00:00:00+00:00",
        [
            "2026-01-31T00:00:00+00:00",
            "2026-02-28T00:00:00+00:00",
            "2026-03-31T00:00:00+00:00",
            "2026-04-30T00:00:00+00:00",
        ],
    ),
    ("0 0 0 L * ?", "UTC", "2028-02-01T00:00:00+00:00", ["2028-02-29T00:00:00+00:00"]),
    (
        "0 0 0 L-3 * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        ["2026-01-28T00:00:00+00:00", "2026-02-25T00:00:00+00:00", "2026-03-28T00:00:00+00:00"],
    ),
    # nearest weekday, never leaving the month; the 31st only in months that have one
    (
        "0 0 0 15W * ?",
        "UTC",
        "2026-07-01T00:00:00+00:00",  # Aug 15 is a Saturday
        ["2026-07-15T00:00:00+00:00", "2026-08-14T00:00:00+00:00", "2026-09-15T00:00:00+00:00"],
    ),
    (
        "0 0 0 15W * ?",
        "UTC",
        "2026-02-01T00:00:00+00:00",  # Feb 15 is a Sunday
        ["2026-02-16T00:00:00+00:00"],
    ),
    (
        "0 0 0 1W * ?",
        "UTC",
        "2026-07-15T00:00:00+00:00",  # Aug 1 is a Saturday: Monday the 3rd
        ["2026-08-03T00:00:00+00:00", "2026-09-01T00:00:00+00:00"],
    ),
    (
        "0 0 0 31W * ?",
        "UTC",
        "2026-05-01T00:00:00+00:00",  # May 31 is a Sunday: Friday the 29th
        ["2026-05-29T00:00:00+00:00", "2026-07-31T00:00:00+00:00", "2026-08-31T00:00:00+00:00"],
    ),
    (
        "0 0 0 LW * ?",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        [
            "2026-01-30T00:00:00+00:00",
            "2026-02-27T00:00:00+00:00",
            "2026-03-31T00:00:00+00:00",
            "2026-04-30T00:00:00+00:00",
            "2026-05-29T00:00:00+00:00",
        ],
    ),
    # last Friday, first Monday, fifth Friday (absent in most months)
    (
        "0 0 0 ? * 6L",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        ["2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00", "2026-03-27T00:00:00+00:00"],
    ),
    ("0 0 0 ? * FRIL", "UTC", "2026-01-01T00:00:00+00:00", ["2026-01-30T00:00:00+00:00"]),
    (
        "0 0 0 ? * 2#1",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        ["2026-01-05T00:00:00+00:00", "2026-02-02T00:00:00+00:00", "2026-03-02T00:00:00+00:00"],
    ),
    ("0 0 0 ? * MON#1", "UTC", "2026-01-01T00:00:00+00:00", ["2026-01-05T00:00:00+00:00"]),
    (
        "0 0 0 ? * 6#5",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        ["2026-01-30T00:00:00+00:00", "2026-05-29T00:00:00+00:00"],
    ),
    # the year field: it ends
    (
        "0 0 12 1 1 ? 2027-2028",
        "UTC",
        "2026-01-01T00:00:00+00:00",
        ["2027-01-01T12:00:00+00:00", "2028-01-01T12:00:00+00:00"],
    ),
    ("0 0 12 1 1 ? 2020", "UTC", "2026-01-01T00:00:00+00:00", []),
    ("0 0 0 29 2 ? 2027", "UTC", "2026-01-01T00:00:00+00:00", []),  # 2027 is not a leap year
    # New York, spring forward on 2026-03-08: 02:00 EST becomes 03:00 EDT
    (
        "0 30 2 * * ?",
        NY,
        "2026-03-07T12:00:00+00:00",
        ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    (
        "0 30 2 * * ?",
        NY,
        "2026-03-08T07:10:00+00:00",  # 03:10 EDT: the shifted 02:30 is still ahead
        ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    ("0 30 2 * * ?", NY, "2026-03-08T07:30:00+00:00", ["2026-03-09T02:30:00-04:00"]),
    (
        "0 30 2,3 * * ?",
        NY,
        "2026-03-08T06:00:00+00:00",  # shifted 02:30 and 03:30 are one fire
        ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    (
        "0 0/15 * * * ?",
        NY,
        "2026-03-08T06:50:00+00:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00", "2026-03-08T03:30:00-04:00"],
    ),
    # New York, fall back on 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:xx fires at its first occurrence
    (
        "0 30 1 * * ?",
        NY,
        "2026-10-31T12:00:00+00:00",
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    ("0 30 1 * * ?", NY, "2026-11-01T05:40:00+00:00", ["2026-11-02T01:30:00-05:00"]),  # 01:40 EDT
    ("0 30 1 * * ?", NY, "2026-11-01T06:15:00+00:00", ["2026-11-02T01:30:00-05:00"]),  # 01:15 EST
    (
        "0 0 * * * ?",
        NY,
        "2026-11-01T04:30:00+00:00",
        ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"],
    ),
    ("0 0/20 * * * ?", NY, "2026-11-01T05:50:00+00:00", ["2026-11-01T02:00:00-05:00"]),
    # Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET
    (
        "0 30 2 * * ?",
        BERLIN,
        "2026-03-28T12:00:00+00:00",
        ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"],
    ),
    (
        "0 30 2 * * ?",
        BERLIN,
        "2026-10-24T12:00:00+00:00",
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    # Lord Howe: 2026-10-04 02:00 +10:30 -> 02:30 +11:00; 2026-04-05 02:00 +11:00 -> 01:30 +10:30
    (
        "0 15 2 * * ?",
        LORD_HOWE,
        "2026-10-02T12:00:00+00:00",
        ["2026-10-03T02:15:00+10:30", "2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"],
    ),
    (
        "0 0/20 * * * ?",
        LORD_HOWE,
        "2026-10-03T15:10:00+00:00",  # shifted 02:00, 02:20 interleave 02:40
        [
            "2026-10-04T02:30:00+11:00",
            "2026-10-04T02:40:00+11:00",
            "2026-10-04T02:50:00+11:00",
            "2026-10-04T03:00:00+11:00",
        ],
    ),
    (
        "0 45 1 * * ?",
        LORD_HOWE,
        "2026-04-03T12:00:00+00:00",
        ["2026-04-04T01:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"],
    ),
]


@pytest.mark.parametrize(("expression", "zone_id", "after", "expected"), CASES)
def test_next_fires(expression: str, zone_id: str, after: str, expected: list[str]) -> None:
    cron = QuartzCron.parse(expression)
    zone = parse_timezone(zone_id)
    fires = list(cron.fires(datetime.fromisoformat(after), zone, len(expected) + 1))
    assert [fire.isoformat() for fire in fires[: len(expected)]] == expected
    assert all(fire.tzinfo is zone for fire in fires)
    if len(fires) == len(expected):  # the expression ended
        assert cron.next_fire(fires[-1] if fires else datetime.fromisoformat(after), zone) is None


def test_next_fire_of_an_ended_expression_is_none() -> None:
    cron = QuartzCron.parse("0 0 12 1 1 ? 2027")
    assert cron.next_fire(datetime(2027, 1, 1, 12, tzinfo=UTC), ZoneInfo("UTC")) is None


def test_after_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        QuartzCron.parse("0 0 12 * * ?").next_fire(datetime(2026, 1, 1), ZoneInfo("UTC"))


def test_after_in_any_zone_means_the_same_instant() -> None:
    cron = QuartzCron.parse("0 0 12 * * ?")
    utc = cron.next_fire(datetime(2026, 1, 1, 11, tzinfo=UTC), ZoneInfo("UTC"))
    tokyo = cron.next_fire(datetime(2026, 1, 1, 20, tzinfo=ZoneInfo("Asia/Tokyo")), ZoneInfo("UTC"))
    assert utc == tokyo == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_parsed_expressions_are_frozen_values() -> None:
    cron = QuartzCron.parse("0 0 9 ? * MON-FRI")
    assert cron == QuartzCron.parse("0 0 9 ? * MON-FRI")
    assert hash(cron) == hash(QuartzCron.parse("0 0 9 ? * MON-FRI"))
    cron.next_fire(datetime(2026, 1, 1, tzinfo=UTC), ZoneInfo("UTC"))  # fills the day cache
    assert cron == QuartzCron.parse("0 0 9 ? * MON-FRI")
    assert str(cron) == "0 0 9 ? * MON-FRI"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cron.hours = (10,)  # type: ignore[misc]


PREFIX = r"^schedule\.quartz_cron_expression: '{}' is invalid: "

INVALID = [
    ("0 0 12 * *", r"has 5 field\(s\); a Quartz cron expression has 6 or 7: seconds minutes hours"),
    ("0 0 12 * * ? 2026 1", r"has 8 field\(s\)"),
    ("", r"has 0 field\(s\)"),
    ("0 0 12 * * *", r"exactly one of day-of-month and day-of-week must be '\?'"),
    ("0 0 12 ? * ?", r"exactly one of day-of-month and day-of-week must be '\?'"),
    ("0 0 12 15 * MON", r"exactly one of day-of-month and day-of-week must be '\?'"),
    ("? 0 12 * * ?", r"seconds '\?': '\?' is only allowed in day-of-month or day-of-week"),
    ("60 0 12 * * ?", r"seconds '60': values must be between 0 and 59"),
    ("0 60 12 * * ?", r"minutes '60': values must be between 0 and 59"),
    ("0 0 24 * * ?", r"hours '24': values must be between 0 and 23"),
    ("0 0 0 32 * ?", r"day-of-month '32': values must be between 1 and 31"),
    ("0 0 0 0 * ?", r"day-of-month '0': values must be between 1 and 31"),
    ("0 0 0 1 13 ?", r"month '13': values must be between 1 and 12"),
    ("0 0 0 ? * 0", r"day-of-week '0': values must be between 1 and 7"),
    ("0 0 0 ? * 8", r"day-of-week '8': values must be between 1 and 7"),
    ("0 0 0 1 FOO ?", r"month 'FOO': 'FOO' is not a number or a name JAN-DEC"),
    ("0 0 0 ? * MONDAY", r"day-of-week 'MONDAY': 'MONDAY' is not a number or a name SUN-SAT"),
    ("0 0 MON * * ?", r"hours 'MON': 'MON' is not a number$"),
    ("0 0 0 1, * ?", r"day-of-month '1,': expected a value, a range or '\*' in ''"),
    ("0/0 * * * * ?", r"seconds '0/0': the step after '/' must be a number between 1 and 59"),
    ("0/60 * * * * ?", r"seconds '0/60': the step after '/' must be a number between 1 and 59"),
    ("0 0 0/24 * * ?", r"hours '0/24': the step after '/' must be a number between 1 and 23"),
    ("0 0 0 1-15W * ?", r"day-of-month '1-15W': 'W' takes one day of the month, as in '15W' or 'LW'"),
    ("0 0 0 1,15W * ?", r"day-of-month '1,15W': 'W' takes one day of the month"),
    ("0 0 0 32W * ?", r"day-of-month '32W': the day before 'W' must be between 1 and 31"),
    ("0 0 0 ? * 2W", r"day-of-week '2W': 'W' is only allowed in day-of-month"),
    ("0 0 0 L-31 * ?", r"day-of-month 'L-31': the offset in 'L-n' must be between 0 and 30"),
    ("0 0 0 L,15 * ?", r"day-of-month 'L,15': 'L' stands alone in day-of-month"),
    ("0 0 0 1#2 * ?", r"day-of-month '1#2': '#' is only allowed in day-of-week"),
    ("0 0 0 ? * 2#6", r"day-of-week '2#6': the week number after '#' must be between 1 and 5"),
    ("0 0 0 ? * 2#0", r"day-of-week '2#0': the week number after '#' must be between 1 and 5"),
    ("0 0 0 ? * 9#1", r"day-of-week '9#1': values must be between 1 and 7"),
    ("0 0 0 ? * 1,6L", r"day-of-week '1,6L': 'L' in day-of-week follows one day, as in '6L'"),
    ("0 0 0 ? * 2#1,3", r"day-of-week '2#1,3': '#' follows one day"),
    ("0 0 0 30 2 ?", r"day-of-month '30' never occurs in month '2'"),
    ("0 0 0 31 APR,JUN ?", r"day-of-month '31' never occurs in month 'APR,JUN'"),
    ("0 0 0 1 1 ? 1969", r"year '1969': values must be between 1970 and 2099"),
    ("0 0 0 1 1 ? 2100", r"year '2100': values must be between 1970 and 2099"),
    ("0 0 0 1 1 ? 2030-2028", r"year '2030-2028': a range must not start after it ends"),
]


@pytest.mark.parametrize(("expression", "rule"), INVALID)
def test_invalid_expressions_name_the_field_and_the_rule(expression: str, rule: str) -> None:
    with pytest.raises(InvalidParameterValue, match=PREFIX.format(re.escape(expression)) + rule):
        QuartzCron.parse(expression)


def test_the_whole_message() -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        QuartzCron.parse("0 0 12 * * *")
    assert caught.value.message == (
        "schedule.quartz_cron_expression: '0 0 12 * * *' is invalid: "
        "exactly one of day-of-month and day-of-week must be '?'"
    )
    assert caught.value.http_status == 400


def test_the_field_name_is_the_callers() -> None:
    with pytest.raises(InvalidParameterValue, match=r"^new_settings\.schedule\.quartz_cron_expression: "):
        QuartzCron.parse("0 0 12 * *", field="new_settings.schedule.quartz_cron_expression")


@pytest.mark.parametrize(
    ("expression", "zone_id", "shortest"),
    [
        ("* * * * * ?", "UTC", 1),
        ("0/5 * * * * ?", "UTC", 5),
        ("0,55 * * * * ?", "UTC", 5),  # :55 then :00 of the next minute
        ("0,51 * * * * ?", "UTC", 9),
        ("0,55 0,59 * * * ?", "UTC", 5),  # minute 59 then minute 0 of the next hour
        ("0,55 0,30 * * * ?", LORD_HOWE, 5),  # a 30-minute DST shift can put 0 next to 31
    ],
)
def test_too_frequent_is_rejected(expression: str, zone_id: str, shortest: int) -> None:
    cron = QuartzCron.parse(expression)
    with pytest.raises(
        InvalidParameterValue,
        match=rf"is invalid: it fires {shortest} s apart; scheduled runs must be at least 10 s apart",
    ):
        check_min_interval(cron, parse_timezone(zone_id))


@pytest.mark.parametrize(
    ("expression", "zone_id"),
    [
        ("0/10 * * * * ?", "UTC"),
        ("0,50 * * * * ?", "UTC"),
        ("0,55 0 * * * ?", "UTC"),  # minute 0 only: :55 is followed by :00 an hour later
        ("0,55 0,30 * * * ?", NY),
        ("0 * * * * ?", LORD_HOWE),
    ],
)
def test_ten_seconds_apart_is_allowed(expression: str, zone_id: str) -> None:
    check_min_interval(QuartzCron.parse(expression), parse_timezone(zone_id))


@pytest.mark.parametrize(
    ("timezone_id", "key"),
    [
        ("UTC", "UTC"),
        ("America/New_York", "America/New_York"),
        ("US/Pacific", "US/Pacific"),
        ("PST", "America/Los_Angeles"),  # Java's ZoneId.SHORT_IDS
        ("IST", "Asia/Kolkata"),
        ("EST", "EST"),
        ("Etc/GMT+5", "Etc/GMT+5"),
    ],
)
def test_time_zone_ids(timezone_id: str, key: str) -> None:
    assert parse_timezone(timezone_id).key == key


@pytest.mark.parametrize(
    "timezone_id", ["Mars/Base", "", "../../etc/passwd", "america/new_york", "GMT+05:30"]
)
def test_unknown_time_zones_are_rejected(timezone_id: str) -> None:
    with pytest.raises(
        InvalidParameterValue,
        match=rf"^schedule\.timezone_id: '{re.escape(timezone_id)}' is not a known time zone id; use an IANA",
    ):
        parse_timezone(timezone_id)


def test_validate_schedule_checks_everything_a_save_checks() -> None:
    cron, zone = validate_schedule("0 0 9 ? * MON-FRI", "Europe/Berlin")
    assert cron.next_fire(datetime(2026, 1, 2, 9, tzinfo=UTC), zone) == datetime(
        2026, 1, 5, 9, tzinfo=ZoneInfo("Europe/Berlin")
    )
    with pytest.raises(InvalidParameterValue, match="at least 10 s apart"):
        validate_schedule("* * * * * ?", "UTC")
    with pytest.raises(InvalidParameterValue, match=r"^settings\.schedule\.timezone_id: 'Nowhere'"):
        validate_schedule("0 0 9 ? * MON-FRI", "Nowhere", timezone_field="settings.schedule.timezone_id")
