"""How much Floe adds to the tasks it runs, on the embedded default (SQLite, a process per task).

Runs a real `floe serve` in a child process and drives it over HTTP, as a user would:

- run-now → task running: from the run-now call to the first task's claim (its start_time), and to the
  first line of its user code;
- fan-out: one run of N parallel no-op tasks, against the same N processes started directly, all at once;
- dependent steps: one run of a chain of N no-op tasks, against the same N processes run one after another;
- the server's resident memory after those runs.

Overhead per task = (Floe's wall time - the direct baseline's) / N. Targets: fan-out ≤ 5 ms, dependent
step ≤ 10 ms, run-now → running ≤ 50 ms, `floe serve` ≤ 150 MB.

Usage: `.venv/bin/python -m bench.orchestration [--write]` (--write updates docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
NOOP = (
    "import os, time\n"
    "open(os.environ['BENCH_OUT'] + '/' + os.environ['FLOE_TASK_RUN_ID'], 'w').write(repr(time.time()))\n"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, workspace: Path, out: Path) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}/api/2.2"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")}
        env.update(
            FLOE_ADMIN_TOKEN=TOKEN, FLOE_WORKSPACE=str(workspace), BENCH_OUT=str(out), FLOE_WORKERS="4"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core", "serve", "--home", str(home), "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("floe serve did not start")
            time.sleep(0.02)

    def call(self, method: str, path: str, **kwargs: object) -> dict:
        response = self.http.request(method, f"{self.url}/{path}", **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()

    def create(self, tasks: list[dict]) -> int:
        return self.call(
            "POST", "jobs/create", json={"name": "bench", "tasks": tasks, "max_concurrent_runs": 100}
        )["job_id"]

    def run(self, job_id: int) -> tuple[float, dict]:
        """Run the job to its end; returns the wall time from run-now to the run's end_time, and the run."""
        started = time.time()
        run_id = self.call("POST", "jobs/run-now", json={"job_id": job_id})["run_id"]
        while True:
            run = self.call("GET", "jobs/runs/get", params={"run_id": run_id})
            if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                assert run["state"].get("result_state") == "SUCCESS", run["state"]
                return run["end_time"] / 1000 - started, run
            time.sleep(0.05)  # the run's end_time is the server's: polling slower only spares its CPU

    def zygote_rss_mb(self) -> float:
        """The resident memory of the server's fork server (`core.compute.forkserver`), 0 without one."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"core.compute.forkserver" in cmdline:
                status = (stat.parent / "status").read_text()
                return (
                    next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
                    / 1024
                )
        return 0.0

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return kb / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def task(key: str, deps: tuple[str, ...] = ()) -> dict:
    return {
        "task_key": key,
        "spark_python_task": {"python_file": "noop.py"},
        "depends_on": [{"task_key": d} for d in deps],
    }


def direct(n: int, *, parallel: bool, workspace: Path, out: Path) -> float:
    env = {**os.environ, "BENCH_OUT": str(out), "FLOE_TASK_RUN_ID": "direct"}
    argv = [sys.executable, "-u", str(workspace / "noop.py")]
    started = time.time()
    if parallel:
        for p in [subprocess.Popen(argv, env=env, cwd=workspace) for _ in range(n)]:
            p.wait()
    else:
        for _ in range(n):
            subprocess.run(argv, env=env, cwd=workspace, check=True)
    return time.time() - started


def measure(n_fan: int, n_chain: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace, out = root / "ws", root / "out"
        workspace.mkdir()
        out.mkdir()
        (workspace / "noop.py").write_text(NOOP)
        server = Server(root / "home", workspace, out)
        try:
            single = server.create([task("only")])
            fan = server.create([task(f"t{i}") for i in range(n_fan)])
            chain = server.create([task("t0")] + [task(f"t{i}", (f"t{i - 1}",)) for i in range(1, n_chain)])
            server.run(single)  # warm up
            to_claim, to_code = [], []
            for _ in range(repeats * 3):
                before = time.time()
                _, run = server.run(single)
                attempt = run["tasks"][0]
                to_claim.append(attempt["start_time"] / 1000 - before)
                to_code.append(float((out / str(attempt["run_id"])).read_text()) - before)
            fan_floe = min(server.run(fan)[0] for _ in range(repeats))
            chain_floe = min(server.run(chain)[0] for _ in range(repeats))
            rss = server.rss_mb()
            zygote_rss = server.zygote_rss_mb()
        finally:
            server.stop()
        fan_direct = min(direct(n_fan, parallel=True, workspace=workspace, out=out) for _ in range(repeats))
        chain_direct = min(
            direct(n_chain, parallel=False, workspace=workspace, out=out) for _ in range(repeats)
        )
    return {
        "run_now_to_claim_ms": statistics.median(to_claim) * 1000,
        "run_now_to_user_code_ms": statistics.median(to_code) * 1000,
        "fan_out_overhead_ms": (fan_floe - fan_direct) / n_fan * 1000,
        "chain_overhead_ms": (chain_floe - chain_direct) / n_chain * 1000,
        "fan_out_floe_s": fan_floe,
        "fan_out_direct_s": fan_direct,
        "chain_floe_s": chain_floe,
        "chain_direct_s": chain_direct,
        "serve_rss_mb": rss,
        "zygote_rss_mb": zygote_rss,
    }


def report(results: dict[str, float], n_fan: int, n_chain: int) -> str:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    r = results
    return "\n".join(
        [
            f"## Orchestration overhead (embedded default) — {datetime.now(UTC):%Y-%m-%d}",
            "",
            f"`python -m bench.orchestration --write` on {machine}.",
            "A process per task, every state persisted in SQLite. Python tasks fork from a warm zygote",
            "(`core/compute/forkserver.py`); the direct baseline starts an interpreter per task, so a",
            "negative overhead means Floe starts a task sooner than `python script.py` does.",
            "",
            "| measure | result | target |",
            "|---|---|---|",
            f"| run-now → task claimed (RUNNING), median | {r['run_now_to_claim_ms']:.1f} ms | ≤ 50 ms |",
            f"| run-now → first line of user code, median | {r['run_now_to_user_code_ms']:.1f} ms | |",
            f"| fan-out: overhead per task ({n_fan} parallel tasks: {r['fan_out_floe_s']:.2f} s vs "
            f"{r['fan_out_direct_s']:.2f} s direct) | {r['fan_out_overhead_ms']:.1f} ms | ≤ 5 ms |",
            f"| chain: overhead per dependent step ({n_chain} steps: {r['chain_floe_s']:.2f} s vs "
            f"{r['chain_direct_s']:.2f} s direct) | {r['chain_overhead_ms']:.1f} ms | ≤ 10 ms |",
            f"| `floe serve` resident memory after the runs | {r['serve_rss_mb']:.0f} MB | ≤ 150 MB |",
            f"| its fork server's resident memory (shared with its forks) | {r['zygote_rss_mb']:.0f} MB | |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fan", type=int, default=50)
    parser.add_argument("--chain", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    text = report(measure(args.fan, args.chain, args.repeats), args.fan, args.chain)
    print(text)
    if args.write:
        from bench import write_section

        write_section("Orchestration overhead", text)


if __name__ == "__main__":
    main()
