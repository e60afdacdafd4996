"""The webhook trigger's service over a real Floe on SQLite: signatures, parameters, delivery ids, secrets."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import FakeClock
from core.engine.states import TriggerType
from core.errors import InvalidParameterValue, JobNotFound, Unauthenticated
from core.handlers import Floe
from core.model import validate_job_settings
from core.settings import Settings
from core.store import Storage
from core.webhooks import MAX_DELIVERY_ID, MAX_PARAMETERS_BYTES, WebhookService

BAD_SIGNATURE = "X-Floe-Signature does not match the request body"
MISSING_SIGNATURE = "X-Floe-Signature is missing or malformed"


@pytest.fixture
def floe(tmp_path: Path, sqlite_storage: Storage) -> Iterator[Floe]:
    settings = Settings(home=tmp_path / "home", workspace=tmp_path)
    floe = Floe(settings, sqlite_storage, clock=FakeClock(), host_id="h1", run_tasks=False)
    yield floe


@pytest.fixture
def hooks(floe: Floe) -> WebhookService:
    return floe.webhooks


def _job(floe: Floe, *parameters: tuple[str, str]) -> int:
    body = {
        "name": "hooked",
        "max_concurrent_runs": 10,
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "x.py"}}],
        "parameters": [{"name": name, "default": default} for name, default in parameters],
    }
    return floe.create_job(validate_job_settings(body), creator="me")


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _run_ids(floe: Floe, job_id: int) -> list[int]:
    page = floe.list_runs(
        job_id=job_id,
        active_only=False,
        completed_only=False,
        run_type=None,
        start_time_from=None,
        start_time_to=None,
        limit=25,
        offset=0,
        page_token=None,
    )
    return [view.run.run_id for view in page.runs]


# ------------------------------------------------------------------------------------------ signatures


def test_a_signed_delivery_starts_a_run_with_the_declared_parameters(
    floe: Floe, hooks: WebhookService
) -> None:
    job_id = _job(floe, ("branch", "main"), ("count", "0"), ("untouched", "kept"))
    secret = hooks.rotate_secret(job_id)
    body = json.dumps({"branch": "release", "count": 3, "extra": "ignored", "nested": {"a": 1}}).encode()

    run = hooks.deliver(job_id, body, _sign(secret, body), None)

    assert run.job_id == job_id
    assert dict(run.job_parameters) == {"branch": "release", "count": "3", "untouched": "kept"}
    assert run.trigger is TriggerType.ONE_TIME
    assert run.trigger_info == {}
    assert run.creator_user_name == "webhook"
    assert _run_ids(floe, job_id) == [run.run_id]


@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        ("text", "text"),
        ("", ""),
        (7, "7"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1,"a"]'),
        ({"k": "é"}, '{"k":"é"}'),
    ],
)
def test_parameter_values_are_strings_as_they_are_and_other_json_compact(
    floe: Floe, hooks: WebhookService, value: object, parameter: str
) -> None:
    job_id = _job(floe, ("p", "default"))
    secret = hooks.rotate_secret(job_id)
    body = json.dumps({"p": value}, ensure_ascii=False).encode()

    assert hooks.deliver(job_id, body, _sign(secret, body), None).job_parameters["p"] == parameter


@pytest.mark.parametrize("body", [b"", b"  \n", b"{}"])
def test_an_empty_body_runs_with_the_defaults(floe: Floe, hooks: WebhookService, body: bytes) -> None:
    job_id = _job(floe, ("p", "default"))
    secret = hooks.rotate_secret(job_id)

    assert dict(hooks.deliver(job_id, body, _sign(secret, body), None).job_parameters) == {"p": "default"}


def test_an_uppercase_hex_digest_and_surrounding_spaces_are_accepted(
    floe: Floe, hooks: WebhookService
) -> None:
    job_id = _job(floe)
    secret = hooks.rotate_secret(job_id)
    signature = _sign(secret, b"{}")

    hooks.deliver(job_id, b"{}", "  sha256=" + signature.removeprefix("sha256=").upper() + " ", None)

    assert len(_run_ids(floe, job_id)) == 1


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, MISSING_SIGNATURE),
        ("", MISSING_SIGNATURE),
        ("sha256=", MISSING_SIGNATURE),
        ("sha1=" + "0" * 40, MISSING_SIGNATURE),
        ("sha256=" + "g" * 64, MISSING_SIGNATURE),
        ("sha256=" + "0" * 63, MISSING_SIGNATURE),
        ("sha256=" + "é" * 64, MISSING_SIGNATURE),
        ("sha256=" + "0" * 64, BAD_SIGNATURE),
    ],
)
def test_a_missing_malformed_or_wrong_signature_starts_nothing(
    floe: Floe, hooks: WebhookService, signature: str | None, message: str
) -> None:
    job_id = _job(floe)
    hooks.rotate_secret(job_id)

    with pytest.raises(Unauthenticated, match=message):
        hooks.deliver(job_id, b"{}", signature, "d-1")

    assert _run_ids(floe, job_id) == []


def test_a_signature_of_another_body_or_under_another_secret_is_refused(
    floe: Floe, hooks: WebhookService
) -> None:
    job_id = _job(floe, ("p", "x"))
    secret = hooks.rotate_secret(job_id)

    with pytest.raises(Unauthenticated, match=BAD_SIGNATURE):
        hooks.deliver(job_id, b'{"p": "evil"}', _sign(secret, b'{"p": "good"}'), None)
    with pytest.raises(Unauthenticated, match=BAD_SIGNATURE):
        hooks.deliver(job_id, b"{}", _sign("whsec_guessed", b"{}"), None)

    assert _run_ids(floe, job_id) == []


def test_a_missing_job_and_a_job_without_secret_look_like_a_wrong_signature(
    floe: Floe, hooks: WebhookService
) -> None:
    without_secret = _job(floe)
    signature = _sign("anything", b"{}")
    messages = []
    for job_id in (without_secret, 999_999_999, None):
        with pytest.raises(Unauthenticated) as caught:
            hooks.deliver(job_id, b"{}", signature, None)
        messages.append(caught.value.message)

    assert len(set(messages)) == 1 and messages[0].startswith(BAD_SIGNATURE)
    assert _run_ids(floe, without_secret) == []


# ------------------------------------------------------------------------------------------------ body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "body must be a JSON object, not an array"),
        (b'"text"', "body must be a JSON object, not a string"),
        (b"42", "body must be a JSON object, not a number"),
        (b"null", "body must be a JSON object, not null"),
        (b"{not json", "body must be a JSON object .*not valid JSON: Expecting property name"),
        (b'{"p": NaN}', "body must be a JSON object .*NaN is not valid JSON"),
        (b"\xff\xfe\x00", "body must be a JSON object .*not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body must be a JSON object nested at most"),
    ],
)
def test_a_signed_body_that_is_not_a_json_object_is_invalid(
    floe: Floe, hooks: WebhookService, body: bytes, message: str
) -> None:
    job_id = _job(floe, ("p", "x"))
    secret = hooks.rotate_secret(job_id)

    with pytest.raises(InvalidParameterValue, match=message):
        hooks.deliver(job_id, body, _sign(secret, body), None)

    assert _run_ids(floe, job_id) == []


def test_parameter_values_too_large_for_a_run_are_refused(floe: Floe, hooks: WebhookService) -> None:
    job_id = _job(floe, ("p", "x"))
    secret = hooks.rotate_secret(job_id)
    body = json.dumps({"p": "x" * MAX_PARAMETERS_BYTES, "ignored": "y" * 100_000}).encode()

    with pytest.raises(InvalidParameterValue, match=rf"body must carry at most {MAX_PARAMETERS_BYTES} bytes"):
        hooks.deliver(job_id, body, _sign(secret, body), None)

    small = json.dumps({"p": "x" * 1000, "ignored": "y" * 100_000}).encode()
    assert hooks.deliver(job_id, small, _sign(secret, small), None).job_parameters["p"] == "x" * 1000


# ---------------------------------------------------------------------------------------- delivery ids


def test_a_replayed_delivery_returns_the_run_the_first_one_started(floe: Floe, hooks: WebhookService) -> None:
    job_id = _job(floe, ("p", "x"))
    secret = hooks.rotate_secret(job_id)
    body = b'{"p": "first"}'

    first = hooks.deliver(job_id, body, _sign(secret, body), "gh-1234")
    again = hooks.deliver(job_id, body, _sign(secret, body), "gh-1234")
    other = hooks.deliver(job_id, body, _sign(secret, body), "gh-1235")

    assert again.run_id == first.run_id != other.run_id
    assert first.trigger_info == {"webhook_delivery_id": "gh-1234"}
    assert first.idempotency_token == "webhook-gh-1234"
    assert sorted(_run_ids(floe, job_id)) == sorted([first.run_id, other.run_id])


def test_the_same_delivery_id_for_another_job_starts_that_jobs_run(floe: Floe, hooks: WebhookService) -> None:
    one, two = _job(floe), _job(floe)
    runs = [hooks.deliver(j, b"", _sign(hooks.rotate_secret(j), b""), "same").run_id for j in (one, two)]

    assert _run_ids(floe, one) == runs[:1] and _run_ids(floe, two) == runs[1:]


@pytest.mark.parametrize(
    "delivery_id",
    ["", "has space", "a/b", "é", "x" * (MAX_DELIVERY_ID + 1), "tab\t", "semi;colon"],
)
def test_a_malformed_delivery_id_is_invalid_and_starts_nothing(
    floe: Floe, hooks: WebhookService, delivery_id: str
) -> None:
    job_id = _job(floe)
    secret = hooks.rotate_secret(job_id)

    with pytest.raises(
        InvalidParameterValue,
        match=rf"^X-Floe-Delivery must be 1 to {MAX_DELIVERY_ID} characters of letters, digits and \. _ : -",
    ):
        hooks.deliver(job_id, b"{}", _sign(secret, b"{}"), delivery_id)

    assert _run_ids(floe, job_id) == []


@pytest.mark.parametrize(
    "delivery_id", ["1", "x" * MAX_DELIVERY_ID, "72d3162e-cc78-11e3-81ab-4c9367dc0958", "evt_1.a:b-c"]
)
def test_well_formed_delivery_ids_are_accepted(floe: Floe, hooks: WebhookService, delivery_id: str) -> None:
    job_id = _job(floe)
    secret = hooks.rotate_secret(job_id)

    run = hooks.deliver(job_id, b"{}", _sign(secret, b"{}"), delivery_id)

    assert run.idempotency_token == f"webhook-{delivery_id}"


def test_the_signature_is_checked_before_the_delivery_id(floe: Floe, hooks: WebhookService) -> None:
    job_id = _job(floe)
    hooks.rotate_secret(job_id)

    with pytest.raises(Unauthenticated):
        hooks.deliver(job_id, b"{}", "sha256=" + "0" * 64, "bad id")


# --------------------------------------------------------------------------------------------- secrets


def test_rotating_replaces_the_secret(floe: Floe, hooks: WebhookService) -> None:
    job_id = _job(floe)
    old = hooks.rotate_secret(job_id)
    new = hooks.rotate_secret(job_id)

    assert old != new and old.startswith("whsec_") and new.startswith("whsec_") and len(new) > 40
    with pytest.raises(Unauthenticated, match=BAD_SIGNATURE):
        hooks.deliver(job_id, b"{}", _sign(old, b"{}"), None)
    hooks.deliver(job_id, b"{}", _sign(new, b"{}"), None)
    assert len(_run_ids(floe, job_id)) == 1


def test_a_secret_needs_an_existing_job(hooks: WebhookService) -> None:
    with pytest.raises(JobNotFound, match="Job 12345 does not exist"):
        hooks.rotate_secret(12345)


def test_deleting_the_job_forgets_its_secret(floe: Floe, hooks: WebhookService) -> None:
    job_id = _job(floe)
    secret = hooks.rotate_secret(job_id)

    floe.delete_job(job_id)

    assert floe.repo.meta.get("webhook", f"{job_id:016d}") is None
    with pytest.raises(Unauthenticated, match=BAD_SIGNATURE):
        hooks.deliver(job_id, b"{}", _sign(secret, b"{}"), None)


def test_forget_is_idempotent(floe: Floe, hooks: WebhookService) -> None:
    job_id = _job(floe)
    hooks.forget(job_id)  # never had one
    secret = hooks.rotate_secret(job_id)
    hooks.forget(job_id)
    hooks.forget(job_id)

    with pytest.raises(Unauthenticated, match=BAD_SIGNATURE):
        hooks.deliver(job_id, b"{}", _sign(secret, b"{}"), None)


def test_secrets_reach_no_log_no_error_and_no_repr(
    floe: Floe, hooks: WebhookService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job_id = _job(floe, ("p", "x"))
    secret = hooks.rotate_secret(job_id)
    errors = []
    for body, signature, delivery in (
        (b"{}", _sign(secret, b"{}"), "ok-1"),
        (b"{}", _sign(secret, b"other"), None),
        (b"{}", secret, None),
        (b"[]", _sign(secret, b"[]"), None),
    ):
        try:
            hooks.deliver(job_id, body, signature, delivery)
        except (Unauthenticated, InvalidParameterValue) as exc:
            errors.append(exc.message)

    assert len(errors) == 3
    assert secret not in caplog.text
    assert not any(secret in message for message in errors)
    assert secret not in repr(hooks) and secret not in repr(floe.__dict__.get("webhooks"))
