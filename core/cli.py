"""The `floe` command (also `python -m core`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import FloeError
from core.schedule.cli import app as schedule_app

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Floe: Lakeflow Jobs, serverless and open."
)


app.add_typer(schedule_app, name="schedule")


@app.callback()
def _root() -> None:
    """Floe: Lakeflow Jobs, serverless and open."""


@app.command()
def serve(
    home: Annotated[
        Path | None, typer.Option(help="Folder for the SQLite file, blobs and logs (env FLOE_HOME)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (env FLOE_PORT, default 8080)")] = None,
    host: Annotated[str | None, typer.Option(help="HTTP address (env FLOE_HOST, default 127.0.0.1)")] = None,
    storage: Annotated[str | None, typer.Option(help="sqlite (default) or azure (env FLOE_STORAGE)")] = None,
    workers: Annotated[int | None, typer.Option(help="Queue worker threads (env FLOE_WORKERS)")] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="local (default): run task attempts here; runners: leave them to `floe runner` hosts"
        ),
    ] = None,
    deploy: Annotated[
        list[Path] | None,
        typer.Option(metavar="PATH", help="Job settings JSON files, or folders of them, to create or update"),
    ] = None,
) -> None:
    """Run the Jobs API, the queue workers and the scheduler tick on this host."""
    import uvicorn

    from core.api import create_app
    from core.handlers import Floe
    from core.runtime.deploy import deploy_jobs
    from core.runtime.host import LocalHost, storage_from
    from core.telemetry import current

    try:
        settings = _settings(home=home, port=port, host=host, storage=storage, workers=workers, tasks=tasks)
        floe = Floe(settings, storage_from(settings), run_tasks=settings.tasks == "local")
        runtime = LocalHost(settings, floe)
    except FloeError as bad:
        _fail(bad.message)
    token = floe.ensure_admin_token()
    if token:
        typer.echo(f"Created an admin token (shown once, keep it): {token}", err=True)
    for line in deploy_jobs(floe, deploy or []):
        typer.echo(line, err=True)
    runtime.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(floe, public_url=settings.public_url),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )
    )
    typer.echo(f"Floe serving on http://{settings.host}:{settings.port} (home {settings.home})", err=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again with the handlers that
    # were there before it: make that an ordinary exit so the runtime below stops its task processes.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_quietly)
    try:
        server.run()
    finally:
        runtime.stop()
        current().flush()


@app.command()
def runner(
    home: Annotated[
        Path | None, typer.Option(help="Folder for task files, logs and clusters (env FLOE_HOME)")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="sqlite or azure (env FLOE_STORAGE)")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Threads taking task starts from floe-tasks (env FLOE_WORKERS)")
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(help="The most task processes at once; 0: no limit (env FLOE_RUNNER_SLOTS)"),
    ] = None,
) -> None:
    """Run task attempts (and their Spark clusters) for dispatchers with FLOE_TASKS=runners: the Azure
    Functions app, or `floe serve --tasks runners`. Any number of runners share the storage's floe-tasks
    queue."""
    from core.runtime.runner import RunnerHost
    from core.telemetry import current

    try:
        settings = _settings(home=home, storage=storage, workers=workers, tasks="runners", runner_slots=slots)
        runtime = RunnerHost(settings)
    except FloeError as bad:
        _fail(bad.message)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    runtime.start()
    typer.echo(f"Floe runner {runtime.floe.host_id} running task attempts (home {settings.home})", err=True)
    try:
        stop.wait()
    finally:
        runtime.stop()
        current().flush()


def _settings(**options: Any) -> Any:
    """Settings from the environment and the command's options, with logging and telemetry set up."""
    from core.settings import Settings
    from core.telemetry import configure
    from core.telemetry.logs import configure_logging

    settings = Settings.from_env(**options)
    configure_logging(settings.log_format)
    configure()  # the exporter the environment names (APPLICATIONINSIGHTS_*, OTEL_*), once
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


@app.command()
def version() -> None:
    """Print Floe's version."""
    from core import __version__

    typer.echo(__version__)


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _fail(message: str) -> Any:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
