"""Sending one email or one webhook, against real servers on loopback (aiosmtpd, http.server)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.notify import DeliveryError, EmailSender, SmtpConfig, WebhookSender, sign
from core.notify.delivery import check_address
from tests.fixtures.receivers import HttpSink, SmtpSink, free_port
from tests.unit.notify.test_messages import RUN, TO

pytestmark = pytest.mark.timeout(30)


def mail(to: str = "ops@example.com") -> object:
    from core.notify import Notice, NotifyEvent, describe, email_message

    return email_message(
        describe(Notice(NotifyEvent.ON_FAILURE, RUN, None, "etl", TO)), sender="floe@example.com", to=[to]
    )


# -- email ----------------------------------------------------------------------------------------------


def test_an_email_reaches_the_smtp_server_with_a_login() -> None:
    with SmtpSink(user="floe", password="s3cret") as sink:
        sender = EmailSender(SmtpConfig(host="127.0.0.1", port=sink.port, user="floe", password="s3cret"))
        sender.send(mail())  # type: ignore[arg-type]
        (got,) = sink.received()
    assert got.sender == "floe@example.com" and got.recipients == ["ops@example.com"]
    assert got.login == "floe"
    assert got.subject == "[Floe] Run failed: etl (run 1234)"


def test_a_wrong_password_is_final_and_a_server_that_is_down_is_worth_a_retry() -> None:
    with SmtpSink(user="floe", password="s3cret") as sink:
        wrong = EmailSender(SmtpConfig(host="127.0.0.1", port=sink.port, user="floe", password="nope"))
        with pytest.raises(DeliveryError, match="the SMTP server answered 535") as refused:
            wrong.send(mail())  # type: ignore[arg-type]
    assert not refused.value.retryable
    down = EmailSender(SmtpConfig(host="127.0.0.1", port=free_port()), timeout=5)
    with pytest.raises(DeliveryError, match=r"could not talk to SMTP server 127\.0\.0\.1:\d+") as failed:
        down.send(mail())  # type: ignore[arg-type]
    assert failed.value.retryable


def test_addresses_that_could_inject_headers_are_refused() -> None:
    assert check_address("ops@example.com") == "ops@example.com"
    for bad in ("ops", "a@b@c", "ops@example.com\r\nBcc: x@evil.example", "<ops@example.com>", "a b@c"):
        with pytest.raises(DeliveryError, match="is not an email address") as refused:
            check_address(bad)
        assert not refused.value.retryable


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1 that the default trust store accepts (SSL_CERT_FILE)."""
    from tests.fixtures.certificates import self_signed_certificate

    cert_file, key_file = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    yield server


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls(certificate: ssl.SSLContext, security: str) -> None:
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    options = {"tls_context": certificate, "require_starttls": True} if security == "starttls" else {}
    if security == "ssl":
        options = {"ssl_context": certificate}
    sink._controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **options)  # type: ignore[arg-type]
    with sink:
        EmailSender(SmtpConfig(host="127.0.0.1", port=sink.port, security=security)).send(mail())  # type: ignore[arg-type]
        assert [m.recipients for m in sink.received()] == [["ops@example.com"]]


# -- webhooks -------------------------------------------------------------------------------------------


def test_a_signed_webhook_carries_the_hmac_of_its_exact_body_and_basic_credentials() -> None:
    with HttpSink() as sink:
        sender = WebhookSender()
        sender.post(f"{sink.url}/hook", {"b": 1, "a": "é"}, secret="pw", username="floe")
        sender.post(f"{sink.url}/plain", {"x": 1})
        sender.close()
        signed, plain = sink.received("/hook")[0], sink.received("/plain")[0]

    expected = "sha256=" + hmac.new(b"pw", signed.body, hashlib.sha256).hexdigest()
    assert signed.headers["x-floe-signature"] == expected == sign("pw", signed.body)
    assert signed.headers["authorization"] == "Basic " + base64.b64encode(b"floe:pw").decode()
    assert signed.headers["content-type"] == "application/json"
    assert json.loads(signed.body) == {"b": 1, "a": "é"}
    assert "x-floe-signature" not in plain.headers and "authorization" not in plain.headers


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (404, False), (400, False)]
)
def test_which_http_answers_are_worth_a_retry(status: int, retryable: bool) -> None:
    with HttpSink() as sink:
        sink.status["/hook"] = status
        sender = WebhookSender()
        with pytest.raises(DeliveryError, match=f"answered HTTP {status}") as failed:
            sender.post(f"{sink.url}/hook?token=secret-in-query", {})
        sender.close()
    assert failed.value.retryable is retryable
    assert "secret" not in failed.value.message and "/hook" not in failed.value.message


def test_a_webhook_that_is_down_is_worth_a_retry_and_its_url_stays_secret() -> None:
    sender = WebhookSender(timeout=5)
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXSECRET"
    with pytest.raises(
        DeliveryError, match=r"could not reach http://127\.0\.0\.1:\d+: ConnectError"
    ) as failed:
        sender.post(url, {})
    sender.close()
    assert failed.value.retryable and "XXXXSECRET" not in failed.value.message
