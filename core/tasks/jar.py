"""`spark_jar_task`: call the `main` of a class from the task's JAR libraries, through `spark-submit`.

The task is `{"main_class_name": str, "parameters": [str, ...]}` (`jar_uri` and `run_as_repl` are
deprecated: a `jar_uri` is used as one more JAR, first; `run_as_repl` is ignored); run-now `jar_params`
replaces `parameters`. Databricks puts every library JAR on the cluster's classpath and calls
`main_class_name.main(parameters)` in the driver. `spark-submit` needs one application JAR, so the
command is

    <spark-submit> --master MASTER [--conf k=v ...] --class MAIN [--jars JAR2,JAR3,...] JAR1 PARAMETERS...

with the first JAR as the application and the others (plus any `spark.jars` of `spark_conf`, e.g. from
`core.tasks.libraries.jvm_options`) on `--jars`; the class may live in any of them, since they share the
driver's classpath. Maven libraries reach the driver through `spark.jars.packages` in `spark_conf`. Master,
`--conf`, working directory and environment are those of `core.tasks.spark_submit`.

The JVM's exit status is the task's: `System.exit(n)` gives n, an uncaught exception gives 1. The
driver's stdout and stderr are the task's log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import InvalidParameterValue
from core.tasks.command import Command, locate_file, string_list
from core.tasks.spark_submit import spark_environment, spark_submit_prefix

__all__ = ["build_jar_command"]

_FIELD = "spark_jar_task"
_CLASS_NAME = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")


def build_jar_command(
    task: Mapping[str, Any],
    *,
    jars: Sequence[Path],
    master: str | None,
    spark_conf: Mapping[str, str] | None = None,
    workspace: Path | None = None,
    jar_params: Sequence[str] | None = None,
    spark_submit: str | None = None,
) -> Command:
    """The command for a resolved `spark_jar_task` dict; `jars` are the task's JAR libraries (absolute
    paths, `LibrarySet.jars`), `master` the cluster's master URL or None for `local[*]`.

    Raises InvalidParameterValue for a missing or malformed `main_class_name`, parameters that are not a
    list of strings, or a task without any JAR.
    """
    main_class = task.get("main_class_name")
    if not isinstance(main_class, str) or not main_class:
        raise InvalidParameterValue(f"{_FIELD}.main_class_name is required: the class whose main runs")
    if not _CLASS_NAME.match(main_class):
        raise InvalidParameterValue(
            f"{_FIELD}.main_class_name: {main_class!r} is not a Java class name (e.g. com.example.Main)"
        )
    if jar_params is not None:
        parameters = string_list(jar_params, "jar_params")
    else:
        parameters = string_list(task.get("parameters") or [], f"{_FIELD}.parameters")
    cwd = (workspace or Path.cwd()).absolute()
    all_jars = [str(p) for p in jars]
    if task.get("jar_uri"):
        all_jars.insert(0, str(locate_file(task["jar_uri"], field=f"{_FIELD}.jar_uri", workspace=cwd)))
    conf = dict(spark_conf or {})
    all_jars += [j for j in conf.pop("spark.jars", "").split(",") if j.strip()]
    all_jars = list(dict.fromkeys(all_jars))
    if not all_jars:
        raise InvalidParameterValue(
            f'{_FIELD}: no JAR to run {main_class}; add the JAR to the task\'s libraries as {{"jar": path}}'
        )
    app, *others = all_jars
    argv = [*spark_submit_prefix(master, conf, spark_submit=spark_submit), "--class", main_class]
    if others:
        argv += ["--jars", ",".join(others)]
    argv += [app, *parameters]
    env, unset = spark_environment(None)
    return Command(argv=argv, cwd=cwd, env=env, unset=unset)
