"""Where a file named in a task's settings is on this host.

The same rules for every task type: an absolute path that exists is used as is; a `file:` URI names an
absolute local path; other URI schemes (`dbfs:`, `s3:`, `abfss:`, ...) are refused; a Databricks workspace
path (`/Users/me/x.py`, `/Workspace/Users/me/x.py`) that does not exist on the host is looked up under the
workspace folder; a relative path is relative to the workspace folder (for `source: GIT`, to the
repository root, and absolute paths are refused).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.errors import InvalidParameterValue

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_WORKSPACE_FUSE_PREFIX = "/Workspace/"


def locate_file(
    value: object,
    *,
    field: str,
    what: str,
    workspace: Path,
    git: bool = False,
    suffixes: Sequence[str] = ("",),
) -> Path:
    """The file `value` names, trying each of `suffixes` after each candidate path in turn.

    Raises InvalidParameterValue naming `field` for an empty value, an unsupported scheme, an absolute
    path with `git=True`, or a path that matches no file."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameterValue(f"{field} is required: the path of the {what}")
    bases = _candidates(value, field=field, workspace=workspace, git=git)
    for base in bases:
        for suffix in suffixes:
            candidate = base.with_name(base.name + suffix) if suffix else base
            if candidate.is_file():
                return candidate.absolute()
    if any(b.exists() for b in bases):
        raise InvalidParameterValue(f"{field}: {value!r} is not a file")
    tried = f" (tried {', '.join(s or 'no extension' for s in suffixes)})" if len(suffixes) > 1 else ""
    raise InvalidParameterValue(
        f"{field}: {value!r} does not exist on this host or under the workspace{tried}"
    )


def _candidates(value: str, *, field: str, workspace: Path, git: bool) -> list[Path]:
    scheme = _SCHEME.match(value)
    if scheme is not None:
        if scheme.group(1).lower() != "file":
            raise InvalidParameterValue(
                f"{field}: {value!r} is not supported; use a local path or a path relative to the workspace"
            )
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidParameterValue(
                f"{field}: {value!r} is not a local file URI (use file:///absolute/path)"
            )
        return [Path(unquote(parts.path))]
    if value.startswith("/"):
        if git:
            raise InvalidParameterValue(
                f"{field}: {value!r} must be relative to the repository root when source is GIT"
            )
        candidates = [Path(value), workspace / value.lstrip("/")]
        if value.startswith(_WORKSPACE_FUSE_PREFIX):
            candidates.append(workspace / value[len(_WORKSPACE_FUSE_PREFIX) :])
        return candidates
    return [workspace / value]
