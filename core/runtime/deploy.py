"""Deploying job definitions from JSON files (`floe serve --deploy examples/`).

Each file holds one job's settings, as `jobs/create` takes them. A job is matched by name: an existing
job with that name is reset to the file's settings, otherwise it is created. So deploying twice changes
nothing, and editing a file and restarting updates the job in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.errors import FloeError
from core.handlers import Floe
from core.model import validate_job_settings


def job_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.glob("*.json"))
        else:
            yield path


def deploy_jobs(floe: Floe, paths: Iterable[Path]) -> Iterator[str]:
    """Create or reset one job per file; yields one human-readable line per file."""
    for path in job_files(paths):
        try:
            raw = json.loads(path.read_text())
            settings = validate_job_settings(raw, trigger_min_seconds=floe.trigger_min_seconds)
        except (OSError, ValueError) as bad:
            yield f"skipped {path}: {bad}"
            continue
        except FloeError as bad:
            yield f"skipped {path}: {bad.message}"
            continue
        name = settings.get("name", "")
        existing = floe.list_jobs(name=name, limit=1, offset=0, page_token=None).jobs
        if existing:
            floe.reset_job(existing[0].job_id, settings)
            yield f"updated job {existing[0].job_id} ({name}) from {path}"
        else:
            job_id = floe.create_job(settings, creator="floe-deploy")
            yield f"created job {job_id} ({name}) from {path}"
