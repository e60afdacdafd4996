"""Quartz cron schedules: parsing, validation and next fire times, as pure functions of their inputs."""

from __future__ import annotations

from core.schedule.quartz import (
    MIN_INTERVAL_SECONDS,
    QuartzCron,
    check_min_interval,
    parse_timezone,
    validate_schedule,
)
from core.schedule.quartz_parse import DayRule

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "DayRule",
    "QuartzCron",
    "check_min_interval",
    "parse_timezone",
    "validate_schedule",
]
