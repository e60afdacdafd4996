"""The `floe` command (also `python -m core`)."""

from __future__ import annotations

import signal
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
    deploy: Annotated[
        list[Path] | None,
        typer.Option(metavar="PATH", help="Job settings JSON files, or folders of them, to create or update"),
    ] = None,
) -> None:
    """Run the Jobs API, the queue workers and the scheduler tick on this host."""
    import uvicorn

    from core.api import create_app
    from core.runtime.deploy import deploy_jobs
    from core.runtime.host import LocalHost
    from core.settings import Settings
    from core.telemetry import configure, current
    from core.telemetry.logs import configure_logging

    try:
        settings = Settings.from_env(home=home, port=port, host=host, storage=storage, workers=workers)
        configure_logging(settings.log_format)
        configure()  # the exporter the environment names (APPLICATIONINSIGHTS_*, OTEL_*), once
        settings.home.mkdir(parents=True, exist_ok=True)
        runtime = LocalHost(settings)
    except FloeError as bad:
        _fail(bad.message)
    floe = runtime.floe
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
