"""What `Floe.tick` costs as scheduled jobs pile up, on the embedded default (SQLite).

For each N (100, 10,000 and 100,000), N jobs with a cron schedule are created through `Floe.create_job`
(the real path: job row, content-addressed settings blob, trigger state and index entry) on a Floe with a
fake clock and no task processes. 100 of them, spread evenly through the ids, fire at 09:01:00 UTC; the
others at 12:00:00. Every repetition works on a fresh copy of the store built for N:

- a warm-up tick at 09:00:45 takes the heartbeat and the reconcile pass, which run on their own timers;
- idle ticks between 09:00:45 and 09:00:54: nothing due, no heartbeat, no reconcile;
- the due tick at 09:01:00: each due job gets a run (checked: exactly those jobs), one heartbeat.

Sizes are measured round-robin, so other load on the machine falls on all of them alike. Every table,
queue and blob call of the ticks is counted (what it would cost as an Azure transaction).
Target: a tick over 100,000 jobs within 1.5x of a tick over 100.

Usage: `.venv/bin/python -m bench.tick [--sizes 100,10000,100000] [--due 100] [--repeats 7] [--write]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.storage_transactions import Counting
from core.clock import FakeClock
from core.handlers import Floe
from core.model import validate_job_settings
from core.settings import Settings
from core.store import Storage, open_storage

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # when the jobs are created
WARM_UP = datetime(2026, 3, 2, 9, 0, 45, tzinfo=UTC)
DUE_AT = datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
IDLE_SPAN_S = 9.0  # idle ticks stay within one heartbeat interval (10 s) of the warm-up tick
DUE_CRON = "0 1 9 * * ?"  # 09:01:00 every day
LATER_CRON = "0 0 12 * * ?"  # 12:00:00 every day


@dataclass
class Result:
    jobs: int
    due_ids: set[int]
    setup_s: float  # creating the jobs through Floe.create_job
    store_mb: float  # the SQLite file
    due_tick_ms: list[float] = field(default_factory=list)  # one per repetition
    idle_tick_ms: list[float] = field(default_factory=list)  # every idle tick of every repetition
    due_calls: Counter[str] = field(default_factory=Counter)  # storage calls of one due tick
    idle_calls: float = 0.0  # storage calls per idle tick


def _spec(cron: str) -> dict[str, Any]:
    return validate_job_settings(
        {
            "name": "scheduled",
            "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "noop.py"}}],
            "schedule": {"quartz_cron_expression": cron, "timezone_id": "UTC"},
        }
    )


def _floe(store: Path, storage: Storage, clock: FakeClock) -> Floe:
    settings = Settings(home=store.parent / "home", workspace=store.parent)
    return Floe(settings, storage, clock=clock, host_id="bench", run_tasks=False)


def build(store: Path, jobs: int, due: int) -> Result:
    """Create `jobs` scheduled jobs in a SQLite store at `store`, `due` of them firing at DUE_AT."""
    every = max(jobs // due, 1)
    due_spec, later_spec = _spec(DUE_CRON), _spec(LATER_CRON)
    floe = _floe(store, open_storage("sqlite", root=store), FakeClock(START))
    due_ids: set[int] = set()
    started = time.perf_counter()
    try:
        for i in range(jobs):
            firing = i % every == 0 and len(due_ids) < due
            job_id = floe.create_job(due_spec if firing else later_spec, creator="bench")
            if firing:
                due_ids.add(job_id)
    finally:
        floe.close()  # the last connection checkpoints the WAL: the folder can be copied as it is
    setup_s = time.perf_counter() - started
    return Result(jobs, due_ids, setup_s, (store / "floe.db").stat().st_size / 2**20)


def _timed_tick(floe: Floe, clock: FakeClock, now: datetime) -> tuple[float, int]:
    clock.set(now)
    started = time.perf_counter()
    report = floe.tick(now)
    return (time.perf_counter() - started) * 1000, report.triggered


def measure_once(store: Path, result: Result, idle_ticks: int) -> None:
    """One repetition on `store` (a fresh copy of the built one); adds its numbers to `result`."""
    plain = open_storage("sqlite", root=store)
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    storage = Storage(
        tables=Counting(plain.tables, "table", counts, lock),  # type: ignore[arg-type]
        queues=Counting(plain.queues, "queue", counts, lock),  # type: ignore[arg-type]
        blobs=Counting(plain.blobs, "blob", counts, lock),  # type: ignore[arg-type]
        kind="sqlite",
    )
    clock = FakeClock(WARM_UP)
    floe = _floe(store, storage, clock)
    try:
        floe.tick(WARM_UP)
        counts.clear()
        for k in range(1, idle_ticks + 1):
            ms, triggered = _timed_tick(
                floe, clock, WARM_UP + timedelta(seconds=IDLE_SPAN_S * k / idle_ticks)
            )
            assert triggered == 0, f"an idle tick started {triggered} runs"
            result.idle_tick_ms.append(ms)
        result.idle_calls = sum(counts.values()) / idle_ticks
        counts.clear()
        ms, triggered = _timed_tick(floe, clock, DUE_AT)
        result.due_calls = Counter(counts)
        result.due_tick_ms.append(ms)
        due = result.due_ids
        assert triggered == len(due), f"the due tick started {triggered} runs, not {len(due)}"
        started = {floe.repo.get_run_record(run_id).job_id for run_id in floe.repo.active_run_ids()}
        assert started == due, (
            f"runs for {len(started - due)} jobs not due, none for {len(due - started)} due"
        )
    finally:
        floe.close()


def measure(sizes: list[int], due: int, repeats: int, idle_ticks: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for jobs in sizes:
            results.append(build(Path(tmp) / f"n{jobs}", jobs, due))
            print(f"{jobs} jobs created in {results[-1].setup_s:.1f} s", flush=True)
        for r in range(repeats):
            for result in results:
                built, copy = Path(tmp) / f"n{result.jobs}", Path(tmp) / f"n{result.jobs}-r{r}"
                shutil.copytree(built, copy)
                measure_once(copy, result, idle_ticks)
                shutil.rmtree(copy)
    return results


def report(results: list[Result], repeats: int, idle_ticks: int) -> str:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    first, last = results[0], results[-1]
    due = len(first.due_ids)
    med = statistics.median
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    same_calls = all(r.due_calls == first.due_calls for r in results)
    lines = [
        f"## Tick over many scheduled jobs (embedded default) — {datetime.now(UTC):%Y-%m-%d}",
        "",
        f"`python -m bench.tick --write` on {machine}. N jobs with a cron schedule, created through",
        f"`Floe.create_job` on SQLite; {due} of them (spread through the ids) due at the measured instant,",
        f"the others hours later. The due tick starts those {due} runs (checked: exactly the due jobs got",
        "one); an idle tick finds nothing due. Neither includes the reconcile pass (a 30 s timer of its",
        f"own, which reads the active runs, not the jobs). Medians of {repeats} due ticks, each on a fresh",
        f"copy of the store, and of {repeats * idle_ticks} idle ticks; the sizes measured round-robin.",
        "",
        "| jobs | setup: create_job | store | due tick | storage calls, due tick | idle tick "
        "| storage calls, idle tick |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        calls = sum(r.due_calls.values())
        lines.append(
            f"| {r.jobs:,} | {r.setup_s:.1f} s ({r.setup_s / r.jobs * 1000:.2f} ms/job) "
            f"| {r.store_mb:.1f} MB "
            f"| {med(r.due_tick_ms):.1f} ms | {calls} ({calls / due:.1f} per run) "
            f"| {med(r.idle_tick_ms) * 1000:.0f} µs | {r.idle_calls:g} |"
        )

    def verdict(attr: str) -> str:
        ratio = med(getattr(last, attr)) / med(getattr(first, attr))
        return f"{ratio:.2f}x ({'met' if ratio <= 1.5 else 'not met'})"

    lines += [
        "",
        f"| {last.jobs:,} jobs / {first.jobs:,} jobs | result | target |",
        "|---|---|---|",
        f"| due tick ({due} runs started) | {verdict('due_tick_ms')} | ≤ 1.5x |",
        f"| idle tick | {verdict('idle_tick_ms')} | ≤ 1.5x |",
        "",
        f"Storage calls of the due tick: {'the same' if same_calls else 'NOT the same'} at every size (one",
        "index query, the calls of each started run, the heartbeat's upsert and one read of the settings",
        f"blob, cached afterwards). The benchmark process peaked at {peak_mb:.0f} MB resident, building",
        "the stores included. Profiled when this benchmark was written (cProfile, and each SQL statement",
        "timed): the tick's Python work is call for call the same at every size, and what grows is",
        "SQLite's WAL checkpoint, which the tick's ~800 commits set off once the log reaches 1,000 pages",
        "(about 5 ms at 100 jobs, 30 ms at 100,000, whose due rows lie on pages scattered through the",
        "file). With `PRAGMA wal_autocheckpoint=0` the due tick took 84 ms at both sizes. The ratios move",
        "by ±0.2 with other load on the machine; compare runs made alone.",
        "",
        "| storage call, due tick | " + " | ".join(f"{r.jobs:,} jobs" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for key in sorted({k for r in results for k in r.due_calls}):
        lines.append(f"| {key} | " + " | ".join(str(r.due_calls[key]) for r in results) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,100000", help="numbers of scheduled jobs")
    parser.add_argument("--due", type=int, default=100, help="jobs due at the measured instant")
    parser.add_argument("--repeats", type=int, default=7, help="due ticks per size, each on a fresh copy")
    parser.add_argument("--idle", type=int, default=20, help="idle ticks per repetition")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    text = report(measure(sizes, args.due, args.repeats, args.idle), args.repeats, args.idle)
    print(text)
    if args.write:
        from bench import write_section

        write_section("Tick over many scheduled jobs", text)


if __name__ == "__main__":
    main()
