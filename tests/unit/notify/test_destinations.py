"""Notification destinations on every storage adapter: validation naming the field, write-only secrets,
merging updates, paging."""

from __future__ import annotations

import pytest

from core.clock import FakeClock
from core.errors import InvalidParameterValue
from core.notify import DestinationNotFound, DestinationService, DestinationType, render_destination
from core.store import Storage

SLACK = "https://hooks.slack.com/services/T000/B000/XXXX"


@pytest.fixture
def service(storage: Storage) -> DestinationService:
    return DestinationService(storage.tables, FakeClock())


def test_secrets_are_stored_but_never_shown(service: DestinationService) -> None:
    hook = service.create(
        {
            "display_name": "ops hook",
            "config": {
                "generic_webhook": {"url": "https://example.com/h", "password": "pw", "username": "u"}
            },
        }
    )
    slack = service.create({"display_name": "slack", "config": {"slack": {"url": SLACK}}})
    mail = service.create({"display_name": "mail", "config": {"email": {"addresses": ["a@example.com"]}}})

    assert service.get(hook.id).config == {"url": "https://example.com/h", "password": "pw", "username": "u"}
    assert render_destination(service.get(hook.id)) == {
        "id": hook.id,
        "display_name": "ops hook",
        "destination_type": "WEBHOOK",
        "config": {"generic_webhook": {"url_set": True, "username_set": True, "password_set": True}},
    }
    assert render_destination(slack)["config"] == {"slack": {"url_set": True}}
    assert render_destination(mail)["config"] == {"email": {"addresses": ["a@example.com"]}}
    assert render_destination(slack, with_config=False) == {
        "id": slack.id,
        "display_name": "slack",
        "destination_type": "SLACK",
    }
    assert "XXXX" not in repr(slack) and "pw" not in repr(service.get(hook.id))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"config": {"slack": {"url": SLACK}}}, "display_name is required and must be a non-empty string"),
        (
            {"display_name": "x" * 256, "config": {"slack": {"url": SLACK}}},
            "display_name must be at most 255",
        ),
        ({"display_name": "d"}, "config is required: wrap exactly one of generic_webhook, slack"),
        ({"display_name": "d", "config": {}}, "config must wrap exactly one of"),
        (
            {"display_name": "d", "config": {"slack": {"url": SLACK}, "email": {"addresses": ["a@b.c"]}}},
            "config must wrap exactly one of",
        ),
        (
            {"display_name": "d", "config": {"pagerduty": {"integration_key": "k"}}},
            "config.pagerduty cannot be used",
        ),
        ({"display_name": "d", "config": {"slack": {}}}, "config.slack.url is required"),
        ({"display_name": "d", "config": {"slack": {"url": "ftp://x"}}}, "config.slack.url must be an http"),
        (
            {"display_name": "d", "config": {"slack": {"url": SLACK, "oauth_token": "t"}}},
            "config.slack.oauth_token is not supported: Floe posts to webhook URLs",
        ),
        (
            {"display_name": "d", "config": {"microsoft_teams": {"app_id": "a", "url": SLACK}}},
            "config.microsoft_teams.app_id is not supported",
        ),
        (
            {"display_name": "d", "config": {"generic_webhook": {"url": SLACK, "header": "x"}}},
            "config.generic_webhook.header is not a field of generic_webhook",
        ),
        (
            {"display_name": "d", "config": {"generic_webhook": {"url": SLACK, "password": 5}}},
            "config.generic_webhook.password must be a string.$",
        ),
        (
            {"display_name": "d", "config": {"email": {"addresses": []}}},
            "config.email.addresses must be a non-empty",
        ),
        (
            {"display_name": "d", "config": {"email": {"addresses": ["ok@example.com", "nope"]}}},
            r"config.email.addresses\[1\] must be an email address; got 'nope'",
        ),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(
    service: DestinationService, body: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        service.create(body)


def test_an_update_merges_keeps_secrets_and_cannot_change_the_type(service: DestinationService) -> None:
    hook = service.create(
        {
            "display_name": "hook",
            "config": {"generic_webhook": {"url": "https://example.com/a", "password": "pw"}},
        }
    )
    renamed = service.update(hook.id, {"display_name": "renamed"})
    assert renamed.display_name == "renamed" and renamed.config["password"] == "pw"
    # a client echoing what it read (`*_set`) changes nothing it did not send
    echoed = service.update(
        hook.id, {"config": {"generic_webhook": {"url_set": True, "password_set": True, "username": "u"}}}
    )
    assert echoed.config == {"url": "https://example.com/a", "password": "pw", "username": "u"}
    cleared = service.update(hook.id, {"config": {"generic_webhook": {"password": ""}}})
    assert cleared.config == {"url": "https://example.com/a", "username": "u"}

    with pytest.raises(InvalidParameterValue, match="At least one of display_name and config is required"):
        service.update(hook.id, {})
    with pytest.raises(
        InvalidParameterValue, match=rf"config.slack cannot change the type of destination {hook.id}"
    ):
        service.update(hook.id, {"config": {"slack": {"url": SLACK}}})
    assert service.get(hook.id).type is DestinationType.WEBHOOK


def test_unknown_ids_are_not_found(service: DestinationService) -> None:
    for bad in ("0d3f0c4e-0000-4000-8000-000000000000", "../etc", "a" * 100, ""):
        with pytest.raises(DestinationNotFound, match=r"Notification destination .* does not exist"):
            service.get(bad)
    assert service.find("nope") is None
    hook = service.create({"display_name": "d", "config": {"slack": {"url": SLACK}}})
    service.delete(hook.id)
    with pytest.raises(DestinationNotFound):
        service.delete(hook.id)
    with pytest.raises(DestinationNotFound):
        service.update(hook.id, {"display_name": "x"})


def test_listing_pages_through_every_destination(service: DestinationService) -> None:
    made = {
        service.create({"display_name": f"d{i}", "config": {"slack": {"url": SLACK}}}).id for i in range(5)
    }
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page, token = service.list(page_size=2, page_token=token)
        seen += [d.id for d in page]
        pages += 1
        if token is None:
            break
    assert pages == 3 and sorted(seen) == sorted(made) and seen == sorted(seen)
    with pytest.raises(InvalidParameterValue, match="page_token is not a page token this server issued"):
        service.list(page_token="!!!")
    with pytest.raises(InvalidParameterValue, match="page_size must be between 1 and 100"):
        service.list(page_size=101)
