"""Compute: where task code runs. `process` supervises task processes on this host; `logs` ships their logs
to blobs and reads them back for runs/get-output."""

from __future__ import annotations

from core.compute.logs import LogShipper, read_tail
from core.compute.process import (
    ProcessExit,
    ProcessHandle,
    ProcessSpec,
    ProcessSupervisor,
    SpawnError,
    process_alive,
)

__all__ = [
    "LogShipper",
    "ProcessExit",
    "ProcessHandle",
    "ProcessSpec",
    "ProcessSupervisor",
    "SpawnError",
    "process_alive",
    "read_tail",
]
