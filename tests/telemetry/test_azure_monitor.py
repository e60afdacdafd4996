"""The Azure Monitor exporter, configured for real (`configure_azure_monitor` sets global providers for
good, so each case runs in a fresh interpreter): Floe configures it once, its fixed-id spans go through
Azure's provider with the ids Floe gave them, and inside the Functions host (the worker configured it)
Floe uses the worker's providers instead of configuring a second time. The connection string points at a
closed loopback port: nothing leaves the machine, and the endpoint being down changes nothing for Floe."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, sys
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

if os.environ.get("AS_WORKER"):  # what the Functions worker does before any function runs
    from azure.monitor.opentelemetry import configure_azure_monitor
    configure_azure_monitor()
    worker_provider = trace.get_tracer_provider()

from core import telemetry
from core.telemetry.context import TraceContext, new_traceparent
from core.telemetry.spans import export_fixed

mode = telemetry.configure()
provider = trace.get_tracer_provider()
exporter = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(exporter))
run = TraceContext.parse(new_traceparent())
kind = SpanKind.CONSUMER
export_fixed("floe.run", run, parent=None, start_ms=1_000, end_ms=2_000, kind=kind, attributes={})
[span] = exporter.get_finished_spans()
print(json.dumps({
    "mode": mode,
    "again": telemetry.configure(),
    "same_ids": [span.context.trace_id, span.context.span_id] == [run.trace_id, run.span_id],
    "uses_global": telemetry.current().tracer_provider is provider,
    "worker_kept": (provider is worker_provider) if os.environ.get("AS_WORKER") else None,
    "provider": type(provider).__module__,
}))
"""


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(tmp_path: Path, **extra: str) -> dict[str, object]:
    import json

    endpoint = f"http://127.0.0.1:{_closed_port()}/"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_", "PYTHON_"))
    }
    env.update(
        APPLICATIONINSIGHTS_CONNECTION_STRING=(
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint={endpoint};LiveEndpoint={endpoint}"
        ),
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        TMPDIR=str(tmp_path),  # the exporter's offline storage
        **extra,
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_floe_configures_azure_monitor_once_and_keeps_its_span_ids(tmp_path: Path) -> None:
    found = _run(tmp_path)
    assert found["mode"] == found["again"] == "azure-monitor"
    assert found["same_ids"] and found["uses_global"]
    assert str(found["provider"]).startswith("opentelemetry.sdk.trace")


@pytest.mark.slow
def test_inside_the_functions_host_floe_uses_the_workers_configuration(tmp_path: Path) -> None:
    found = _run(tmp_path, AS_WORKER="1", PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY="true")
    assert found["mode"] == "functions-host"
    assert found["same_ids"] and found["uses_global"] and found["worker_kept"]
