"""Parsing Quartz cron expressions into sorted field values and one rule for choosing days.

The grammar is Quartz's `CronExpression`: `sec min hour day-of-month month day-of-week [year]`,
case-insensitive, fields separated by whitespace. Every field takes `*`, a value, a range `a-b`
(wrapping past the end, as in `FRI-MON` or `22-2`, except for years), a step `a/n`, `a-b/n` or `*/n`,
and comma-separated lists of those. Months take `JAN`-`DEC`, days of the week `SUN`-`SAT` and
1-7 with 1 = Sunday. Day-of-month also takes `L`, `L-n`, `nW`, `LW` and `L-nW`; day-of-week takes
`L` (Saturday), `nL` and `n#k`; a special form stands alone in its field. Exactly one of
day-of-month and day-of-week is `?`.

Every message names the field, the expression, the part at fault and the rule it breaks.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from typing import Final, NamedTuple

from core.errors import InvalidParameterValue

_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_LONGEST_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _Field(NamedTuple):
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    cyclic: bool = True  # a range may wrap past `high` back to `low`

    def name_hint(self) -> str:
        return f" or a name {self.names[0]}-{self.names[-1]}" if self.names else ""


SECOND: Final = _Field("seconds", 0, 59)
MINUTE: Final = _Field("minutes", 0, 59)
HOUR: Final = _Field("hours", 0, 23)
DAY_OF_MONTH: Final = _Field("day-of-month", 1, 31)
MONTH: Final = _Field("month", 1, 12, _MONTHS)
DAY_OF_WEEK: Final = _Field("day-of-week", 1, 7, _WEEKDAYS)
YEAR: Final = _Field("year", 1970, 2099, cyclic=False)


@dataclass(frozen=True, slots=True)
class DayRule:
    """Which days of a month fire; built from whichever of day-of-month / day-of-week is not `?`.

    kind is one of:
    - "days": the days of the month in `values` (`*`, lists, ranges, steps in day-of-month);
    - "weekdays": the days whose Quartz weekday (1 = SUN .. 7 = SAT) is in `values`;
    - "last": the last day minus `offset` (`L`, `L-n`); with `nearest_weekday`, `LW` / `L-nW`;
    - "nearest": the weekday nearest to day `day` (`nW`), never leaving the month;
    - "last_weekday": the last `weekday` of the month (`nL`);
    - "nth_weekday": the `nth` `weekday` of the month (`n#k`), absent in months without one.
    """

    kind: str
    values: tuple[int, ...] = ()
    offset: int = 0
    day: int = 0
    weekday: int = 0
    nth: int = 0
    nearest_weekday: bool = False

    def days_of(self, year: int, month: int) -> tuple[int, ...]:
        """The days of `month` in `year` this rule selects, ascending."""
        first_weekday, length = monthrange(year, month)  # Monday = 0
        # Quartz weekday (1 = Sunday) of day d: (first_weekday + d) % 7 + 1... shifted so Sunday is 1
        first_quartz = (first_weekday + 1) % 7 + 1
        kind = self.kind
        if kind == "days":
            return tuple(d for d in self.values if d <= length)
        if kind == "weekdays":
            wanted = self.values
            return tuple(d for d in range(1, length + 1) if (first_quartz + d - 2) % 7 + 1 in wanted)
        if kind == "last":
            day = length - self.offset
            if day < 1:
                return ()
            return (_nearest_weekday(day, first_quartz, length),) if self.nearest_weekday else (day,)
        if kind == "nearest":
            if self.day > length:
                return ()
            return (_nearest_weekday(self.day, first_quartz, length),)
        first = 1 + (self.weekday - first_quartz) % 7
        if kind == "last_weekday":
            return (first + 7 * ((length - first) // 7),)
        day = first + 7 * (self.nth - 1)  # nth_weekday
        return (day,) if day <= length else ()


def _nearest_weekday(day: int, first_quartz: int, length: int) -> int:
    """Quartz's `W`: Saturday moves to Friday and Sunday to Monday, unless that leaves the month."""
    weekday = (first_quartz + day - 2) % 7 + 1
    if weekday == 7:  # Saturday
        return day + 2 if day == 1 else day - 1
    if weekday == 1:  # Sunday
        return day - 2 if day == length else day + 1
    return day


class ParsedCron(NamedTuple):
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...] | None  # None: every year
    day_rule: DayRule


class _Invalid(Exception):
    """A rule broken inside one field; `parse` adds the field name and the expression."""


_LAST_DOM = re.compile(r"L(?:-(\d+))?(W?)")
_NEAREST_DOM = re.compile(r"(\d+)W")
_LAST_DOW = re.compile(r"(\w+)L")
_NTH_DOW = re.compile(r"(\w+)#(\d+)")


def parse_fields(expression: str, field: str) -> ParsedCron:
    """Parse `expression`; raise `InvalidParameterValue` naming `field`, the expression and the rule."""

    def invalid(detail: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"{field}: {expression!r} is invalid: {detail}")

    parts = expression.upper().split()
    if len(parts) not in (6, 7):
        raise invalid(
            f"has {len(parts)} field(s); a Quartz cron expression has 6 or 7: "
            "seconds minutes hours day-of-month month day-of-week [year]"
        )
    specs = (SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR)
    values: list[tuple[int, ...] | None] = []
    for spec, part in zip(specs, parts, strict=False):
        try:
            if spec is DAY_OF_MONTH or spec is DAY_OF_WEEK:
                values.append(None)  # read below, together
            else:
                if "?" in part:
                    raise _Invalid("'?' is only allowed in day-of-month or day-of-week")
                values.append(_values(part, spec))
        except _Invalid as bad:
            raise invalid(f"{spec.label} {part!r}: {bad}") from None
    dom, dow = parts[3], parts[5]
    if (dom == "?") == (dow == "?"):
        raise invalid("exactly one of day-of-month and day-of-week must be '?'")
    try:
        rule = _day_of_week_rule(dow) if dom == "?" else _day_of_month_rule(dom)
    except _Invalid as bad:
        spec, part = (DAY_OF_WEEK, dow) if dom == "?" else (DAY_OF_MONTH, dom)
        raise invalid(f"{spec.label} {part!r}: {bad}") from None
    months = values[4]
    assert months is not None
    if not _can_occur(rule, months):
        raise invalid(f"day-of-month {dom!r} never occurs in month {parts[4]!r}")
    return ParsedCron(
        seconds=values[0] or (),
        minutes=values[1] or (),
        hours=values[2] or (),
        months=months,
        years=values[6] if len(parts) == 7 else None,
        day_rule=rule,
    )


def _can_occur(rule: DayRule, months: tuple[int, ...]) -> bool:
    longest = max(_LONGEST_MONTH[m - 1] for m in months)
    if rule.kind == "days":
        return min(rule.values) <= longest
    if rule.kind == "nearest":
        return rule.day <= longest
    if rule.kind == "last":
        return rule.offset < longest
    return True


def _day_of_month_rule(part: str) -> DayRule:
    if match := _LAST_DOM.fullmatch(part):
        offset = int(match[1] or 0)
        if offset > 30:
            raise _Invalid("the offset in 'L-n' must be between 0 and 30")
        return DayRule("last", offset=offset, nearest_weekday=bool(match[2]))
    if match := _NEAREST_DOM.fullmatch(part):
        day = int(match[1])
        if not 1 <= day <= 31:
            raise _Invalid("the day before 'W' must be between 1 and 31")
        return DayRule("nearest", day=day)
    if "W" in part:
        raise _Invalid("'W' takes one day of the month, as in '15W' or 'LW', not a range, list or step")
    if "L" in part:
        raise _Invalid("'L' stands alone in day-of-month ('L', 'L-3', 'LW'), not in a range or list")
    if "?" in part:
        raise _Invalid("'?' stands alone")
    if "#" in part:
        raise _Invalid("'#' is only allowed in day-of-week")
    return DayRule("days", values=_values(part, DAY_OF_MONTH))


def _day_of_week_rule(part: str) -> DayRule:
    if part == "L":
        return DayRule("weekdays", values=(7,))
    if match := _LAST_DOW.fullmatch(part):
        return DayRule("last_weekday", weekday=_value(match[1], DAY_OF_WEEK))
    if match := _NTH_DOW.fullmatch(part):
        weekday = _value(match[1], DAY_OF_WEEK)
        nth = int(match[2])
        if not 1 <= nth <= 5:
            raise _Invalid("the week number after '#' must be between 1 and 5")
        return DayRule("nth_weekday", weekday=weekday, nth=nth)
    if "L" in part:  # no weekday name contains an L
        raise _Invalid("'L' in day-of-week follows one day, as in '6L' or 'FRIL', not a range or list")
    if "#" in part:
        raise _Invalid("'#' follows one day and precedes a week number, as in '2#1', not a range or list")
    if "?" in part:
        raise _Invalid("'?' stands alone")
    if "W" in part.replace("WED", ""):
        raise _Invalid("'W' is only allowed in day-of-month")
    return DayRule("weekdays", values=_values(part, DAY_OF_WEEK))


def _values(part: str, spec: _Field) -> tuple[int, ...]:
    """The sorted values of one ordinary field: `*`, values, ranges and steps, comma-separated."""
    chosen: set[int] = set()
    for item in part.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            max_step = spec.high - spec.low if spec.cyclic else spec.high - spec.low + 1
            max_step = max(max_step, 1)
            if not step_text.isdigit() or not 1 <= int(step_text) <= max(max_step, spec.high):
                raise _Invalid(
                    f"the step after '/' must be a number between 1 and {max(max_step, spec.high)}"
                )
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            low, high = _value(start_text, spec), _value(end_text, spec)
            if low > high and not spec.cyclic:
                raise _Invalid("a range must not start after it ends")
        elif base:
            low = _value(base, spec)
            high = spec.high if slash else low
        else:
            raise _Invalid(f"expected a value, a range or '*' in {item!r}")
        if low <= high:
            chosen.update(range(low, high + 1, step))
        else:  # a wrapping range such as FRI-MON or 22-2
            span = spec.high - spec.low + 1
            chosen.update((v - spec.low) % span + spec.low for v in range(low, high + span + 1, step))
    return tuple(sorted(chosen))


def _value(text: str, spec: _Field) -> int:
    if text.isdigit():
        number = int(text)
    elif text in spec.names:
        number = spec.low + spec.names.index(text)
    else:
        raise _Invalid(f"{text!r} is not a number{spec.name_hint()}")
    if not spec.low <= number <= spec.high:
        raise _Invalid(f"values must be between {spec.low} and {spec.high}")
    return number
