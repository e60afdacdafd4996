"""Notifications: job- and task-level `email_notifications` / `webhook_notifications`, duration warnings
from `health.rules`, and the notification destinations webhooks are sent to.

- `rules`: which notices a change of a run triggers (pure).
- `messages`: what a notice says, as an email, a generic webhook payload, a Slack or a Teams message (pure).
- `delivery`: sending one email (SMTP) or one webhook POST, and which failures are worth a retry.
- `pool`: the threads deliveries run on, so nothing in a run's path waits for a server.
- `destinations`: the `/api/2.0/notification-destinations` resources and their storage.
- `notifier`: `Notifier`, the hooks `core.handlers.Floe` wires to the run service and the tick.
"""

from core.notify.delivery import BACKOFF_SECONDS, DeliveryError, EmailSender, SmtpConfig, WebhookSender, sign
from core.notify.destinations import (
    Destination,
    DestinationNotFound,
    DestinationService,
    DestinationType,
    render_destination,
)
from core.notify.messages import (
    Message,
    describe,
    email_message,
    generic_payload,
    slack_payload,
    teams_payload,
)
from core.notify.notifier import Notifier
from core.notify.pool import DeliveryPool
from core.notify.rules import Notice, NotifyEvent, Recipients

__all__ = [
    "BACKOFF_SECONDS",
    "DeliveryError",
    "DeliveryPool",
    "Destination",
    "DestinationNotFound",
    "DestinationService",
    "DestinationType",
    "EmailSender",
    "Message",
    "Notice",
    "Notifier",
    "NotifyEvent",
    "Recipients",
    "SmtpConfig",
    "WebhookSender",
    "describe",
    "email_message",
    "generic_payload",
    "render_destination",
    "sign",
    "slack_payload",
    "teams_payload",
]
