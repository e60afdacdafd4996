"""The local cluster provider: a cluster is real Spark processes on this host, started from the installed
`pyspark` package (Java 17+ required).

**Local mode** (the default): one JVM, a Spark Connect server whose master is `local[N]`:

    <pyspark>/bin/spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer
        --name floe-<cluster id> --master local[N]
        --conf spark.connect.grpc.binding.address=127.0.0.1 --conf spark.connect.grpc.binding.port=<free port>
        --conf spark.ui.enabled=false [--conf k=v for each spark_conf entry] spark-internal

This is what `sbin/start-connect-server.sh` runs, without its daemonising wrapper: pyspark 4 ships the
Connect server in `jars/spark-connect_2.13-*.jar`, already on spark-submit's classpath, and
`spark-internal` stands for "the application is on the classpath". `spark-submit` execs the JVM, so the
process Floe starts IS the driver. N is `num_workers` (or `autoscale.max_workers`; `num_workers: 0`, a
Databricks single-node cluster, means every core), between 1 and `os.cpu_count()`.

**Standalone mode** (`spark_conf["floe.cluster.mode"] = "standalone"`): a master
(`bin/spark-class org.apache.spark.deploy.master.Master --host 127.0.0.1 --port P --webui-port U`) and W
workers (`bin/spark-class org.apache.spark.deploy.worker.Worker spark://127.0.0.1:P --host 127.0.0.1
--cores C --memory M --webui-port U_i --work-dir <log_dir>/work`), W = the worker count capped at this host's
cores, C = cores // W (at least 1), M = `floe.worker.memory` (default 1g); the Connect server starts once
the master's `/json/` reports every worker ALIVE, with `--master spark://127.0.0.1:P`. Chosen only on
request because it costs a JVM per worker; `local[N]` uses the same cores with one JVM.

Keys `floe.*` of `spark_conf` are Floe's and not passed to Spark. `spark.ui.enabled` defaults to false;
when set true, the UI gets a free port and `ui_url`. `spark_env_vars` are added to the environment of every
process (with `SPARK_HOME`, `SPARK_LOCAL_IP=127.0.0.1` and `PYSPARK_PYTHON` = this interpreter unless given);
`custom_tags` mean nothing to Spark (the service records them).

Every process is started in its own session (`ProcessSupervisor`), so terminating kills each whole process
group, including executor JVMs a worker started. Logs: `driver.log`, `master.log`, `worker-<i>.log` in
`log_dir`.

Readiness: the Connect server opens its gRPC port only after its SparkSession exists, so the cluster is
ready when the port accepts a TCP connection. With `probe=True` the provider also runs
`spark.range(1).count()` in a child Python process through Spark Connect (a few seconds more; off by
default because the port check already implies a working session).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from core.compute.clusters import ClusterError, ClusterHandle, ClusterSpec
from core.compute.process import ProcessExit, ProcessHandle, ProcessSpec, ProcessSupervisor, process_alive

__all__ = ["LocalSparkProvider", "pyspark_home"]

CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
_LOG_TAIL_BYTES = 4000
_POLL_SECONDS = 0.1
_STRIPPED_ENV = ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE", "MASTER")


def pyspark_home() -> Path:
    """The installed pyspark package's folder: it is a SPARK_HOME (bin/, jars/)."""
    import importlib.util

    found = importlib.util.find_spec("pyspark")
    if found is None or found.origin is None:
        raise ClusterError("pyspark is not installed, so no local Spark cluster can be started.")
    return Path(found.origin).parent


class LocalSparkProvider:
    """`ClusterProvider` for Spark on this host. Thread-safe; one per Floe process (it owns one
    `ProcessSupervisor`, which reaps the cluster processes it started)."""

    def __init__(
        self,
        *,
        start_timeout: float = 180.0,
        probe: bool = False,
        spark_home: Path | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self._start_timeout = start_timeout
        self._probe = probe
        self._spark_home = spark_home
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._lock = threading.Lock()
        self._exits: dict[str, ProcessExit] = {}
        self._ended = threading.Condition(self._lock)
        self._supervisor: ProcessSupervisor | None = None

    # ------------------------------------------------------------------------------------------- port

    def create(
        self,
        cluster_id: str,
        spec: ClusterSpec,
        log_dir: Path,
        *,
        on_started: Callable[[ClusterHandle], None] | None = None,
    ) -> ClusterHandle:
        if spec.is_remote:
            return self.register_remote(cluster_id, spec)
        home = self._spark_home or pyspark_home()
        log_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment(home, spec)
        conf = dict(spec.spark_conf)
        standalone = conf.get("floe.cluster.mode", "local").lower() == "standalone"
        cores = os.cpu_count() or 1
        deadline = time.monotonic() + self._start_timeout
        started: list[ProcessHandle] = []
        master_url: str | None = None
        try:
            if standalone:
                workers = max(1, min(spec.workers or 1, cores))
                master_url, master_ui = self._start_standalone(
                    cluster_id, home, env, conf, workers, log_dir, started
                )
                self._notify(on_started, cluster_id, None, master_url, None, started, log_dir)
                self._wait_for_workers(cluster_id, started, master_ui, workers, log_dir, deadline)
                master = master_url
            else:
                threads = cores if spec.workers == 0 else max(1, min(spec.workers, cores))
                master = f"local[{threads}]"
            port = _free_port()
            ui_url = None
            argv = [
                str(home / "bin" / "spark-submit"),
                "--class",
                CONNECT_SERVER_CLASS,
                "--name",
                f"floe-{cluster_id}",
                "--master",
                master,
                "--conf",
                "spark.connect.grpc.binding.address=127.0.0.1",
                "--conf",
                f"spark.connect.grpc.binding.port={port}",
            ]
            if conf.get("spark.ui.enabled", "false").lower() == "true":
                ui_port = int(conf.get("spark.ui.port") or _free_port())
                conf["spark.ui.port"] = str(ui_port)
                ui_url = f"http://127.0.0.1:{ui_port}"
            else:
                conf["spark.ui.enabled"] = "false"
            for key, value in conf.items():
                if not key.startswith("floe."):
                    argv += ["--conf", f"{key}={value}"]
            argv.append("spark-internal")
            started.append(self._spawn(cluster_id, "driver", argv, env, log_dir))
            url = f"sc://127.0.0.1:{port}"
            self._notify(on_started, cluster_id, url, master_url, ui_url, started, log_dir)
            self._wait_for_port(cluster_id, started, port, log_dir, deadline)
            if self._probe:
                self._run_probe(cluster_id, url, log_dir, deadline)
        except BaseException:
            self._kill(started, grace_seconds=0)
            raise
        return ClusterHandle(cluster_id, url, master_url, ui_url, tuple(started), False, str(log_dir))

    def register_remote(self, cluster_id: str, spec: ClusterSpec) -> ClusterHandle:
        if not spec.is_remote:
            raise ValueError(f"cluster {cluster_id}: the spec names no spark_connect_url or master_url")
        return ClusterHandle(cluster_id, spec.spark_connect_url, spec.master_url, remote=True)

    def is_alive(self, handle: ClusterHandle) -> bool:
        if handle.remote:
            return True
        return bool(handle.processes) and all(process_alive(p) for p in handle.processes)

    def terminate(self, handle: ClusterHandle, *, grace_seconds: float = 10) -> None:
        if not handle.remote:
            self._kill(list(handle.processes), grace_seconds=grace_seconds)

    def close(self) -> None:
        """Stop watching; processes still running are left alone (their records let `reap` find them)."""
        with self._lock:
            supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.close(kill=False)

    # ------------------------------------------------------------------------------------------- processes

    def _environment(self, home: Path, spec: ClusterSpec) -> dict[str, str]:
        env = {k: v for k, v in self._base_env.items() if k not in _STRIPPED_ENV}
        env["SPARK_HOME"] = str(home)
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        env["PYSPARK_PYTHON"] = sys.executable
        env.update(spec.spark_env_vars)
        return env

    def _supervisor_locked(self) -> ProcessSupervisor:
        if self._supervisor is None:
            self._supervisor = ProcessSupervisor(self._on_exit, name="floe-cluster-watcher")
        return self._supervisor

    def _on_exit(self, ended: ProcessExit) -> None:
        with self._lock:
            self._exits[ended.key] = ended
            self._ended.notify_all()

    def _spawn(
        self, cluster_id: str, role: str, argv: list[str], env: dict[str, str], log_dir: Path
    ) -> ProcessHandle:
        key = f"cluster:{cluster_id}:{role}"
        with self._lock:
            self._exits.pop(key, None)
            supervisor = self._supervisor_locked()
        try:
            return supervisor.start(ProcessSpec(key, argv, log_dir, env, log_dir / f"{role}.log"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ClusterError(f"Cluster {cluster_id}: cannot start the Spark {role}: {exc}") from exc

    def _exited(self, handle: ProcessHandle) -> ProcessExit | None:
        with self._lock:
            return self._exits.get(handle.key)

    def _kill(self, handles: list[ProcessHandle], *, grace_seconds: float) -> None:
        """SIGTERM every group, SIGKILL what is left after the grace, and wait until all are gone."""
        with self._lock:
            supervisor = self._supervisor
        mine = [h for h in handles if supervisor is not None and supervisor.is_running(h.key)]
        foreign = [h for h in handles if h not in mine and process_alive(h)]
        for handle in mine:
            assert supervisor is not None
            supervisor.kill(handle.key, grace_seconds=grace_seconds)
        for handle in foreign:  # started by an earlier Floe process: not our children, signal the groups
            _killpg(handle.pgid, signal.SIGTERM if grace_seconds > 0 else signal.SIGKILL)
        deadline = time.monotonic() + max(grace_seconds, 0) + 10
        killed_foreign = grace_seconds <= 0
        while True:
            left = [h for h in mine if supervisor is not None and supervisor.is_running(h.key)]
            left += [h for h in foreign if process_alive(h)]
            if not left:
                with self._lock:
                    for handle in handles:
                        self._exits.pop(handle.key, None)
                return
            now = time.monotonic()
            if not killed_foreign and now >= deadline - 10:
                killed_foreign = True
                for handle in foreign:
                    _killpg(handle.pgid, signal.SIGKILL)
            if now >= deadline:
                raise ClusterError(f"processes {[h.pid for h in left]} did not end after SIGKILL")
            time.sleep(_POLL_SECONDS)

    # ------------------------------------------------------------------------------------------- start-up

    def _start_standalone(
        self,
        cluster_id: str,
        home: Path,
        env: dict[str, str],
        conf: Mapping[str, str],
        workers: int,
        log_dir: Path,
        started: list[ProcessHandle],
    ) -> tuple[str, str]:
        """Start the master and the workers; returns the master URL and the master's JSON status URL."""
        spark_class = str(home / "bin" / "spark-class")
        port, ui_port = _free_port(), _free_port()
        master_argv = [spark_class, MASTER_CLASS, "--host", "127.0.0.1", "--port", str(port)]
        started.append(
            self._spawn(cluster_id, "master", [*master_argv, "--webui-port", str(ui_port)], env, log_dir)
        )
        master_url = f"spark://127.0.0.1:{port}"
        cores = max(1, (os.cpu_count() or 1) // workers)
        memory = conf.get("floe.worker.memory", "1g")
        work_dir = log_dir / "work"
        for i in range(workers):
            argv = [
                spark_class,
                WORKER_CLASS,
                master_url,
                "--host",
                "127.0.0.1",
                "--cores",
                str(cores),
                "--memory",
                memory,
                "--webui-port",
                str(_free_port()),
                "--work-dir",
                str(work_dir),
            ]
            started.append(self._spawn(cluster_id, f"worker-{i}", argv, env, log_dir))
        return master_url, f"http://127.0.0.1:{ui_port}/json/"

    def _wait_for_workers(
        self,
        cluster_id: str,
        started: list[ProcessHandle],
        ui: str,
        workers: int,
        log_dir: Path,
        deadline: float,
    ) -> None:
        while True:
            self._check_running(cluster_id, started, log_dir)
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(ui, timeout=2) as reply:
                    state = json.loads(reply.read())
                alive = sum(1 for w in state.get("workers", ()) if w.get("state") == "ALIVE")
                if alive >= workers:
                    return
            self._check_deadline(cluster_id, deadline, log_dir, f"{workers} worker(s) to register")
            time.sleep(0.25)

    def _wait_for_port(
        self, cluster_id: str, started: list[ProcessHandle], port: int, log_dir: Path, deadline: float
    ) -> None:
        while True:
            self._check_running(cluster_id, started, log_dir)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                pass
            self._check_deadline(cluster_id, deadline, log_dir, f"the Spark Connect port {port}")
            with self._lock:
                self._ended.wait(_POLL_SECONDS)

    def _check_running(self, cluster_id: str, started: list[ProcessHandle], log_dir: Path) -> None:
        for handle in started:
            ended = self._exited(handle)
            if ended is not None:
                role = handle.key.rsplit(":", 1)[-1]
                raise ClusterError(
                    f"Cluster {cluster_id}: the Spark {role} {ended.describe()} while starting.\n"
                    + log_tail(log_dir / f"{role}.log")
                )

    def _check_deadline(self, cluster_id: str, deadline: float, log_dir: Path, what: str) -> None:
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"Cluster {cluster_id}: gave up waiting for {what} after {self._start_timeout:g} s.\n"
                + log_tail(log_dir / "driver.log", log_dir / "master.log")
            )

    def _run_probe(self, cluster_id: str, url: str, log_dir: Path, deadline: float) -> None:
        code = (
            "from pyspark.sql import SparkSession as S; assert S.builder.getOrCreate().range(1).count() == 1"
        )
        env = {k: v for k, v in self._base_env.items() if k not in _STRIPPED_ENV}
        env["SPARK_REMOTE"] = url
        try:
            done = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                capture_output=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"Cluster {cluster_id}: the Spark Connect probe timed out.") from exc
        if done.returncode != 0:
            raise ClusterError(
                f"Cluster {cluster_id}: spark.range(1).count() through {url} failed:\n"
                + done.stderr.decode(errors="replace")[-_LOG_TAIL_BYTES:]
                + "\n"
                + log_tail(log_dir / "driver.log")
            )

    @staticmethod
    def _notify(
        on_started: Callable[[ClusterHandle], None] | None,
        cluster_id: str,
        url: str | None,
        master_url: str | None,
        ui_url: str | None,
        started: list[ProcessHandle],
        log_dir: Path,
    ) -> None:
        if on_started is not None:
            on_started(
                ClusterHandle(cluster_id, url, master_url, ui_url, tuple(started), False, str(log_dir))
            )


def log_tail(*paths: Path, limit: int = _LOG_TAIL_BYTES) -> str:
    """The last `limit` bytes of each existing log, whole lines only, each under a header."""
    parts = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - limit))
                data = f.read()
        except OSError:
            continue
        text = data.decode(errors="replace")
        if len(data) >= limit and "\n" in text:
            text = text[text.index("\n") + 1 :]
        parts.append(f"--- last lines of {path.name} ---\n{text.rstrip()}")
    return "\n".join(parts) if parts else "(no Spark log was written)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
