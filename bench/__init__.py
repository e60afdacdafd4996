"""Benchmarks: run on demand (never as timed tests); results go to docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_HEADER = (
    "# Benchmarks\n\nMeasured by the scripts in `bench/`, on demand. "
    "Each section is replaced when its script runs with `--write`.\n"
)


def write_section(title: str, text: str) -> None:
    """Replace the section whose heading starts with `## {title}` (or append it)."""
    current = DOC.read_text() if DOC.exists() else _HEADER
    parts = current.split("\n## ")
    head, sections = parts[0], parts[1:]
    sections = [s for s in sections if not s.startswith(title)]
    sections.append(text.removeprefix("## ").rstrip() + "\n")
    DOC.write_text(head.rstrip() + "\n\n" + "\n".join("## " + s.rstrip() + "\n" for s in sections))
