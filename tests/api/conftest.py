"""The API layer under test: the app over an in-memory fake service, with a fixed clock."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.api import create_app
from core.clock import FakeClock
from tests.api.fake import TOKEN, FakeFloe

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def floe() -> FakeFloe:
    return FakeFloe()


@pytest.fixture
def client(floe: FakeFloe) -> TestClient:
    # raise_server_exceptions=False: a 500 must reach the test as a response, as it would a real client.
    return TestClient(create_app(floe, clock=FakeClock()), raise_server_exceptions=False, headers=AUTH)


@pytest.fixture
def anonymous(floe: FakeFloe) -> TestClient:
    return TestClient(create_app(floe, clock=FakeClock()), raise_server_exceptions=False)
