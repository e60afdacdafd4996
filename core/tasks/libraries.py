"""Task libraries: validate a task's `libraries`, build its Python environment, wire its JVM libraries.

`resolve_libraries` checks every entry and finds local files (`whl`, `jar`, `requirements`) with the path
rules of `core.tasks.command.locate_file` (those of `spark_python_task.python_file`). Supported:
`{"whl": path}`, `{"pypi": {"package": spec, "repo"?: index URL}}`, `{"requirements": path}`,
`{"jar": path}`, `{"maven": {"coordinates": "group:artifact:version", "repo"?: URL, "exclusions"?:
["group:artifact", ...]}}`. `egg` and `cran` are not supported; any other key is an error.

## Python environments (`ensure_python_env`)

A task with Python libraries runs in a virtual environment of its own, shared by every task with the same
library set and kept in `cache_dir`:

- **Key.** The SHA-256 of the base interpreter's path and of the set: each wheel by file name and content
  hash, each pypi spec and repo, each requirements file by content hash, in the order given. Files that
  a requirements file itself refers to (`-r other.txt`, local wheels) are not hashed: change the
  requirements file to get a new environment.
- **Base packages stay visible.** The environment is made with `python -m venv --system-site-packages
  --without-pip` and a `_floe_base.pth` that adds the base interpreter's own site-packages with
  `site.addsitedir` (so their `.pth` files, e.g. an editable install of Floe, work too): pyspark, pip and
  Floe's runtime stay importable. `--system-site-packages` alone is not
  enough when the base interpreter is itself a venv: it exposes the site-packages of the interpreter the
  venv was made from, not the venv's. Packages installed in the environment come first on `sys.path`,
  so a library pinning another version of a base package wins. pip runs as `<env python> -m pip`, using
  the base's pip through the `.pth` (no `ensurepip`: it costs seconds).
- **pip runs.** In order: every wheel, pypi spec without repo and `-r requirements` in one `pip install`;
  then one `pip install --index-url REPO ...` per distinct pypi `repo` (pip takes one index per call).
- **Publish.** The environment is built in `<cache_dir>/<key>.<random>/` and published by atomically
  replacing the symlink `<cache_dir>/<key>` with one pointing at it. A venv is not relocatable (scripts
  and `pyvenv.cfg` hold absolute paths), hence the symlink rather than a rename of the folder.
  Builders of one key are serialised by `fcntl.flock` on `<cache_dir>/<key>.lock`: a second caller waits,
  then finds the link and reuses the environment without running pip. Half-built folders left by a
  crashed builder are removed by the next builder of that key.
- **Failure.** A failed `venv` or `pip install` raises `LibraryInstallError` with pip's combined output;
  nothing is published, so the next attempt builds again.

## JVM libraries (`jvm_options`)

JARs and Maven coordinates become Spark configuration: `spark.jars`, `spark.jars.packages`,
`spark.jars.repositories` and `spark.jars.excludes`. Nothing is downloaded here; Spark resolves Maven
coordinates (through Ivy) when the driver starts.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import FloeError, InvalidParameterValue
from core.tasks.command import locate_file

__all__ = [
    "LibraryInstallError",
    "LibrarySet",
    "MavenLibrary",
    "PyPILibrary",
    "ensure_python_env",
    "environment_key",
    "jvm_options",
    "resolve_libraries",
]

_FIELD = "libraries"
_UNSUPPORTED = {"egg": "egg libraries are deprecated", "cran": "R is not available on Floe"}
_KEYS = ("whl", "pypi", "requirements", "jar", "maven")
_COORDINATES = re.compile(r"^[^:\s,]+:[^:\s,]+:[^:\s,]+$")
_EXCLUSION = re.compile(r"^[^:\s,]+:[^:\s,]+$")
_KEY_VERSION = 1
_OUTPUT_TAIL_CHARS = 64 * 1024  # the end of pip's output kept in the error: where the cause is


class LibraryInstallError(FloeError):
    """A library could not be installed. `output` is what pip (or venv) printed, stdout and stderr merged.

    The executor ends the attempt with termination code LIBRARY_INSTALLATION_ERROR and shows `output`.
    """

    error_code = "LIBRARY_INSTALLATION_ERROR"
    http_status = 400

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True, slots=True)
class PyPILibrary:
    package: str  # a pip requirement specifier: "name", "name==1.2", "name[extra]>=1"
    repo: str | None = None


@dataclass(frozen=True, slots=True)
class MavenLibrary:
    coordinates: str  # group:artifact:version
    repo: str | None = None
    exclusions: tuple[str, ...] = ()  # group:artifact


@dataclass(frozen=True, slots=True)
class LibrarySet:
    """A task's libraries, validated, with local files as absolute paths, in the order given."""

    wheels: tuple[Path, ...] = ()
    pypi: tuple[PyPILibrary, ...] = ()
    requirements: tuple[Path, ...] = ()
    jars: tuple[Path, ...] = ()
    maven: tuple[MavenLibrary, ...] = ()

    @property
    def has_python(self) -> bool:
        """True when the task needs an environment of its own (wheels, pypi or requirements)."""
        return bool(self.wheels or self.pypi or self.requirements)


def resolve_libraries(libraries: object, *, workspace: Path) -> LibrarySet:
    """Validate a task's `libraries` (None or a list of library objects) and locate their files.

    Raises InvalidParameterValue naming the entry (`libraries[2].pypi.package`) for a malformed entry, an
    unsupported kind (egg, cran, unknown keys), a remote path (`dbfs:/...`) or a missing file.
    """
    if libraries is None:
        return LibrarySet()
    if isinstance(libraries, str | bytes) or not isinstance(libraries, Sequence):
        raise InvalidParameterValue(f"{_FIELD}: must be a list of libraries, not {type(libraries).__name__}")
    wheels: list[Path] = []
    pypi: list[PyPILibrary] = []
    requirements: list[Path] = []
    jars: list[Path] = []
    maven: list[MavenLibrary] = []
    for i, entry in enumerate(libraries):
        name = f"{_FIELD}[{i}]"
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise InvalidParameterValue(
                f"{name}: must be an object with exactly one of {', '.join(_KEYS)}, not {entry!r}"
            )
        ((kind, value),) = entry.items()
        field = f"{name}.{kind}"
        if kind in _UNSUPPORTED:
            raise InvalidParameterValue(f"{field}: {kind} libraries are not supported ({_UNSUPPORTED[kind]})")
        if kind == "whl":
            path = locate_file(value, field=field, workspace=workspace)
            if path.suffix != ".whl":
                raise InvalidParameterValue(f"{field}: {value!r} is not a wheel (a .whl file)")
            wheels.append(path)
        elif kind == "jar":
            jars.append(locate_file(value, field=field, workspace=workspace))
        elif kind == "requirements":
            requirements.append(locate_file(value, field=field, workspace=workspace))
        elif kind == "pypi":
            spec = _object(value, field)
            package = spec.get("package")
            if not isinstance(package, str) or not package.strip() or package.strip().startswith("-"):
                raise InvalidParameterValue(
                    f"{field}.package is required: a pip requirement such as 'name==1.0'"
                )
            pypi.append(PyPILibrary(package.strip(), _repo(spec.get("repo"), f"{field}.repo")))
        elif kind == "maven":
            spec = _object(value, field)
            coordinates = spec.get("coordinates")
            if not isinstance(coordinates, str) or not _COORDINATES.match(coordinates):
                raise InvalidParameterValue(
                    f"{field}.coordinates: {coordinates!r} is not Maven coordinates (group:artifact:version)"
                )
            exclusions = spec.get("exclusions") or []
            if isinstance(exclusions, str) or not isinstance(exclusions, Sequence):
                raise InvalidParameterValue(f"{field}.exclusions: must be a list of 'group:artifact' strings")
            for j, excl in enumerate(exclusions):
                if not isinstance(excl, str) or not _EXCLUSION.match(excl):
                    raise InvalidParameterValue(f"{field}.exclusions[{j}]: {excl!r} is not 'group:artifact'")
            repo = _repo(spec.get("repo"), f"{field}.repo")
            maven.append(MavenLibrary(coordinates, repo, tuple(exclusions)))
        else:
            raise InvalidParameterValue(
                f"{name}: {kind!r} is not a library kind; use one of {', '.join(_KEYS)}"
            )
    return LibrarySet(tuple(wheels), tuple(pypi), tuple(requirements), tuple(jars), tuple(maven))


def jvm_options(lib_set: LibrarySet) -> dict[str, str]:
    """The Spark configuration that puts the set's JARs and Maven packages on the driver's classpath.

    Keys present only when non-empty: `spark.jars` (comma list of the local JAR paths),
    `spark.jars.packages` (the coordinates), `spark.jars.repositories` (distinct repos, first-seen order),
    `spark.jars.excludes` (distinct exclusions, first-seen order).
    """
    conf: dict[str, str] = {}
    if lib_set.jars:
        conf["spark.jars"] = ",".join(str(p) for p in lib_set.jars)
    if lib_set.maven:
        conf["spark.jars.packages"] = ",".join(m.coordinates for m in lib_set.maven)
        repos = list(dict.fromkeys(m.repo for m in lib_set.maven if m.repo))
        if repos:
            conf["spark.jars.repositories"] = ",".join(repos)
        excludes = list(dict.fromkeys(e for m in lib_set.maven for e in m.exclusions))
        if excludes:
            conf["spark.jars.excludes"] = ",".join(excludes)
    return conf


def environment_key(lib_set: LibrarySet, *, base_python: str) -> str:
    """The cache key of the set's Python environment (see the module docstring); 32 hex digits."""
    doc = {
        "v": _KEY_VERSION,
        "base": base_python,
        "wheels": [[p.name, _file_sha256(p)] for p in lib_set.wheels],
        "pypi": [[p.package, p.repo] for p in lib_set.pypi],
        "requirements": [_file_sha256(p) for p in lib_set.requirements],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def ensure_python_env(
    lib_set: LibrarySet, *, cache_dir: Path, base_python: str, timeout: float | None = 1800
) -> Path:
    """The python of an environment holding the set's Python libraries, built once per set and reused.

    Returns `Path(base_python)` unchanged when the set has no Python library. Blocks while another caller
    (thread or process) builds the same environment. Raises LibraryInstallError when venv or pip fails or
    runs longer than `timeout` seconds.
    """
    if not lib_set.has_python:
        return Path(base_python)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = environment_key(lib_set, base_python=base_python)
    link = cache_dir / key
    found = _published(link)
    if found is not None:
        return found
    with _locked(cache_dir / f"{key}.lock"):
        found = _published(link)  # built by the caller we waited for
        if found is not None:
            return found
        for stale in cache_dir.glob(f"{key}.*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
        target = cache_dir / f"{key}.{uuid.uuid4().hex[:8]}"
        try:
            python = _build(lib_set, target, base_python=base_python, timeout=timeout)
            tmp_link = cache_dir / f".{key}.{uuid.uuid4().hex[:8]}.link"
            os.symlink(target.name, tmp_link)
            os.replace(tmp_link, link)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return python


def _published(link: Path) -> Path | None:
    python = link / "bin" / "python"
    if link.is_symlink() and python.exists():
        return link.resolve() / "bin" / "python"
    return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _build(lib_set: LibrarySet, target: Path, *, base_python: str, timeout: float | None) -> Path:
    _run(
        [base_python, "-m", "venv", "--system-site-packages", "--without-pip", str(target)],
        "creating the virtual environment",
        cwd=target.parent,
        timeout=timeout,
    )
    python = target / "bin" / "python"
    base_sites = _run(
        [base_python, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
        "reading the base interpreter's site-packages",
        cwd=target.parent,
        timeout=timeout,
    )
    own_site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        "reading the environment's site-packages",
        cwd=target.parent,
        timeout=timeout,
    ).strip()
    sites = [s for s in json.loads(base_sites.strip().splitlines()[-1]) if s != own_site]
    # `site.addsitedir`, not bare paths: the base's own .pth files (editable installs) must run too.
    (Path(own_site) / "_floe_base.pth").write_text(
        "".join(f"import site; site.addsitedir({s!r})\n" for s in sites)
    )

    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    default = [str(p) for p in lib_set.wheels]
    default += [p.package for p in lib_set.pypi if p.repo is None]
    for req in lib_set.requirements:
        default += ["-r", str(req)]
    groups: list[tuple[str | None, list[str]]] = [(None, default)] if default else []
    for repo in dict.fromkeys(p.repo for p in lib_set.pypi if p.repo is not None):
        groups.append((repo, [p.package for p in lib_set.pypi if p.repo == repo]))
    for repo, args in groups:
        index = ["--index-url", repo] if repo else []
        _run([*pip, *index, *args], f"pip install {' '.join(args)}", cwd=target.parent, timeout=timeout)
    (target / "floe-env.json").write_text(
        json.dumps(
            {
                "base_python": base_python,
                "wheels": [str(p) for p in lib_set.wheels],
                "pypi": [[p.package, p.repo] for p in lib_set.pypi],
                "requirements": [str(p) for p in lib_set.requirements],
            },
            indent=1,
        )
    )
    return python


def _run(argv: list[str], what: str, *, cwd: Path, timeout: float | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        output = _text(exc.output)
        raise LibraryInstallError(
            f"Library installation failed: {what} took longer than {timeout:g} seconds", output
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EACCES):
            raise LibraryInstallError(f"Library installation failed: {what}: {exc}", str(exc)) from exc
        raise
    if done.returncode != 0:
        output = done.stdout[-_OUTPUT_TAIL_CHARS:]
        raise LibraryInstallError(
            f"Library installation failed: {what}: {_last_error(output) or f'exit code {done.returncode}'}",
            output,
        )
    return done.stdout


def _last_error(output: str) -> str:
    """The line of pip's output that says what went wrong: the last `ERROR:` line, else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or [""])[-1]


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidParameterValue(f"{field}: must be an object, not {type(value).__name__}")
    return value


def _repo(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.match(r"^(https?|file)://\S+$", value):
        raise InvalidParameterValue(
            f"{field}: {value!r} is not a repository URL (http://, https:// or file://)"
        )
    return value


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
