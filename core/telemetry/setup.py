"""Which exporter Floe's telemetry goes to, and the process's current `Telemetry` (tracer and instruments).

`configure(env)` is called once per process by each host (`floe serve`, the Functions composition root)
and picks one of, in this order:

1. **`OTEL_SDK_DISABLED=true`**: nothing is exported.
2. **The Functions worker configured Azure Monitor** (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`,
   with `"telemetryMode": "OpenTelemetry"` in host.json): it called `configure_azure_monitor()` before any
   function ran, so Floe uses the global providers and does not configure a second time.
3. **Someone else already installed global SDK providers** (an application embedding Floe): Floe uses them.
4. **`APPLICATIONINSIGHTS_CONNECTION_STRING`**: `configure_azure_monitor()` (imported only then: it is
   heavy), exporting Floe's spans, metrics and the logs of the `floe` logger. The Azure SDK, requests and
   urllib3 instrumentations stay off: the queue workers' polls would make a trace each.
5. **`OTEL_EXPORTER_OTLP_ENDPOINT`** (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): OTLP over HTTP/protobuf.
   The other standard variables (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`,
   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`, ...) are read by the SDK.
6. Otherwise nothing leaves the process, and the instruments are no-ops.

Exporting never waits in a run's path: spans go through a `BatchSpanProcessor` and metrics through a
`PeriodicExportingMetricReader`, both on threads of their own, and an exporter whose endpoint is down
logs and drops (the SDK swallows its errors).

Code that emits telemetry asks for `current()` at the moment it emits, so tests can `install` a
`Telemetry` over in-memory providers and put the previous one back afterwards.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

from core.telemetry import names

log = logging.getLogger("floe.telemetry")

SCOPE = "floe"
FLOE_LOGGER = "floe"

# Milliseconds: from a quick task to a day-long run (Azure Monitor keeps only sum, count, min and max).
_MS_BUCKETS = (
    5.0,
    25.0,
    100.0,
    250.0,
    1_000.0,
    2_500.0,
    10_000.0,
    30_000.0,
    60_000.0,
    300_000.0,
    900_000.0,
    1_800_000.0,
    3_600_000.0,
    14_400_000.0,
    86_400_000.0,
)


class Telemetry:
    """A tracer and Floe's instruments (one per `names.METRICS` entry) over one pair of providers."""

    def __init__(
        self, tracer_provider: Any, meter_provider: Any, *, mode: str = "custom", owned: tuple[Any, ...] = ()
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.mode = mode
        self._owned = owned  # providers (and log handlers) Floe made, to shut down with `shutdown`
        self.tracer = tracer_provider.get_tracer(SCOPE)
        meter = meter_provider.get_meter(SCOPE)
        self._instruments: dict[str, Any] = {}
        for spec in names.METRICS.values():
            if spec.instrument == "counter":
                instrument = meter.create_counter(spec.name, unit=spec.unit)
            elif spec.unit == "ms":
                instrument = meter.create_histogram(
                    spec.name, unit=spec.unit, explicit_bucket_boundaries_advisory=list(_MS_BUCKETS)
                )
            else:
                instrument = meter.create_histogram(spec.name, unit=spec.unit)
            self._instruments[spec.name] = instrument

    @classmethod
    def noop(cls) -> Telemetry:
        return cls(NoOpTracerProvider(), NoOpMeterProvider(), mode="none")

    @classmethod
    def from_globals(cls, mode: str) -> Telemetry:
        return cls(trace.get_tracer_provider(), metrics.get_meter_provider(), mode=mode)

    def count(self, name: str, attributes: Mapping[str, Any], value: int = 1) -> None:
        """Add to the counter `name` (a `names` constant). Never raises."""
        try:
            self._instruments[name].add(value, _clean(attributes))
        except Exception:
            log.debug("could not count %s", name, exc_info=True)

    def record(self, name: str, value: float, attributes: Mapping[str, Any]) -> None:
        """Record `value` in the histogram `name` (a `names` constant). Never raises."""
        try:
            self._instruments[name].record(max(0.0, float(value)), _clean(attributes))
        except Exception:
            log.debug("could not record %s", name, exc_info=True)

    def flush(self, timeout_millis: int = 5_000) -> None:
        """Export what is pending now (best effort: an endpoint that is down only costs the timeout)."""
        for provider in (self.tracer_provider, self.meter_provider):
            force_flush = getattr(provider, "force_flush", None)
            if force_flush is not None:
                try:
                    force_flush(timeout_millis)
                except Exception:
                    log.debug("could not flush %r", provider, exc_info=True)

    def shutdown(self) -> None:
        """Flush and stop the providers Floe made itself (not global ones someone else configured)."""
        for thing in self._owned:
            try:
                if isinstance(thing, logging.Handler):
                    logging.getLogger(FLOE_LOGGER).removeHandler(thing)
                    thing.close()
                else:
                    thing.shutdown()
            except Exception:
                log.debug("could not shut down %r", thing, exc_info=True)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None and v != ""}


_lock = threading.Lock()
_current = Telemetry.noop()
_configured: str | None = None


def current() -> Telemetry:
    """The telemetry Floe emits to now."""
    return _current


def install(telemetry: Telemetry) -> Telemetry:
    """Make `telemetry` the current one; returns the one it replaces (tests put it back)."""
    global _current
    with _lock:
        previous, _current = _current, telemetry
    return previous


def configure(env: Mapping[str, str] | None = None, *, set_global: bool = True) -> str:
    """Choose the exporter from the environment (see the module docstring) and make it current. Only the
    first call in a process does anything; it returns the mode chosen: `disabled`, `functions-host`,
    `global`, `azure-monitor`, `otlp` or `none`. With `set_global`, providers Floe creates also become
    OpenTelemetry's global ones (when none were set), so libraries' spans join Floe's traces."""
    global _configured
    env = os.environ if env is None else env
    with _lock:
        if _configured is not None:
            return _configured
        _configured = mode = _choose(env)
    if mode == "functions-host" or mode == "global":
        install(Telemetry.from_globals(mode))
    elif mode == "azure-monitor":
        _configure_azure_monitor(env)
        install(Telemetry.from_globals(mode))
    elif mode == "otlp":
        install(_otlp(env, set_global=set_global))
    log.info("telemetry: %s", _DESCRIBE[mode])
    return mode


def reset() -> None:
    """Forget the choice `configure` made, shut down what it made, and go back to no telemetry (tests)."""
    global _configured
    with _lock:
        _configured = None
    install(Telemetry.noop()).shutdown()


_DESCRIBE = {
    "disabled": "disabled by OTEL_SDK_DISABLED",
    "functions-host": "the Functions worker's Azure Monitor configuration",
    "global": "the OpenTelemetry providers this process already had",
    "azure-monitor": "Azure Monitor (APPLICATIONINSIGHTS_CONNECTION_STRING)",
    "otlp": "OTLP over HTTP (OTEL_EXPORTER_OTLP_ENDPOINT)",
    "none": "no exporter configured; spans and metrics stay in the process",
}


def _choose(env: Mapping[str, str]) -> str:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "disabled"
    if env.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "").strip().lower() == "true":
        return "functions-host"
    if not isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider):
        return "global"
    if env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip():
        return "azure-monitor"
    if _endpoint(env, "traces"):
        return "otlp"
    return "none"


def _service_name(env: Mapping[str, str]) -> dict[str, str]:
    """`service.name` = floe, unless the standard variables name the service."""
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return {} if named else {"service.name": "floe"}


def _configure_azure_monitor(env: Mapping[str, str]) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    configure_azure_monitor(
        connection_string=env["APPLICATIONINSIGHTS_CONNECTION_STRING"].strip(),
        logger_name=FLOE_LOGGER,
        resource=Resource.create(_service_name(env)),
        instrumentation_options={
            "azure_sdk": {"enabled": False},
            "requests": {"enabled": False},
            "urllib3": {"enabled": False},
            "urllib": {"enabled": False},
        },
    )


def _endpoint(env: Mapping[str, str], signal: str) -> str | None:
    """The OTLP/HTTP URL of one signal, as the exporters derive it from the standard variables."""
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/{signal}" if base else None


def _otlp(env: Mapping[str, str], *, set_global: bool) -> Telemetry:
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip()
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported; Floe exports http/protobuf", protocol)
    resource = Resource.create(_service_name(env))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=_endpoint(env, "traces")))
    )
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=_endpoint(env, "metrics")))
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=_endpoint(env, "logs")))
    )
    handler = LoggingHandler(logger_provider=logger_provider)
    logging.getLogger(FLOE_LOGGER).addHandler(handler)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        set_logger_provider(logger_provider)
    owned = (handler, tracer_provider, meter_provider, logger_provider)
    return Telemetry(tracer_provider, meter_provider, mode="otlp", owned=owned)
