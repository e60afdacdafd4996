"""Exporters chosen from the environment, end to end: Floe configured with `OTEL_EXPORTER_OTLP_ENDPOINT`
exports a run's span and metrics to a real OTLP/HTTP receiver (a tiny `http.server` decoding the protobuf
requests); an endpoint that is down fails no run; the choice of exporter follows the documented order."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from core import telemetry
from core.telemetry import names
from core.telemetry.setup import _choose
from tests.fixtures.server import FloeServer

pytestmark = pytest.mark.timeout(120)

_DECODERS = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


@dataclass
class Receiver:
    """What an OTLP/HTTP collector received: span names with attributes, metric names, log bodies."""

    url: str
    spans: list[tuple[str, dict[str, Any], bytes]] = field(default_factory=list)
    metrics: set[str] = field(default_factory=set)
    logs: list[str] = field(default_factory=list)

    def take(self, path: str, request: Any) -> None:
        if path == "/v1/traces":
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: _value(a.value) for a in span.attributes}
                        self.spans.append((span.name, {**attributes, "service.name": service}, span.trace_id))
        elif path == "/v1/metrics":
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    self.metrics.update(m.name for m in scope.metrics)
        else:
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    self.logs.extend(r.body.string_value for r in scope.log_records)


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            decoders = _DECODERS.get(self.path)
            if decoders is None:
                self.send_error(404)
                return
            request_type, response_type = decoders
            request = request_type()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            found.take(self.path, request)
            body = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fresh_telemetry() -> Iterator[None]:
    """`configure` as a host's first call would run it; afterwards back to no telemetry."""
    telemetry.reset()
    try:
        yield
    finally:
        telemetry.reset()


def _run_job(floe_server: FloeServer) -> tuple[int, dict[str, Any]]:
    floe_server.script("ok.py", "import logging\nprint('ok')\n")
    api = httpx.Client(
        base_url=f"{floe_server.url}/api/2.2",
        headers={"Authorization": f"Bearer {floe_server.token}"},
        timeout=30,
    )
    task = {"task_key": "t", "spark_python_task": {"python_file": "ok.py"}}
    job_id = api.post("/jobs/create", json={"name": "exported", "tasks": [task]}).json()["job_id"]
    run_id = api.post("/jobs/run-now", json={"job_id": job_id}).json()["run_id"]
    deadline = time.monotonic() + 60
    while True:
        run = api.get("/jobs/runs/get", params={"run_id": run_id}).json()
        if run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
            return run_id, run
        assert time.monotonic() < deadline, run["state"]
        time.sleep(0.05)


def test_a_run_is_exported_to_an_otlp_http_endpoint(
    receiver: Receiver, fresh_telemetry: None, floe_server: FloeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "floe-under-test")
    assert telemetry.configure(set_global=False) == "otlp"
    assert telemetry.configure() == "otlp"  # a second call changes nothing
    run_id, run = _run_job(floe_server)
    assert run["state"]["result_state"] == "SUCCESS"
    logging_line = "a floe log line inside a traced block"
    import logging

    logging.getLogger("floe.test").warning(logging_line)

    def exported() -> bool:
        telemetry.current().flush()
        return any(name == names.RUN_SPAN for name, _, _ in receiver.spans)

    deadline = time.monotonic() + 30
    while not exported():
        assert time.monotonic() < deadline, receiver.spans
        time.sleep(0.1)
    [(_, attributes, trace_id)] = [s for s in receiver.spans if s[0] == names.RUN_SPAN]
    assert attributes[names.RUN_ID] == run_id and attributes[names.RESULT_STATE] == "SUCCESS"
    assert attributes["service.name"] == "floe-under-test"
    assert {name for name, _, t in receiver.spans if t == trace_id} >= {
        names.RUN_SPAN,
        names.TASK_SPAN,
        names.MESSAGE_SPAN,
        names.RUN_TRIGGER_SPAN,
    }
    assert {names.RUNS_STARTED, names.RUNS_FINISHED, names.RUN_DURATION} <= receiver.metrics
    telemetry.current().shutdown()
    assert logging_line in receiver.logs


def test_an_endpoint_that_is_down_fails_no_run(
    fresh_telemetry: None, floe_server: FloeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    assert telemetry.configure(set_global=False) == "otlp"
    for _ in range(2):
        _, run = _run_job(floe_server)
        assert run["state"]["result_state"] == "SUCCESS", run["state"]
    telemetry.current().flush(timeout_millis=2_000)  # fails quietly


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp"),
        (
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "h",
            },
            "azure-monitor",
        ),
        (
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": "x",
                "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
            },
            "functions-host",
        ),
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "x", "OTEL_SDK_DISABLED": "true"}, "disabled"),
    ],
)
def test_the_exporter_follows_the_environment(env: dict[str, str], mode: str) -> None:
    assert _choose(env) == mode
