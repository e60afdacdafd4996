"""Quartz cron schedules as a pure function of (expression, zone, after).

Why not croniter: croniter 7 reads Unix cron with an optional seconds field at the *end* (or at the
front behind a flag), numbers weekdays 0-6 from Sunday, reads `?` as `*`, gives `L` in day-of-week
another meaning, and resolves DST gaps and overlaps by its own rules. Translating Quartz into it
would need a rewrite of the day-of-month / day-of-week part and of the DST handling anyway, which is
most of the work. So this is a small evaluator of its own, ~150 lines: it walks the fields of local
wall-clock time from the largest down (year, month, day, hour, minute, second), jumping with
`bisect` over sorted tuples of allowed values, so a call costs a handful of steps whatever the
expression; days come from one `DayRule` per (year, month), cached on the schedule.

DST rules (also in the README). Wall times are evaluated in `zone`, then placed on the time line:
- a wall time in a spring-forward gap fires once, shifted forward by the gap (02:30 in the hour
  that America/New_York skips fires at 03:30 EDT); when that coincides with a fire of a wall time
  after the gap, the two are one fire;
- a wall time that a fall-back overlap repeats fires once, at its first occurrence (01:30 on
  2026-11-01 in New York fires at 01:30 EDT, not again at 01:30 EST).
Both are what `fold=0` means to `zoneinfo`, which is how the code gets them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import InvalidParameterValue
from core.schedule.quartz_parse import DayRule, parse_fields

MIN_INTERVAL_SECONDS: Final = 10
EXPRESSION_FIELD: Final = "schedule.quartz_cron_expression"
TIMEZONE_FIELD: Final = "schedule.timezone_id"

_SECOND: Final = timedelta(seconds=1)
_HORIZON_YEARS: Final = 100  # without a year field a valid expression fires within 28 years
_DAY_CACHE_SIZE: Final = 48


@dataclass(frozen=True, slots=True)
class QuartzCron:
    """A parsed Quartz cron expression. Build it with `QuartzCron.parse`; frozen and hashable."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...] | None
    day_rule: DayRule
    _days: dict[tuple[int, int], tuple[int, ...]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @classmethod
    def parse(cls, expression: str, *, field: str = EXPRESSION_FIELD) -> QuartzCron:
        """Parse a Quartz expression; raise `InvalidParameterValue` naming field, expression and rule."""
        parsed = parse_fields(expression, field)
        return cls(expression.strip(), *parsed)

    def __str__(self) -> str:
        return self.expression

    def next_fire(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """The first fire instant strictly after `after` (aware), as an aware datetime in `zone`.

        None when the expression fires no more (its years are past). See the module docstring for
        what happens to wall times in DST gaps and overlaps.
        """
        if after.tzinfo is None:
            raise ValueError("after must be an aware datetime")
        after_utc = after.astimezone(UTC)
        local = after_utc.astimezone(zone)
        wall = local.replace(tzinfo=None, microsecond=0, fold=0)
        # Wall times in a spring-forward gap fire shifted into the span just after it; when `after`
        # lies in that span, some of them still lie ahead although their wall time is behind.
        offset = local.utcoffset()
        assert offset is not None
        gap = offset - min(_offset(after_utc - timedelta(days=d), zone) for d in (1, 2))
        if gap > timedelta(0) and _offset(after_utc - gap, zone) != offset:
            wall -= gap
        best: datetime | None = None
        limit: datetime | None = None  # once a shifted fire is found, wall times before its shift
        candidate = self._next_wall(wall + _SECOND)
        while candidate is not None and (limit is None or candidate < limit):
            instant = candidate.replace(tzinfo=zone).astimezone(UTC)
            if instant > after_utc and (best is None or instant < best):
                best = instant
                shifted = instant.astimezone(zone).replace(tzinfo=None)
                if shifted == candidate:  # a wall time that exists: nothing later fires earlier
                    break
                limit = shifted
            candidate = self._next_wall(candidate + _SECOND)
        return None if best is None else best.astimezone(zone)

    def fires(self, after: datetime, zone: ZoneInfo, n: int | None = None) -> Iterator[datetime]:
        """The fire instants after `after`, ascending: `n` of them, fewer if the expression ends."""
        count = 0
        current: datetime | None = after
        while n is None or count < n:
            current = self.next_fire(current, zone)
            if current is None:
                return
            yield current
            count += 1

    def _days_of(self, year: int, month: int) -> tuple[int, ...]:
        key = (year, month)
        days = self._days.get(key)
        if days is None:
            if len(self._days) >= _DAY_CACHE_SIZE:
                self._days.clear()
            days = self._days[key] = self.day_rule.days_of(year, month)
        return days

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first matching wall-clock time at or after `start` (naive), or None."""
        year, month, day = start.year, start.month, start.day
        hour, minute, second = start.hour, start.minute, start.second
        years, months, hours, minutes, seconds = (
            self.years,
            self.months,
            self.hours,
            self.minutes,
            self.seconds,
        )
        last_year = years[-1] if years is not None else year + _HORIZON_YEARS
        while True:
            if years is not None and year not in years:
                i = bisect_left(years, year)
                if i == len(years):
                    return None
                year, month, day, hour, minute, second = years[i], 1, 1, 0, 0, 0
            if year > last_year:
                return None
            i = bisect_left(months, month)
            if i == len(months):
                year, month, day, hour, minute, second = year + 1, 1, 1, 0, 0, 0
                continue
            if months[i] != month:
                month, day, hour, minute, second = months[i], 1, 0, 0, 0
            days = self._days_of(year, month)
            i = bisect_left(days, day)
            if i == len(days):
                month, day, hour, minute, second = month + 1, 1, 0, 0, 0
                continue
            if days[i] != day:
                day, hour, minute, second = days[i], 0, 0, 0
            i = bisect_left(hours, hour)
            if i == len(hours):
                day, hour, minute, second = day + 1, 0, 0, 0
                continue
            if hours[i] != hour:
                hour, minute, second = hours[i], 0, 0
            i = bisect_left(minutes, minute)
            if i == len(minutes):
                hour, minute, second = hour + 1, 0, 0
                continue
            if minutes[i] != minute:
                minute, second = minutes[i], 0
            i = bisect_left(seconds, second)
            if i == len(seconds):
                minute, second = minute + 1, 0
                continue
            return datetime(year, month, day, hour, minute, seconds[i])


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


# Java's ZoneId.SHORT_IDS: three-letter ids Java accepts that the IANA database does not have.
_JAVA_SHORT_IDS: Final = {
    "ACT": "Australia/Darwin",
    "AET": "Australia/Sydney",
    "AGT": "America/Argentina/Buenos_Aires",
    "ART": "Africa/Cairo",
    "AST": "America/Anchorage",
    "BET": "America/Sao_Paulo",
    "BST": "Asia/Dhaka",
    "CAT": "Africa/Harare",
    "CNT": "America/St_Johns",
    "CST": "America/Chicago",
    "CTT": "Asia/Shanghai",
    "EAT": "Africa/Addis_Ababa",
    "ECT": "Europe/Paris",
    "IET": "America/Indiana/Indianapolis",
    "IST": "Asia/Kolkata",
    "JST": "Asia/Tokyo",
    "MIT": "Pacific/Apia",
    "NET": "Asia/Yerevan",
    "NST": "Pacific/Auckland",
    "PLT": "Asia/Karachi",
    "PNT": "America/Phoenix",
    "PRT": "America/Puerto_Rico",
    "PST": "America/Los_Angeles",
    "SST": "Pacific/Guadalcanal",
    "VST": "Asia/Ho_Chi_Minh",
}


@lru_cache(maxsize=1024)
def parse_timezone(timezone_id: str, *, field: str = TIMEZONE_FIELD) -> ZoneInfo:
    """The zone for a Java or IANA time-zone id ("UTC", "Europe/Paris", "US/Pacific", "PST").

    IANA ids (and their old aliases such as "US/Pacific") come from zoneinfo; Java's own
    three-letter ids map as `java.time.ZoneId.SHORT_IDS` maps them.
    """
    for key in (timezone_id, _JAVA_SHORT_IDS.get(timezone_id)):
        if key:
            try:
                return ZoneInfo(key)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                pass
    raise InvalidParameterValue(
        f"{field}: {timezone_id!r} is not a known time zone id; use an IANA id such as "
        "'UTC', 'America/New_York' or 'Europe/Berlin'"
    )


def check_min_interval(cron: QuartzCron, zone: ZoneInfo, *, field: str = EXPRESSION_FIELD) -> None:
    """Reject an expression that can fire twice less than `MIN_INTERVAL_SECONDS` apart.

    Two fires closer than a minute share a minute or sit in two consecutive minutes, so the
    shortest interval is the smallest gap between the seconds values, or, when two consecutive
    minutes can both fire, the gap from the last seconds value around to the first. Minutes can be
    consecutive when the minutes field has two values one apart (59 and 0 included), or, in a zone
    whose DST shift is not a whole number of hours (Australia/Lord_Howe), whenever it has two values,
    because a wall time shifted out of the gap can land next to another.
    """
    seconds = cron.seconds
    gaps = [b - a for a, b in pairwise(seconds)]
    minutes = set(cron.minutes)
    consecutive = any((m + 1) % 60 in minutes for m in minutes)
    if consecutive or (len(minutes) > 1 and _has_sub_hour_shift(zone)):
        gaps.append(60 - seconds[-1] + seconds[0])
    shortest = min(gaps, default=60)
    if shortest < MIN_INTERVAL_SECONDS:
        raise InvalidParameterValue(
            f"{field}: {cron.expression!r} is invalid: it fires {shortest} s apart; "
            f"scheduled runs must be at least {MIN_INTERVAL_SECONDS} s apart"
        )


@lru_cache(maxsize=256)
def _has_sub_hour_shift(zone: ZoneInfo) -> bool:
    """Whether `zone` changes its UTC offset by other than whole hours, sampled 1970-2100."""
    samples = (datetime(year, month, 15, tzinfo=UTC) for year in range(1970, 2101) for month in (1, 4, 7, 10))
    offsets = {_offset(instant, zone) for instant in samples}
    return any((a - b).total_seconds() % 3600 for a in offsets for b in offsets)


def validate_schedule(
    expression: str,
    timezone_id: str,
    *,
    expression_field: str = EXPRESSION_FIELD,
    timezone_field: str = TIMEZONE_FIELD,
) -> tuple[QuartzCron, ZoneInfo]:
    """Everything a job save checks about a schedule: the expression, the zone, the 10 s minimum."""
    cron = QuartzCron.parse(expression, field=expression_field)
    zone = parse_timezone(timezone_id, field=timezone_field)
    check_min_interval(cron, zone, field=expression_field)
    return cron, zone
