"""Floe's telemetry: OpenTelemetry traces and metrics, exported to Azure Monitor or OTLP.

`core.telemetry.names` is the contract: every span name, attribute key and metric name Floe emits, and
where each lands in Application Insights. The alert rules and the workbook in `infra/` query exactly
those names.
"""
