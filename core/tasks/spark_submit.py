"""`spark_submit_task`: run `spark-submit` with the task's own argument list.

The task is `{"parameters": [str, ...]}`: everything after `spark-submit`, e.g. `["--class", "x.Main",
"app.jar", "arg"]` or `["--py-files", "lib.zip", "job.py", "arg"]`; run-now `spark_submit_params`
replaces it. The command is

    <spark-submit> --master MASTER [--conf k=v ...] PARAMETERS...

run in the workspace root (relative paths in `--jars`, `--py-files`, `--files` resolve there):

- `<spark-submit>`: `$SPARK_HOME/bin/spark-submit`, else the one in this interpreter's pyspark package.
- MASTER: the cluster's master URL (`FLOE_SPARK_MASTER` of the task, `spark://...` or `local[N]`), or
  `local[*]` without a cluster. Databricks does not let a task choose where it runs, so `--master`,
  `--deploy-mode` and `--remote` (also as `--conf spark.master=...`, `spark.submit.deployMode`,
  `spark.remote`) are rejected in the parameters.
- `--conf`: the cluster's `spark_conf` (and the libraries' `jvm_options`), before the parameters so the
  task's own `--conf` wins; `spark.ui.enabled=false` is added for a `local` master unless set.
- The application (the first argument that is not an option or an option's value) is located like a
  Python file (`core.tasks.command.locate_file`; `dbfs:/` and other remote URIs are rejected) and
  passed as an absolute path; arguments after it belong to the application and are not inspected.

The environment drops `SPARK_REMOTE` (spark-submit refuses a master together with a remote) and sets
`PYSPARK_PYTHON` / `PYSPARK_DRIVER_PYTHON` to the task's interpreter, so a PySpark application and its
UDFs run where the task's libraries are installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from core.errors import InvalidParameterValue
from core.tasks.command import Command, locate_file, spark_submit_executable, string_list

__all__ = ["DEFAULT_MASTER", "build_spark_submit_command", "spark_environment", "spark_submit_prefix"]

DEFAULT_MASTER = "local[*]"
_FIELD = "spark_submit_task"
# spark-submit options that take no value (SparkSubmitOptionParser's switches).
_SWITCHES = frozenset({"--help", "-h", "--supervise", "--usage-error", "--verbose", "-v", "--version"})
_FORBIDDEN = ("--master", "--deploy-mode", "--remote")
_FORBIDDEN_CONF = ("spark.master", "spark.submit.deployMode", "spark.remote")
_CONF_OPTIONS = ("--conf", "-c")
_UNSET = frozenset({"SPARK_REMOTE"})


def spark_submit_prefix(
    master: str | None, spark_conf: Mapping[str, str], *, spark_submit: str | None = None
) -> list[str]:
    """`[spark-submit, --master, MASTER, --conf, k=v, ...]` as described in the module docstring."""
    master = master or DEFAULT_MASTER
    conf = {str(k): str(v) for k, v in spark_conf.items()}
    for key in _FORBIDDEN_CONF:
        conf.pop(key, None)  # the master is chosen here, not by the cluster's configuration
    if master.startswith("local") and "spark.ui.enabled" not in conf:
        conf["spark.ui.enabled"] = "false"
    argv = [spark_submit or spark_submit_executable(), "--master", master]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return argv


def spark_environment(python: str | None) -> tuple[dict[str, str], frozenset[str]]:
    """(env entries, names to unset) of a spark-submit process."""
    env = {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python} if python else {}
    return env, _UNSET


def build_spark_submit_command(
    task: Mapping[str, object],
    *,
    workspace: Path,
    master: str | None,
    spark_conf: Mapping[str, str] | None = None,
    python: str | None = None,
    spark_submit_params: Sequence[str] | None = None,
    spark_submit: str | None = None,
) -> Command:
    """The command for a resolved `spark_submit_task` dict (rules in the module docstring).

    Raises InvalidParameterValue for parameters that are not a list of strings, hold `--master`,
    `--deploy-mode` or `--remote`, or name no application, or an application that cannot be found.
    """
    if spark_submit_params is not None:
        field = "spark_submit_params"
        parameters = string_list(spark_submit_params, field)
    else:
        field = f"{_FIELD}.parameters"
        parameters = string_list(task.get("parameters") or [], field)
    parameters = _with_application(parameters, field=field, workspace=workspace)
    env, unset = spark_environment(python)
    argv = [*spark_submit_prefix(master, spark_conf or {}, spark_submit=spark_submit), *parameters]
    return Command(argv=argv, cwd=workspace.absolute(), env=env, unset=unset)


def _with_application(parameters: list[str], *, field: str, workspace: Path) -> list[str]:
    """`parameters` with the application made an absolute path, after checking the options before it."""
    i = 0
    while i < len(parameters):
        arg = parameters[i]
        if not arg.startswith("-") or arg == "-":
            resolved = locate_file(arg, field=f"{field}[{i}]", workspace=workspace)
            return [*parameters[:i], str(resolved), *parameters[i + 1 :]]
        option, eq, inline = arg.partition("=")
        if option in _FORBIDDEN:
            raise InvalidParameterValue(
                f"{field}[{i}]: {option} cannot be set; Floe runs the task on its cluster's master"
            )
        if option in _SWITCHES:
            i += 1
            continue
        if eq:
            value = inline
        elif i + 1 < len(parameters):
            value = parameters[i + 1]
        else:
            raise InvalidParameterValue(f"{field}[{i}]: {option} needs a value")
        if option in _CONF_OPTIONS and value.partition("=")[0].strip() in _FORBIDDEN_CONF:
            raise InvalidParameterValue(
                f"{field}[{i}]: {value.partition('=')[0].strip()} cannot be set; "
                "Floe runs the task on its cluster's master"
            )
        i += 1 if eq else 2
    raise InvalidParameterValue(
        f"{field}: no application found; give the path of a .jar or .py file after the options"
    )
