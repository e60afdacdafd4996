"""Task attempts that run as child processes of this host, and how their end is reported.

`TaskExecutor.launch` turns a claimed task attempt into a process (through the module of its task type)
and returns at once; the supervisor's watcher notices the exit, the log is shipped to its blob, and
`on_ended` is called from a small thread pool with the attempt's `Outcome`. Killing is by task run id;
the reason given to `kill` (CANCELED or TIMEDOUT) becomes the attempt's result.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.compute.logs import TAIL_BYTES, LogShipper, read_tail
from core.compute.process import ProcessExit, ProcessHandle, ProcessSpec, ProcessSupervisor, process_alive
from core.engine.states import Result, TerminationCode, task_type
from core.errors import InvalidParameterValue
from core.store import BlobStore
from core.tasks import python_script
from core.tasks.command import Command
from core.tasks.jar import build_jar_command
from core.tasks.libraries import ensure_python_env, jvm_options, resolve_libraries
from core.tasks.notebook import locate_notebook, notebook_argv
from core.tasks.runtime.bootstrap import python_bootstrap_argv
from core.tasks.runtime.host import TaskOutputs, read_outputs, write_inputs
from core.tasks.runtime.protocol import TASK_DIR_ENV
from core.tasks.runtime.spark import PYFILES_ENV
from core.tasks.spark_submit import build_spark_submit_command
from core.tasks.sql import build_sql_command, read_sql_output
from core.tasks.wheel import build_wheel_command
from core.telemetry import libraries_span

log = logging.getLogger("floe.executor")

_FLOE_ROOT = str(Path(__file__).resolve().parents[1])  # so task processes can import core.tasks.runtime
_TRACEBACK = re.compile(rb"^Traceback \(most recent call last\):$", re.MULTILINE)


_KILLED = {Result.CANCELED: "The task was canceled.", Result.TIMEDOUT: "The task timed out."}


def log_blob(run_id: int, task_run_id: int) -> str:
    return f"logs/{run_id}/{task_run_id}.log"


def trace_blob(run_id: int, task_run_id: int) -> str:
    return f"logs/{run_id}/{task_run_id}.error_trace"


def exit_blob(run_id: int, task_run_id: int) -> str:
    return f"outputs/{run_id}/{task_run_id}/exit.txt"


def sql_blob(run_id: int, task_run_id: int) -> str:
    return f"outputs/{run_id}/{task_run_id}/sql_output.json"


def read_sql(blobs: BlobStore, run_id: int, task_run_id: int) -> dict[str, Any] | None:
    blob = blobs.get(sql_blob(run_id, task_run_id))
    return None if blob is None else json.loads(blob.data)


def notebook_blob(run_id: int, task_run_id: int) -> str:
    return f"outputs/{run_id}/{task_run_id}/executed.ipynb"


def site_packages_zip(python: Path) -> Path:
    """The packages a library environment installed, as one zip its cluster's executors can import from
    (pure-Python packages; compiled extensions cannot be imported from a zip). Made once per environment,
    which is immutable once published."""
    env = python.parent.parent
    target = env / "floe-site-packages.zip"
    if target.exists():
        return target
    site = next(env.glob("lib/python*/site-packages"))
    partial = env / f".floe-site-packages.{os.getpid()}.{threading.get_ident()}.zip"
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(site.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pth":
                archive.write(path, path.relative_to(site))
    os.replace(partial, target)
    return target


def _with_floe_root(pythonpath: str | None) -> str:
    """A PYTHONPATH that finds Floe's task runtime first, then what it had."""
    return os.pathsep.join(filter(None, [_FLOE_ROOT, pythonpath]))


def _with_env(extra: Mapping[str, str], command: Command) -> Command:
    return dataclasses.replace(command, env={**command.env, **extra}) if extra else command


def _strings(mapping: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (mapping or {}).items()}


@dataclass(frozen=True, slots=True)
class Outcome:
    run_id: int
    task_run_id: int
    result: Result
    message: str = ""
    code: TerminationCode | None = None
    exit_code: int | None = None
    values: dict[str, Any] | None = None  # task values the attempt set


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything `launch` needs about one attempt; parameters are already resolved."""

    job_id: int
    run_id: int
    task_run_id: int
    task_key: str
    attempt: int
    task: Mapping[str, Any]  # the task's settings from the run's spec
    overriding: Mapping[str, Any]  # legacy run-now parameter maps
    job_parameters: Mapping[str, str] = field(default_factory=dict)
    upstream_values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cluster_env: Mapping[str, str] = field(default_factory=dict)  # SPARK_REMOTE of the task's cluster
    traceparent: str | None = None  # W3C context of the attempt's span: TRACEPARENT of the process
    tracestate: str | None = None


class TaskExecutor:
    def __init__(
        self,
        *,
        home: Path,
        workspace: Path,
        python: str,
        blobs: BlobStore,
        on_ended: Callable[[Outcome], None],
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.workspace = workspace
        self.python = python
        self.blobs = blobs
        self.on_ended = on_ended
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.shipper = LogShipper(blobs)
        self._reasons: dict[str, Result] = {}
        self._runs: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="floe-task-exit")
        self.supervisor = ProcessSupervisor(self._exited)
        # Python scripts on Floe's own interpreter fork from a warm zygote (core.compute.forkserver).
        zygote_env = {
            **self.base_env,
            "PYTHONPATH": _with_floe_root(self.base_env.get("PYTHONPATH")),
        }
        self.supervisor.use_fork_server(python, zygote_env)
        self._registry = home / "running"
        self._kill_orphans()

    def launch(self, launch: Launch) -> None:
        """Start the attempt's process. Raises InvalidParameterValue when the task cannot run as given
        (unsupported type, missing file) and LibraryInstallError when its libraries do not install: the
        caller ends the attempt FAILED with that message. Installing libraries the first time blocks
        (a cached environment is reused after)."""
        command, widgets = self._command(launch)
        task_dir = self.home / "tasks" / str(launch.run_id) / str(launch.task_run_id)
        task_dir.mkdir(parents=True, exist_ok=True)
        write_inputs(
            task_dir,
            widgets=widgets,
            job_parameters=launch.job_parameters,
            task_key=launch.task_key,
            run_id=launch.run_id,
            job_id=launch.job_id,
            upstream_values=launch.upstream_values,
        )
        env = python_script.task_environment(
            self.base_env,
            job_id=launch.job_id,
            run_id=launch.run_id,
            task_run_id=launch.task_run_id,
            task_key=launch.task_key,
            attempt=launch.attempt,
            workspace=self.workspace,
            traceparent=launch.traceparent,
            tracestate=launch.tracestate,
        )
        env.update(launch.cluster_env)
        env[TASK_DIR_ENV] = str(task_dir)
        env["PYTHONPATH"] = _with_floe_root(env.get("PYTHONPATH"))
        env = command.environment(env)
        argv, cwd = command.argv, command.cwd
        key = str(launch.task_run_id)
        log_path = self.home / "logs" / str(launch.run_id) / f"{launch.task_run_id}.log"
        spec = ProcessSpec(key=key, argv=argv, cwd=cwd, env=env, log_path=log_path)
        self.shipper.expect_new(log_blob(launch.run_id, launch.task_run_id))
        with self._lock:  # a kill that came between the claim and now wins: the process never starts
            reason = self._reasons.pop(key, None)
            if reason is None:
                self._runs[key] = launch.run_id
                handle = self.supervisor.start(spec)
                self._registry.mkdir(parents=True, exist_ok=True)
                (self._registry / f"{key}.json").write_text(handle.to_json())
        if reason is not None:
            shutil.rmtree(task_dir, ignore_errors=True)
            stopped = Outcome(launch.run_id, launch.task_run_id, reason, "Stopped before it started.")
            self._pool.submit(self.on_ended, stopped)

    def _command(self, launch: Launch) -> tuple[Command, dict[str, str]]:
        """The command of an attempt, by task type, and the widgets a notebook reads."""
        task, overriding, workspace = launch.task, launch.overriding, self.workspace
        kind = task_type(task)
        libraries = resolve_libraries(task.get("libraries") or [], workspace=workspace)
        python = self.python
        if libraries.has_python:
            with libraries_span(
                job_id=launch.job_id,
                run_id=launch.run_id,
                task_key=launch.task_key,
                task_run_id=launch.task_run_id,
                traceparent=launch.traceparent,
            ):
                built = ensure_python_env(libraries, cache_dir=self.home / "envs", base_python=self.python)
            python = str(built)
        master = launch.cluster_env.get("FLOE_SPARK_MASTER")
        conf = jvm_options(libraries)
        shipped = [str(w) for w in libraries.wheels]
        if (libraries.pypi or libraries.requirements) and launch.cluster_env.get("SPARK_REMOTE"):
            shipped.append(str(site_packages_zip(Path(python))))
        pyfiles = {PYFILES_ENV: os.pathsep.join(shipped)} if shipped else {}
        settings = task.get(kind or "") or {}
        if kind == "spark_python_task":
            script = python_script.build_command(
                settings, python=python, workspace=workspace, python_params=overriding.get("python_params")
            )
            argv = python_bootstrap_argv(python, script.script, script.argv[3:])
            return Command(argv, script.cwd, env=pyfiles), {}
        if kind == "notebook_task":
            path = locate_notebook(
                str(settings.get("notebook_path", "")),
                workspace=workspace,
                git=settings.get("source") == "GIT",
            )
            # A job parameter beats a base parameter of the same name; run-now notebook_params beat both.
            widgets = {
                **_strings(settings.get("base_parameters")),
                **launch.job_parameters,
                **_strings(overriding.get("notebook_params")),
            }
            return Command(notebook_argv(python, path), workspace.absolute(), env=pyfiles), widgets
        if kind == "python_wheel_task":
            return _with_env(
                pyfiles,
                build_wheel_command(
                    settings,
                    python=python,
                    workspace=workspace,
                    job_parameters=launch.job_parameters,
                    python_params=overriding.get("python_params"),
                    python_named_params=overriding.get("python_named_params"),
                ),
            ), {}
        if kind == "spark_jar_task":
            return build_jar_command(
                settings,
                jars=list(libraries.jars),
                master=master,
                spark_conf=conf,
                workspace=workspace,
                jar_params=overriding.get("jar_params"),
            ), {}
        if kind == "spark_submit_task":
            return build_spark_submit_command(
                settings,
                workspace=workspace,
                master=master,
                spark_conf=conf,
                python=python,
                spark_submit_params=overriding.get("spark_submit_params"),
            ), {}
        if kind == "sql_task":
            return _with_env(
                pyfiles,
                build_sql_command(
                    settings,
                    python=python,
                    workspace=workspace,
                    job_parameters=launch.job_parameters,
                    sql_params=overriding.get("sql_params"),
                ),
            ), {}
        raise InvalidParameterValue(
            f"task {launch.task_key!r}: {kind or 'a task without a type'} cannot run on this host; "
            "supported: spark_python_task, notebook_task, python_wheel_task, spark_jar_task, "
            "spark_submit_task, sql_task"
        )

    def kill(self, task_run_id: int, reason: str) -> bool:
        """Stop an attempt of this host, or make sure it never starts if its launch is still to come.
        Returns at once; the attempt's end is reported through `on_ended` with `reason` as its result."""
        key = str(task_run_id)
        with self._lock:
            self._reasons[key] = Result(reason)
            return self.supervisor.kill(key)

    def ship_running_logs(self) -> None:
        """Copy what the running attempts wrote since the last call to their log blobs, so hosts that do
        not share this one's disk (the dispatchers of a runner) show it in get-output while they run.
        Costs a storage call only for a log that grew."""
        with self._lock:
            running = list(self._runs.items())
        for key, run_id in running:
            path = self.home / "logs" / str(run_id) / f"{key}.log"
            try:
                self.shipper.ship(path, log_blob(run_id, int(key)))
            except Exception:
                log.exception("could not ship the log of running task run %s", key)

    def running_count(self) -> int:
        """How many attempts of this host have a process (or are about to)."""
        with self._lock:
            return len(self._runs)

    def is_running(self, task_run_id: int) -> bool:
        return self.supervisor.is_running(str(task_run_id))

    def close(self) -> None:
        self.supervisor.close(kill=True)
        self._pool.shutdown(wait=True)

    def _kill_orphans(self) -> None:
        """Kill the task processes an earlier Floe on this home left running when it died: their attempts
        are marked lost by `tick` (their host stopped its heartbeat), so nothing will ever read them.
        Each running process is recorded in `<home>/running/` while it runs; a process is only killed when
        it is still the same process (pid and start time)."""
        for record in sorted(self._registry.glob("*.json")) if self._registry.exists() else []:
            try:
                handle = ProcessHandle.from_json(record.read_text())
            except (OSError, ValueError):
                record.unlink(missing_ok=True)
                continue
            if process_alive(handle):
                log.warning(
                    "killing task process %s (task run %s) left by an earlier Floe", handle.pid, handle.key
                )
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(handle.pgid, sig)
                    except (ProcessLookupError, PermissionError):
                        break
                    if sig is signal.SIGTERM:
                        time.sleep(0.5)  # a grace for its clean-up, once per orphan at start-up only
            record.unlink(missing_ok=True)

    def _exited(self, exit: ProcessExit) -> None:
        # Runs on the supervisor's watcher thread: hand the slow part (blob writes, storage) to the pool.
        self._pool.submit(self._finish, exit)

    def _finish(self, exit: ProcessExit) -> None:
        with self._lock:
            run_id = self._runs.pop(exit.key)
            reason = self._reasons.pop(exit.key, None)
        (self._registry / f"{exit.key}.json").unlink(missing_ok=True)
        task_run_id = int(exit.key)
        task_dir = self.home / "tasks" / str(run_id) / str(task_run_id)
        outputs = read_outputs(task_dir)
        values = outputs.values or None
        try:
            self._keep_outputs(run_id, task_run_id, outputs)
        except Exception:
            log.exception("could not keep the outputs of task run %s", task_run_id)
        if exit.killed and reason is not None:
            outcome = Outcome(
                run_id,
                task_run_id,
                reason,
                _KILLED.get(reason, f"The task ended {reason.value}."),
                exit_code=exit.exit_code,
                values=values,
            )
        elif exit.exit_code == 0:
            outcome = Outcome(run_id, task_run_id, Result.SUCCESS, exit_code=0, values=values)
        else:
            message = outputs.error or self._error_from_log(exit, run_id, task_run_id)
            outcome = Outcome(
                run_id,
                task_run_id,
                Result.FAILED,
                message,
                TerminationCode.RUN_EXECUTION_ERROR,
                exit.exit_code,
                values,
            )
        try:
            self.on_ended(outcome)
        except Exception:
            log.exception("could not record the end of task run %s", task_run_id)
        # The log ships after the end is recorded, off the critical path to the next task; get-output
        # reads the local file until the blob is there.
        try:
            self.shipper.ship(exit.log_path, log_blob(run_id, task_run_id))
            self.shipper.forget(log_blob(run_id, task_run_id))
        except Exception:
            log.exception("could not ship the log of task run %s", task_run_id)
        shutil.rmtree(task_dir, ignore_errors=True)

    def _keep_outputs(self, run_id: int, task_run_id: int, outputs: TaskOutputs) -> None:
        """Copy what the task left in its folder to blobs: exit value, executed notebook, error trace."""
        if outputs.exit_result is not None:
            self.blobs.put(exit_blob(run_id, task_run_id), outputs.exit_result.encode())
        if outputs.executed_notebook is not None and outputs.executed_notebook.exists():
            self.blobs.put(notebook_blob(run_id, task_run_id), outputs.executed_notebook.read_bytes())
        if outputs.error_trace:
            self.blobs.put(trace_blob(run_id, task_run_id), outputs.error_trace.encode())
        sql_output = read_sql_output(self.home / "tasks" / str(run_id) / str(task_run_id))
        if sql_output is not None:
            self.blobs.put(sql_blob(run_id, task_run_id), json.dumps(sql_output).encode())

    def _error_from_log(self, exit: ProcessExit, run_id: int, task_run_id: int) -> str:
        """The error a user wants first: the last line of a Python traceback if there is one (its whole
        text is kept as the error trace), else how the process ended."""
        try:
            with open(exit.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 256 * 1024))
                tail = f.read()
        except OSError:
            return f"Task process {exit.describe()}"
        matches = list(_TRACEBACK.finditer(tail))
        if not matches:
            return f"Task process {exit.describe()}"
        trace = tail[matches[-1].start() :].decode("utf-8", "replace").rstrip()
        try:
            self.blobs.put(trace_blob(run_id, task_run_id), trace.encode())
        except Exception:
            log.exception("could not store the error trace of task run %s", task_run_id)
        last = trace.splitlines()[-1].strip() if trace else ""
        return last or f"Task process {exit.describe()}"


def read_logs(blobs: BlobStore, home: Path, run_id: int, task_run_id: int) -> tuple[str | None, bool]:
    """The last 5 MB of an attempt's output: from its blob once shipped, from the local file while it runs."""
    blob = log_blob(run_id, task_run_id)
    if blobs.stat(blob) is not None:
        return read_tail(blobs, blob)
    local = home / "logs" / str(run_id) / f"{task_run_id}.log"
    if local.exists():
        data = local.read_bytes()[-5 * 1024 * 1024 :]
        return data.decode("utf-8", "replace"), local.stat().st_size > len(data)
    return None, False


def read_trace(blobs: BlobStore, run_id: int, task_run_id: int) -> str | None:
    blob = blobs.get(trace_blob(run_id, task_run_id))
    return None if blob is None else blob.data.decode("utf-8", "replace")


def read_exit(blobs: BlobStore, run_id: int, task_run_id: int) -> dict[str, Any] | None:
    """`notebook_output`: the value given to dbutils.notebook.exit, its first 5 MB."""
    blob = blobs.get(exit_blob(run_id, task_run_id), length=TAIL_BYTES + 1)
    if blob is None:
        return None
    truncated = len(blob.data) > TAIL_BYTES
    return {"result": blob.data[:TAIL_BYTES].decode("utf-8", "ignore"), "truncated": truncated}
