"""`floe schedule ...`: preview a Quartz cron schedule's next fire instants."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from core.clock import SystemClock
from core.errors import FloeError
from core.schedule.quartz import validate_schedule

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Quartz cron schedules.")


@app.callback()
def _schedule() -> None:
    """Quartz cron schedules."""


@app.command("next")
def next_fires(
    expression: Annotated[str, typer.Argument(help="Quartz cron expression, e.g. '0 0 9 ? * MON-FRI'")],
    tz: Annotated[str, typer.Option("--tz", help="Java/IANA time-zone id")] = "UTC",
    after: Annotated[
        str | None,
        typer.Option(
            help="ISO-8601 instant to start after (default now); without an offset, a wall time in --tz"
        ),
    ] = None,
    n: Annotated[int, typer.Option("-n", "--count", min=1, help="How many fire instants to print")] = 5,
) -> None:
    """Print the next N fire instants, one ISO-8601 instant with its UTC offset per line."""
    try:
        cron, zone = validate_schedule(expression, tz)
    except FloeError as bad:
        _fail(bad.message)
    if after is None:
        start = SystemClock().now()
    else:
        try:
            start = datetime.fromisoformat(after)
        except ValueError:
            _fail(f"--after: {after!r} is not an ISO-8601 date and time")
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
    for instant in cron.fires(start, zone, n):
        typer.echo(instant.isoformat())


def _fail(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
