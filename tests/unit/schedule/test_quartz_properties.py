"""Properties of next_fire over generated expressions, zones and instants, against a brute-force oracle.

Expressions are generated together with the sets of values they mean, and days are judged by an
independent, literal reading of the Quartz rules, so the oracle shares no code with the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.errors import InvalidParameterValue
from core.schedule import QuartzCron, validate_schedule

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
WINDOW = timedelta(hours=30)
MAX_COMPARED = 300

Field = tuple[str, frozenset[int]]
DayCheck = Callable[[date], bool]


def _transitions(zone_id: str) -> list[datetime]:
    zone, found = ZoneInfo(zone_id), []
    instant, last = datetime(2026, 1, 1, tzinfo=UTC), None
    while instant.year < 2028:
        offset = instant.astimezone(zone).utcoffset()
        if last is not None and offset != last:
            found.append(instant)
        last, instant = offset, instant + timedelta(hours=1)
    return found


TRANSITIONS = sorted({t for zone_id in ZONES for t in _transitions(zone_id)})


@st.composite
def fields(draw: st.DrawFn, low: int, high: int, names: list[str] | None = None) -> Field:
    def text(value: int) -> str:
        return names[value - low] if names and draw(st.booleans()) else str(value)

    kind = draw(st.sampled_from(["star", "value", "range", "wrap", "step", "list"]))
    a, b = sorted(draw(st.lists(st.integers(low, high), min_size=2, max_size=2)))
    if kind == "star":
        return "*", frozenset(range(low, high + 1))
    if kind == "value":
        return text(a), frozenset({a})
    if kind == "range":
        return f"{text(a)}-{text(b)}", frozenset(range(a, b + 1))
    if kind == "wrap" and a < b:
        return f"{text(b)}-{text(a)}", frozenset(range(b, high + 1)) | frozenset(range(low, a + 1))
    if kind == "step":
        step = draw(st.integers(1, max(1, high - low)))
        return f"{a}/{step}", frozenset(range(a, high + 1, step))
    values = draw(st.lists(st.integers(low, high), min_size=1, max_size=4, unique=True))
    return ",".join(text(v) for v in values), frozenset(values)


def _cyclic_gap_ok(field: Field) -> bool:
    values = sorted(field[1])
    gaps = [b - a for a, b in pairwise(values)] + [60 - values[-1] + values[0]]
    return min(gaps) >= 10


def _last_day(day: date) -> int:
    return ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day


def _quartz_weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # 1 = Sunday ... 7 = Saturday


def _nearest_weekday_is(day: date, target: int) -> bool:
    """Whether `day` is the weekday (Mon-Fri) of its month closest to day `target`."""
    last = _last_day(day)
    if target > last:
        return False
    weekdays = [d for d in range(1, last + 1) if day.replace(day=d).isoweekday() <= 5]
    return day.day == min(weekdays, key=lambda d: abs(d - target))


@st.composite
def day_parts(draw: st.DrawFn) -> tuple[str, str, DayCheck]:
    kind = draw(st.sampled_from(["dom", "dow", "L", "LW", "W", "nL", "#"]))
    if kind == "dom":
        text, values = draw(fields(1, 31))
        return text, "?", lambda d: d.day in values
    if kind == "dow":
        text, values = draw(fields(1, 7, WEEKDAYS))
        return "?", text, lambda d: _quartz_weekday(d) in values
    if kind in ("L", "LW"):
        offset = draw(st.sampled_from([0, 0, 1, 3, 15, 27, 28, 29, 30]))
        text = "L" + (f"-{offset}" if offset or draw(st.booleans()) else "") + ("W" if kind == "LW" else "")
        if kind == "L":
            return text, "?", lambda d: d.day == _last_day(d) - offset
        return (
            text,
            "?",
            lambda d: _last_day(d) - offset >= 1 and _nearest_weekday_is(d, _last_day(d) - offset),
        )
    if kind == "W":
        target = draw(st.integers(1, 31))
        return f"{target}W", "?", lambda d: _nearest_weekday_is(d, target)
    weekday = draw(st.integers(1, 7))
    name = draw(st.sampled_from([str(weekday), WEEKDAYS[weekday - 1]]))
    if kind == "nL":
        return "?", f"{name}L", lambda d: _quartz_weekday(d) == weekday and d.day + 7 > _last_day(d)
    nth = draw(st.integers(1, 5))
    return "?", f"{name}#{nth}", lambda d: _quartz_weekday(d) == weekday and (d.day - 1) // 7 + 1 == nth


class Generated:
    def __init__(self, text: str, seconds, minutes, hours, months, years, day: DayCheck) -> None:
        self.text, self.day = text, day
        self.seconds, self.minutes, self.hours = sorted(seconds), sorted(minutes), sorted(hours)
        self.months, self.years = months, years

    def matches_date(self, day: date) -> bool:
        return day.month in self.months and (self.years is None or day.year in self.years) and self.day(day)

    def matches(self, wall: datetime) -> bool:
        return (
            self.matches_date(wall.date())
            and wall.hour in self.hours
            and wall.minute in self.minutes
            and wall.second in self.seconds
        )

    def __repr__(self) -> str:
        return repr(self.text)


@st.composite
def expressions(draw: st.DrawFn) -> Generated:
    seconds = draw(fields(0, 59).filter(_cyclic_gap_ok))
    minutes = draw(st.one_of(fields(0, 59), st.just(("0/20", frozenset({0, 20, 40})))))
    hours = draw(st.one_of(fields(0, 23), st.just(("*", frozenset(range(24))))))
    dom, dow, day = draw(day_parts())
    months = draw(st.one_of(st.just(("*", frozenset(range(1, 13)))), fields(1, 12, MONTHS)))
    years = draw(st.sampled_from([None, None, None, ("2026", {2026}), ("2026-2027", {2026, 2027})]))
    parts = [seconds[0], minutes[0], hours[0], dom, months[0], dow] + ([years[0]] if years else [])
    return Generated(
        " ".join(parts), seconds[1], minutes[1], hours[1], months[1], years[1] if years else None, day
    )


instants = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 1), timezones=st.just(UTC)),
    st.tuples(
        st.sampled_from(TRANSITIONS),
        st.one_of(st.integers(-36 * 3600, 36 * 3600), st.integers(-3 * 3600, 3 * 3600)),
    ).map(lambda pair: pair[0] + timedelta(seconds=pair[1])),
)


def _parse(generated: Generated, zone_id: str) -> tuple[QuartzCron, ZoneInfo]:
    try:
        return validate_schedule(generated.text, zone_id)
    except InvalidParameterValue as bad:  # only a day that no chosen month has may be refused
        assert "never occurs" in bad.message, bad.message
        assume(False)
        raise


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The documented placement: fold=0, i.e. gap times shifted forward, overlap times at the first."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _expected(generated: Generated, zone: ZoneInfo, after: datetime, end: datetime) -> list[datetime]:
    """Every matching wall time from a day before `after` to a day after `end`, placed, sorted."""
    found: set[datetime] = set()
    day = after.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date() + timedelta(days=1):
        if generated.matches_date(day):
            for hour in generated.hours:
                for minute in generated.minutes:
                    for second in generated.seconds:
                        instant = _instant(datetime(day.year, day.month, day.day, hour, minute, second), zone)
                        if after < instant <= end:
                            found.add(instant)
        day += timedelta(days=1)
    return sorted(found)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(generated=expressions(), zone_id=st.sampled_from(ZONES), after=instants)
def test_no_fire_is_skipped_and_none_is_extra(generated: Generated, zone_id: str, after: datetime) -> None:
    cron, zone = _parse(generated, zone_id)
    end = after + WINDOW
    actual = [t.astimezone(UTC) for t in islice(cron.fires(after, zone), MAX_COMPARED)]
    actual = [t for t in actual if t <= end]
    expected = _expected(generated, zone, after, end)
    if len(actual) == MAX_COMPARED:
        expected = expected[:MAX_COMPARED]
    assert actual == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(generated=expressions(), zone_id=st.sampled_from(ZONES), after=instants)
def test_every_fire_matches_and_fires_increase(generated: Generated, zone_id: str, after: datetime) -> None:
    cron, zone = _parse(generated, zone_id)
    previous = after
    for fire in cron.fires(after, zone, 25):
        assert fire.tzinfo is zone
        assert fire > previous
        wall = fire.replace(tzinfo=None)
        if not generated.matches(wall):  # then a wall time in a gap, shifted forward by the gap
            gap = fire.utcoffset() - (fire - timedelta(days=1)).astimezone(zone).utcoffset()
            assert gap > timedelta(0), f"{fire.isoformat()} does not match {generated.text!r}"
            shifted_from = wall - gap
            assert generated.matches(shifted_from)
            assert _instant(shifted_from, zone) == fire
            assert (
                shifted_from.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
                != shifted_from
            )
        assert cron.next_fire(previous, zone) == fire
        previous = fire
