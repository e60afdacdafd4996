"""jobs/update: merging partial new settings into stored ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.model.base import invalid, require_object
from core.model.jobs import JobSettings

# Top-level fields that may be removed: every declared setting, plus whatever the stored job holds.
_KNOWN_FIELDS = frozenset(JobSettings.model_fields) | {
    "budget_policy_id",
    "edit_mode",
    "deployment",
    "performance_target",
}
# Arrays merged by key instead of replaced whole.
_KEYED = {"tasks": "task_key", "job_clusters": "job_cluster_key"}


def merge_update(current: Mapping[str, Any], new_settings: Any, fields_to_remove: Any) -> dict[str, Any]:
    """Apply jobs/update to `current` (stored, validated settings) and return the merged raw settings.

    `fields_to_remove` is applied first: top-level names, or `tasks/<task_key>` and
    `job_clusters/<job_cluster_key>`. Then each top-level field of `new_settings` replaces the stored
    one, except `tasks` and `job_clusters`, which merge by key: an entry with a stored key replaces it
    in place, a new key is appended. Nothing is validated beyond the shapes this merge needs; the caller
    passes the result to `validate_job_settings`. `current` is not modified.
    """
    new = {} if new_settings is None else require_object(new_settings, "new_settings")
    removals = _removal_paths(fields_to_remove)
    merged = dict(current)
    for key in _KEYED:
        if isinstance(merged.get(key), list):
            merged[key] = list(merged[key])
    unknown = [p for p in removals if not _remove(merged, p)]
    if unknown:
        raise invalid(
            "fields_to_remove",
            "must name top-level settings or tasks/<task_key> or job_clusters/<job_cluster_key> that exist",
            unknown,
        )
    for name, value in new.items():
        key_field = _KEYED.get(name)
        if key_field and isinstance(value, list) and isinstance(merged.get(name), list):
            merged[name] = _merge_keyed(merged[name], value, key_field)
        else:
            merged[name] = value
    return merged


def _removal_paths(fields_to_remove: Any) -> list[str]:
    if fields_to_remove is None:
        return []
    if not isinstance(fields_to_remove, list) or not all(isinstance(p, str) for p in fields_to_remove):
        raise invalid("fields_to_remove", "must be a JSON array of strings", fields_to_remove)
    return fields_to_remove


def _remove(settings: dict[str, Any], path: str) -> bool:
    """Remove one path; False if the path names nothing removable."""
    head, sep, key = path.partition("/")
    if not sep:
        if head in settings:
            del settings[head]
            return True
        return head in _KNOWN_FIELDS
    key_field = _KEYED.get(head)
    entries = settings.get(head)
    if key_field is None or not key or not isinstance(entries, list):
        return False
    kept = [e for e in entries if not (isinstance(e, dict) and e.get(key_field) == key)]
    if len(kept) == len(entries):
        return False
    settings[head] = kept
    return True


def _merge_keyed(stored: list[Any], updates: list[Any], key_field: str) -> list[Any]:
    merged = list(stored)
    position = {e.get(key_field): i for i, e in enumerate(merged) if isinstance(e, dict)}
    for entry in updates:
        key = entry.get(key_field) if isinstance(entry, dict) else None
        if key is not None and key in position:
            merged[position[key]] = entry
        else:
            if key is not None:
                position[key] = len(merged)
            merged.append(entry)
    return merged
