"""Sending one notification once: an email over SMTP, a JSON POST to a webhook. Retrying is the
notifier's business; each send says whether trying again could help (`DeliveryError.retryable`).

Backoff: a failed send is tried again after 1 s, 2 s and 4 s (`BACKOFF_SECONDS`: four attempts in all),
then recorded as failed. Retryable: connection errors and timeouts, SMTP 4xx replies, HTTP 408, 429 and
5xx. Anything else (an SMTP 5xx, an HTTP 4xx, a bad address) is final at once.

Generic webhooks are signed like Floe's webhook trigger (`core.webhooks`): with a password set on the
destination, `X-Floe-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the password>`;
with a username as well, the request also carries HTTP Basic credentials (what Databricks sends).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from core.webhooks import SIGNATURE_HEADER

__all__ = [
    "BACKOFF_SECONDS",
    "DeliveryError",
    "EmailSender",
    "SmtpConfig",
    "WebhookSender",
    "check_address",
    "sign",
]

BACKOFF_SECONDS: tuple[float, ...] = (1.0, 2.0, 4.0)
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Floe-Notifications/1"
MAX_ADDRESS = 254

# Deliberately plain: one @, no spaces, no control characters (a CR/LF would inject mail headers).
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


class DeliveryError(Exception):
    """A send failed; `retryable` says whether the same send may succeed later."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def check_address(address: str) -> str:
    """`address` if it is a plain email address; DeliveryError (final) otherwise."""
    if len(address) > MAX_ADDRESS or _ADDRESS.fullmatch(address) is None:
        raise DeliveryError(f"{address[:80]!r} is not an email address", retryable=False)
    return address


def sign(secret: str, body: bytes) -> str:
    """The `X-Floe-Signature` value of `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SmtpConfig:
    """Where emails go (from `FLOE_SMTP_*`); no host means emails are not sent."""

    host: str = ""
    port: int = 25
    security: str = "none"  # "none" | "starttls" | "ssl"
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "floe@localhost"

    @property
    def configured(self) -> bool:
        return bool(self.host)


class EmailSender:
    def __init__(self, config: SmtpConfig, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.config = config
        self.timeout = timeout

    @property
    def configured(self) -> bool:
        return self.config.configured

    def send(self, mail: EmailMessage) -> None:
        """Send one message over a new connection. Raises DeliveryError."""
        config = self.config
        try:
            if config.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=self.timeout)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if config.user:
                    smtp.login(config.user, config.password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as refused:
            codes = sorted({code for code, _ in refused.recipients.values()})
            raise DeliveryError(
                f"the SMTP server refused the recipient(s) ({', '.join(map(str, codes))})",
                retryable=all(400 <= c < 500 for c in codes),
            ) from None
        except smtplib.SMTPResponseException as reply:
            text = reply.smtp_error.decode(errors="replace") if isinstance(reply.smtp_error, bytes) else ""
            raise DeliveryError(
                f"the SMTP server answered {reply.smtp_code} {text}".strip(),
                retryable=400 <= reply.smtp_code < 500,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS failures
            raise DeliveryError(
                f"could not talk to SMTP server {config.host}:{config.port}: {_reason(exc)}", retryable=True
            ) from None


class WebhookSender:
    """POSTs JSON with one shared HTTP client (thread-safe); redirects are not followed."""

    def __init__(
        self, *, timeout: float = TIMEOUT_SECONDS, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

    def post(self, url: str, payload: dict[str, Any], *, secret: str = "", username: str = "") -> None:
        """POST `payload` as JSON to `url`; signed with `secret` when given, with Basic credentials when
        `username` is given too. Raises DeliveryError unless the answer is 2xx."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        auth = httpx.BasicAuth(username, secret) if username and secret else None
        try:
            response = self._client.post(url, content=body, headers=headers, auth=auth)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"could not reach {_safe_url(url)}: {_reason(exc)}", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status in (408, 429) or status >= 500
        raise DeliveryError(f"{_safe_url(url)} answered HTTP {status}", retryable=retryable)

    def close(self) -> None:
        self._client.close()


def _safe_url(url: str) -> str:
    """The URL without its path and query: Slack and Teams webhook URLs carry their secret there."""
    try:
        parsed = httpx.URL(url)
    except Exception:
        return "the webhook URL"
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
