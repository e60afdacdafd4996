"""The HTTP layer: the Databricks Jobs API 2.0 / 2.1 / 2.2, wire-compatible with the Databricks SDK,
the legacy CLI and Airflow's Databricks provider."""

from __future__ import annotations

from core.api.app import create_app
from core.api.service import FloeService

__all__ = ["FloeService", "create_app"]
