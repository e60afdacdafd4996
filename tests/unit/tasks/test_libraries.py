"""Task libraries: validation, JVM wiring, and cached Python environments built with real venv + pip."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.tasks.libraries import (
    LibraryInstallError,
    LibrarySet,
    MavenLibrary,
    PyPILibrary,
    ensure_python_env,
    environment_key,
    jvm_options,
    resolve_libraries,
)
from tests.unit.tasks.wheels import build_wheel


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "Users" / "me").mkdir(parents=True)
    (ws / "Users" / "me" / "dep-1.0-py3-none-any.whl").write_bytes(b"")
    (ws / "Users" / "me" / "requirements.txt").write_text("")
    (ws / "libs").mkdir()
    (ws / "libs" / "udf.jar").write_bytes(b"")
    return ws


# ------------------------------------------------------------------------------------------------ validation


def test_every_supported_kind(workspace: Path) -> None:
    libs = resolve_libraries(
        [
            {"whl": "/Workspace/Users/me/dep-1.0-py3-none-any.whl"},
            {"pypi": {"package": "requests==2.32.3"}},
            {"pypi": {"package": " simplejson ", "repo": "https://pypi.example.com/simple"}},
            {"requirements": "/Users/me/requirements.txt"},
            {"jar": "libs/udf.jar"},
            {"maven": {"coordinates": "org.postgresql:postgresql:42.7.3"}},
        ],
        workspace=workspace,
    )

    assert libs == LibrarySet(
        wheels=(workspace / "Users" / "me" / "dep-1.0-py3-none-any.whl",),
        pypi=(
            PyPILibrary("requests==2.32.3"),
            PyPILibrary("simplejson", "https://pypi.example.com/simple"),
        ),
        requirements=(workspace / "Users" / "me" / "requirements.txt",),
        jars=(workspace / "libs" / "udf.jar",),
        maven=(MavenLibrary("org.postgresql:postgresql:42.7.3"),),
    )
    assert libs.has_python
    assert not LibrarySet(jars=libs.jars).has_python
    assert resolve_libraries(None, workspace=workspace) == LibrarySet()


@pytest.mark.parametrize(
    ("libraries", "message"),
    [
        ([{"egg": "x.egg"}], r"^libraries\[0\]\.egg: egg libraries are not supported"),
        ([{"cran": {"package": "x"}}], r"^libraries\[0\]\.cran: cran libraries are not supported"),
        ([{"nuget": "x"}], r"^libraries\[0\]: 'nuget' is not a library kind; use one of whl, pypi"),
        ([{"whl": "a.whl", "jar": "b.jar"}], r"^libraries\[0\]: must be an object with exactly one of"),
        ("whl", r"^libraries: must be a list of libraries, not str"),
        (
            [{"jar": "libs/udf.jar"}, {"whl": "dbfs:/FileStore/x.whl"}],
            r"^libraries\[1\]\.whl: 'dbfs:/FileStore/x\.whl' is not supported; "
            r"use a local path or a path relative to the workspace$",
        ),
        (
            [{"jar": "s3://bucket/x.jar"}],
            r"^libraries\[0\]\.jar: 's3://bucket/x\.jar' is not supported",
        ),
        (
            [{"requirements": "/Users/me/missing.txt"}],
            r"^libraries\[0\]\.requirements: '/Users/me/missing\.txt' does not exist on this host "
            r"or under the workspace$",
        ),
        (
            [{"whl": "libs/udf.jar"}],
            r"^libraries\[0\]\.whl: 'libs/udf\.jar' is not a wheel \(a \.whl file\)$",
        ),
        ([{"pypi": {}}], r"^libraries\[0\]\.pypi\.package is required"),
        ([{"pypi": {"package": "--index-url=http://x"}}], r"^libraries\[0\]\.pypi\.package is required"),
        ([{"pypi": "requests"}], r"^libraries\[0\]\.pypi: must be an object, not str$"),
        (
            [{"pypi": {"package": "x", "repo": "ftp://mirror"}}],
            r"^libraries\[0\]\.pypi\.repo: 'ftp://mirror' is not a repository URL",
        ),
        (
            [{"maven": {"coordinates": "org.postgresql:postgresql"}}],
            r"^libraries\[0\]\.maven\.coordinates: 'org\.postgresql:postgresql' is not Maven coordinates "
            r"\(group:artifact:version\)$",
        ),
        (
            [{"maven": {"coordinates": "a:b:1", "exclusions": ["a:b:1"]}}],
            r"^libraries\[0\]\.maven\.exclusions\[0\]: 'a:b:1' is not 'group:artifact'$",
        ),
    ],
)
def test_invalid_libraries(workspace: Path, libraries: object, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        resolve_libraries(libraries, workspace=workspace)


# ------------------------------------------------------------------------------------------------ JVM


def test_jvm_options_wire_jars_and_maven(workspace: Path) -> None:
    libs = resolve_libraries(
        [
            {"jar": "libs/udf.jar"},
            {"maven": {"coordinates": "org.postgresql:postgresql:42.7.3"}},
            {
                "maven": {
                    "coordinates": "com.example:etl_2.13:1.0",
                    "repo": "https://maven.example.com/releases",
                    "exclusions": ["org.slf4j:slf4j-api", "log4j:log4j"],
                }
            },
            {
                "maven": {
                    "coordinates": "com.example:more:2.0",
                    "repo": "https://maven.example.com/releases",
                    "exclusions": ["log4j:log4j"],
                }
            },
        ],
        workspace=workspace,
    )

    assert jvm_options(libs) == {
        "spark.jars": str(workspace / "libs" / "udf.jar"),
        "spark.jars.packages": (
            "org.postgresql:postgresql:42.7.3,com.example:etl_2.13:1.0,com.example:more:2.0"
        ),
        "spark.jars.repositories": "https://maven.example.com/releases",
        "spark.jars.excludes": "org.slf4j:slf4j-api,log4j:log4j",
    }
    assert jvm_options(LibrarySet()) == {}
    assert jvm_options(LibrarySet(maven=(MavenLibrary("a:b:1"),))) == {"spark.jars.packages": "a:b:1"}


# ------------------------------------------------------------------------------------------------ cache key


def test_the_key_follows_wheel_content_not_location(tmp_path: Path) -> None:
    one = build_wheel(tmp_path / "one", "demo", "1.0", {"demo.py": "X = 1\n"})
    same = build_wheel(tmp_path / "two", "demo", "1.0", {"demo.py": "X = 1\n"})
    key = environment_key(LibrarySet(wheels=(one,)), base_python="/py")

    assert environment_key(LibrarySet(wheels=(same,)), base_python="/py") == key
    assert environment_key(LibrarySet(wheels=(one,)), base_python="/other/py") != key
    build_wheel(tmp_path / "two", "demo", "1.0", {"demo.py": "X = 2\n"})
    assert environment_key(LibrarySet(wheels=(same,)), base_python="/py") != key
    assert environment_key(LibrarySet(pypi=(PyPILibrary("demo"),)), base_python="/py") != key


def test_no_python_library_means_the_base_interpreter(tmp_path: Path) -> None:
    libs = LibrarySet(jars=(tmp_path / "x.jar",))
    assert ensure_python_env(libs, cache_dir=tmp_path / "envs", base_python="/py") == Path("/py")
    assert not (tmp_path / "envs").exists()


# ------------------------------------------------------------------------------------------------ real envs


DEMO = {
    "floe_libdemo/__init__.py": "import sys\nVALUE = 'from the wheel'\n",
}


def run_in(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=60
    )


def test_an_environment_is_built_once_then_reused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", "floe-libdemo", "0.1", DEMO)
    libs = LibrarySet(wheels=(wheel,))
    cache = tmp_path / "envs"

    python = ensure_python_env(libs, cache_dir=cache, base_python=sys.executable)

    done = run_in(python, "import floe_libdemo, pyspark, core.tasks.runtime; print(floe_libdemo.VALUE)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "from the wheel\n"
    # The base interpreter does not see the wheel: the environment is the task's own.
    assert run_in(Path(sys.executable), "import floe_libdemo").returncode == 1
    built = sorted(p.name for p in cache.iterdir())
    site = python.parent.parent / "floe-env.json"
    stamp = site.stat().st_mtime_ns

    start = time.perf_counter()
    again = ensure_python_env(libs, cache_dir=cache, base_python=sys.executable)
    elapsed = time.perf_counter() - start

    assert again == python
    assert elapsed < 0.5  # no venv, no pip: a symlink lookup and a hash
    assert sorted(p.name for p in cache.iterdir()) == built
    assert site.stat().st_mtime_ns == stamp


def test_concurrent_callers_share_one_build(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", "floe-libdemo", "0.2", DEMO)
    libs = LibrarySet(wheels=(wheel,))
    cache = tmp_path / "envs"
    results: list[Path] = []

    def build() -> None:
        results.append(ensure_python_env(libs, cache_dir=cache, base_python=sys.executable))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert len(results) == 3 and len(set(results)) == 1
    envs = [p for p in cache.iterdir() if p.is_dir() and not p.is_symlink()]
    assert [p.name for p in envs] == [results[0].parent.parent.name]


def test_a_broken_wheel_is_a_library_install_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"this is not a zip file")
    cache = tmp_path / "envs"

    with pytest.raises(
        LibraryInstallError, match=r"^Library installation failed: pip install .*broken"
    ) as err:
        ensure_python_env(LibrarySet(wheels=(broken,)), cache_dir=cache, base_python=sys.executable)

    assert err.value.error_code == "LIBRARY_INSTALLATION_ERROR"
    assert "broken-1.0-py3-none-any.whl" in err.value.output
    assert "ERROR" in err.value.output
    assert [p.name for p in cache.iterdir()] == [f"{err_key(broken)}.lock"]  # nothing published or left


def err_key(wheel: Path) -> str:
    return environment_key(LibrarySet(wheels=(wheel,)), base_python=sys.executable)


def test_pypi_with_a_repo_uses_that_index(tmp_path: Path) -> None:
    """A `file://` PEP 503 index stands in for a private repository: real pip, no network."""
    wheel = build_wheel(tmp_path / "files", "floe-indexed", "1.0", {"floe_indexed.py": "OK = 'indexed'\n"})
    project = tmp_path / "simple" / "floe-indexed"
    project.mkdir(parents=True)
    (project / "index.html").write_text(
        f'<html><body><a href="{wheel.as_uri()}">{wheel.name}</a></body></html>'
    )
    libs = resolve_libraries(
        [{"pypi": {"package": "floe-indexed==1.0", "repo": (tmp_path / "simple").as_uri()}}],
        workspace=tmp_path,
    )

    python = ensure_python_env(libs, cache_dir=tmp_path / "envs", base_python=sys.executable)

    done = run_in(python, "import floe_indexed; print(floe_indexed.OK)")
    assert done.stdout == "indexed\n", done.stderr


def test_a_requirements_file_is_installed(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "files", "floe-reqdemo", "1.0", {"floe_reqdemo.py": "OK = 'req'\n"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n{wheel}\n")

    python = ensure_python_env(
        LibrarySet(requirements=(requirements,)), cache_dir=tmp_path / "envs", base_python=sys.executable
    )

    assert run_in(python, "import floe_reqdemo; print(floe_reqdemo.OK)").stdout == "req\n"
