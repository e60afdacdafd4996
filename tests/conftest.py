"""Shared fixtures. Service fixtures (Azurite, Spark) live in `tests/fixtures/` and are session-scoped;
a test that needs a missing service is skipped on a laptop and FAILS when the `CI` variable is set."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.azurite",
    "tests.fixtures.storage",
    "tests.fixtures.server",
    "tests.fixtures.telemetry",
]
