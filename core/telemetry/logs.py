"""Floe's own logs, correlated with its traces: every record gets `trace_id` and `span_id` (those of the
span current when it was logged, "" outside any), shown in text or written as one JSON object per line.

Task output (stdout and stderr of task processes) is not logging: it stays in the attempt's log blob.
Exporters that ship logs (Azure Monitor for the `floe` logger, OTLP) correlate records themselves.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (hex, or "") to each record it sees; never filters one out."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = f"{ctx.trace_id:032x}" if ctx.is_valid else ""
        record.span_id = f"{ctx.span_id:016x}" if ctx.is_valid else ""
        return True


class TextFormatter(logging.Formatter):
    """The usual one-line format, with ` trace_id=... span_id=...` appended inside a span."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        if not trace_id:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} trace_id={trace_id} span_id={getattr(record, 'span_id', '')}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, trace_id, span_id, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "trace_id", ""):
            entry["trace_id"] = record.trace_id  # type: ignore[attr-defined]
            entry["span_id"] = record.span_id  # type: ignore[attr-defined]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", *, level: int = logging.INFO) -> logging.Handler:
    """Log to stderr through one handler on the root logger, in `log_format` (`text` or `json`), with the
    trace ids of the current span. Returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
