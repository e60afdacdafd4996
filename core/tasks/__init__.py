"""Task types: one module per type, saying how a task of that type is launched and what its output means."""

from __future__ import annotations

from core.tasks.python_script import SCRUBBED_ENV, PythonCommand, build_command, task_environment

__all__ = ["SCRUBBED_ENV", "PythonCommand", "build_command", "task_environment"]
