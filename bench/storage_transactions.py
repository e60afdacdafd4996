"""Storage transactions per task on the Azure adapter (the bill on Azure), counted against Azurite.

Runs a real Floe host in this process on Azure Storage (Azurite), wraps every table, queue and blob
client so each call that would be one Azure transaction is counted, runs jobs of N no-op Python tasks
(a fan-out and a chain) and reports the count per task, split by service and operation. Receives that
find no message (an idle worker's polling) are reported apart: they cost the same whatever the load.
Target: ≤ 8 transactions per task.

Each shape runs twice: on one host that runs its tasks (`floe serve`), and split as on Azure Functions,
a dispatcher with FLOE_TASKS=runners plus a runner (`floe runner`), whose run.poll chain is counted too
(polled every `POLL_SECONDS` instead of 30 s, so a short run pays for more polls than it would).

Usage: `.venv/bin/python -m bench.storage_transactions [--tasks 20] [--write]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.model import validate_job_settings, validate_run_now
from core.runtime.host import LocalHost, storage_from
from core.settings import Settings
from core.store import Storage
from tests.fixtures.azurite import running_azurite

_COUNTED = {
    "table": ("get", "insert", "replace", "upsert", "delete", "query", "batch"),
    "queue": ("send", "receive", "delete", "extend"),
    "blob": ("put", "get", "append", "stat", "delete"),
}


class Counting:
    """Wraps a store object and counts the calls of its transaction methods."""

    def __init__(self, inner: Any, service: str, counts: Counter[str], lock: threading.Lock) -> None:
        self._inner, self._service, self._counts, self._lock = inner, service, counts, lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in ("table", "queue"):
            return lambda *a, **k: Counting(attr(*a, **k), self._service, self._counts, self._lock)
        if name not in _COUNTED[self._service] or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            key = f"{self._service}.{name}"
            if name == "receive" and not result:
                key = "queue.receive (empty)"
            with self._lock:
                self._counts[key] += 1
            return result

        return counted


POLL_SECONDS = 2.0


def measure(tasks: int) -> dict[str, Counter[str]]:
    results = _measure(tasks, runners=False)
    results.update({f"{name} (runners)": counts for name, counts in _measure(tasks, runners=True).items()})
    return results


def _measure(tasks: int, *, runners: bool) -> dict[str, Counter[str]]:
    results: dict[str, Counter[str]] = {}
    with running_azurite() as connection, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace = root / "ws"
        workspace.mkdir()
        (workspace / "noop.py").write_text("print('done')\n")
        settings = Settings(
            home=root / "home",
            storage="azure",
            azure_connection_string=connection,
            storage_prefix="bench",
            admin_token="x",
            workspace=workspace,
            workers=2,
            tasks="runners" if runners else "local",
            task_poll_seconds=POLL_SECONDS,
        )
        plain = storage_from(settings)
        counts: Counter[str] = Counter()
        lock = threading.Lock()

        def counted() -> Storage:  # each host closes its own storage when it stops
            inner = storage_from(settings)
            return Storage(
                tables=Counting(inner.tables, "table", counts, lock),  # type: ignore[arg-type]
                queues=Counting(inner.queues, "queue", counts, lock),  # type: ignore[arg-type]
                blobs=Counting(inner.blobs, "blob", counts, lock),  # type: ignore[arg-type]
                kind="azure",
            )

        from core.handlers import Floe
        from core.repository import Repository
        from core.runtime.runner import RunnerHost

        host = LocalHost(settings, Floe(settings, counted(), run_tasks=not runners))
        runner_settings = dataclasses.replace(settings, home=root / "runner")
        runner = RunnerHost(runner_settings, Floe(runner_settings, counted())) if runners else None
        watcher = Repository(plain)  # the benchmark's own reads are not counted
        host.start()
        if runner is not None:
            runner.start()
        floe = host.floe
        try:

            def task(key: str, deps: tuple[str, ...] = ()) -> dict[str, Any]:
                return {
                    "task_key": key,
                    "spark_python_task": {"python_file": "noop.py"},
                    "depends_on": [{"task_key": d} for d in deps],
                }

            shapes = {
                "fan-out": [task(f"t{i}") for i in range(tasks)],
                "chain": [task("t0")] + [task(f"t{i}", (f"t{i - 1}",)) for i in range(1, tasks)],
            }
            for name, task_list in shapes.items():
                job_id = floe.create_job(
                    validate_job_settings({"name": name, "tasks": task_list}), creator="bench"
                )
                time.sleep(0.5)  # let idle polling settle, then count only the run
                with lock:
                    counts.clear()
                run = floe.run_now(validate_run_now({"job_id": job_id}), creator="bench")
                while not watcher.get_run_record(run.run_id).is_final:
                    time.sleep(0.2)
                time.sleep(POLL_SECONDS + 2.0 if runners else 1.0)  # the last log shipment and poll
                with lock:
                    results[name] = Counter(counts)
        finally:
            if runner is not None:
                runner.stop()
            host.stop()
            plain.close()
    return results


def report(results: dict[str, Counter[str]], tasks: int) -> str:
    lines = [
        f"## Storage transactions per task (Azure adapter) — {datetime.now(UTC):%Y-%m-%d}",
        "",
        f"`python -m bench.storage_transactions --write`: one run of {tasks} Python tasks that print a",
        "line, on Azurite; every table, queue and blob call counted (the benchmark's own polling is not).",
        "",
        "| job | transactions per task (without idle receives) | idle receives per task | target |",
        "|---|---|---|---|",
    ]
    for name, counts in results.items():
        idle = counts["queue.receive (empty)"]
        busy = sum(v for k, v in counts.items() if k != "queue.receive (empty)")
        lines.append(f"| {name} | {busy / tasks:.1f} | {idle / tasks:.1f} | ≤ 8 |")
    lines += [
        "",
        "By operation, per task:",
        "",
        "| operation | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    keys = sorted({k for c in results.values() for k in c})
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(f"{c[key] / tasks:.2f}" for c in results.values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    text = report(measure(args.tasks), args.tasks)
    print(text)
    if args.write:
        from bench import write_section

        write_section("Storage transactions per task", text)


if __name__ == "__main__":
    main()
