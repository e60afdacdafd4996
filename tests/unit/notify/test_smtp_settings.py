"""The FLOE_SMTP_* settings: read, validated, and the password never shown."""

from __future__ import annotations

import pytest

from core.errors import InvalidParameterValue
from core.settings import Settings


def test_smtp_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "FLOE_SMTP_HOST": "smtp.example.com",
            "FLOE_SMTP_PORT": "587",
            "FLOE_SMTP_SECURITY": "starttls",
            "FLOE_SMTP_USER": "floe",
            "FLOE_SMTP_PASSWORD": "hunter2",
            "FLOE_SMTP_FROM": "jobs@example.com",
        }
    )
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "smtp.example.com",
        587,
        "starttls",
    )
    assert (settings.smtp_user, settings.smtp_password, settings.smtp_from) == (
        "floe",
        "hunter2",
        "jobs@example.com",
    )
    assert "hunter2" not in repr(settings) and "smtp_password='***'" in repr(settings)


def test_smtp_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == ("", 25, "none")
    assert settings.smtp_from == "floe@localhost" and "smtp_password=''" in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOE_SMTP_PORT": "smtp"}, r"FLOE_SMTP_PORT: 'smtp' is not an integer"),
        ({"FLOE_SMTP_PORT": "0"}, r"FLOE_SMTP_PORT: 0 is outside 1..65535"),
        ({"FLOE_SMTP_SECURITY": "tls"}, r"FLOE_SMTP_SECURITY: 'tls' is not one of 'none', 'starttls', 'ssl'"),
        ({"FLOE_SMTP_HOSTNAME": "x"}, r"unknown setting\(s\) FLOE_SMTP_HOSTNAME"),
    ],
)
def test_bad_smtp_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        Settings.from_env(env)
