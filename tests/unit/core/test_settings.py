from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidParameterValue
from core.settings import Settings


def test_defaults_and_environment() -> None:
    settings = Settings.from_env({"FLOE_HOME": "/srv/floe", "FLOE_PORT": "9000", "FLOE_WORKERS": "8"})
    assert settings.home == Path("/srv/floe")
    assert settings.port == 9000
    assert settings.workers == 8
    assert settings.storage == "sqlite"
    assert settings.workspace_dir == Path("/srv/floe/workspace")


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"FLOE_PORT": "9000"}, port=9100, home=None)
    assert settings.port == 9100


def test_azure_reads_the_functions_storage_setting() -> None:
    settings = Settings.from_env(
        {"FLOE_STORAGE": "azure", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    )
    assert settings.azure_connection_string == "UseDevelopmentStorage=true"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOE_PORTT": "1"}, r"unknown setting\(s\) FLOE_PORTT"),
        ({"FLOE_PORT": "eighty"}, r"FLOE_PORT: 'eighty' is not an integer"),
        ({"FLOE_PORT": "70000"}, r"FLOE_PORT: 70000 is outside 1..65535"),
        ({"FLOE_STORAGE": "s3"}, r"FLOE_STORAGE: 's3' is not one of 'sqlite', 'azure'"),
        ({"FLOE_STORAGE": "azure"}, r"needs a connection string .* to sign in with Microsoft Entra ID"),
        ({"FLOE_TICK_SECONDS": "0"}, r"FLOE_TICK_SECONDS: 0.0 is outside"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        Settings.from_env(env)


def test_repr_masks_secrets() -> None:
    secret = "AccountKey=c2VjcmV0;"
    settings = Settings.from_env({"FLOE_ADMIN_TOKEN": "tok-123", "FLOE_AZURE_CONNECTION_STRING": secret})
    text = repr(settings)
    assert "tok-123" not in text
    assert secret not in text
    assert "admin_token='***'" in text
