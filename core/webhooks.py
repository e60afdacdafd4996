"""The webhook trigger: a signed HTTP request starts a run of one job.

Each job may have one webhook secret (`rotate_secret`, shown once; rotating replaces it). A delivery is a
request body signed with it: `X-Floe-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>`. The
body is a JSON object (or empty); its fields that name one of the job's declared parameters become the
run's `job_parameters` (strings as they are, any other JSON value as compact JSON), the rest are ignored.

An optional delivery id (`X-Floe-Delivery`) makes a delivery idempotent: it becomes the run-now
idempotency token `webhook-<id>` in the job's scope, so a replayed delivery returns the run the first one
started. (A run-now call with that same token finds the same run.)

Every way a delivery can fail to authenticate - no or malformed signature, a wrong one, a job without a
secret, a job that does not exist - is `Unauthenticated` (401), checked before anything else. Its message
tells a malformed header from a mismatch, and never depends on the job, so an unsigned caller learns
nothing about which jobs exist. Secrets are stored as they are in the `meta` table (`webhook` / padded job
id): verifying an HMAC needs the key itself, unlike bearer tokens, of which only hashes are kept. They are
never logged, never put in an error message, and not held by the service (its repr shows none).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import Any

from core.clock import Clock, to_millis
from core.engine.records import Run
from core.engine.states import TriggerType
from core.errors import JobNotFound, Unauthenticated
from core.jobs import JobService
from core.model import validate_run_now
from core.model.base import invalid, json_type, reject_json_constant
from core.model.jobs import MAX_IDEMPOTENCY_TOKEN
from core.repository import Repository
from core.store import Entity

log = logging.getLogger("floe.webhooks")

SIGNATURE_HEADER = "X-Floe-Signature"
DELIVERY_HEADER = "X-Floe-Delivery"
SECRET_PREFIX = "whsec_"
CREATOR = "webhook"
TOKEN_PREFIX = "webhook-"
# The delivery id must fit in a run-now idempotency token once prefixed.
MAX_DELIVERY_ID = MAX_IDEMPOTENCY_TOKEN - len(TOKEN_PREFIX)
# Job parameters are stored inline on the run entity, so the mapped values are bounded like run-now's
# legacy parameter maps.
MAX_PARAMETERS_BYTES = 10_000

_PARTITION = "webhook"
_DELIVERY_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_DELIVERY_ID}}}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_BAD_SIGNATURE = (
    f"{SIGNATURE_HEADER} does not match the request body: sign the exact body bytes with HMAC-SHA256 and "
    "the job's current webhook secret, and send 'sha256=<hex digest>'."
)


class WebhookService:
    def __init__(self, repo: Repository, jobs: JobService, clock: Clock) -> None:
        self.repo = repo
        self.jobs = jobs
        self.clock = clock

    def __repr__(self) -> str:
        return "WebhookService()"

    def rotate_secret(self, job_id: int) -> str:
        """Give job `job_id` a new webhook secret and return it; the previous one stops working at once.
        Raises `JobNotFound`. The secret is not shown again."""
        self.repo.get_job(job_id)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        created = to_millis(self.clock.now())
        self.repo.meta.upsert(Entity(_PARTITION, _row(job_id), {"secret": secret, "created": created}))
        log.info("rotated the webhook secret of job %s", job_id)
        return secret

    def forget(self, job_id: int) -> None:
        """Delete job `job_id`'s webhook secret, if it has one (idempotent; called when a job is deleted)."""
        self.repo.meta.delete(_PARTITION, _row(job_id))

    def deliver(self, job_id: int | None, body: bytes, signature: str | None, delivery_id: str | None) -> Run:
        """Start a run of job `job_id` from a signed delivery, or return the run an earlier delivery with the
        same `delivery_id` started. `job_id` None (a URL naming no valid id) is answered like a job that
        does not exist.

        Raises `Unauthenticated` unless `signature` is the HMAC of `body` under the job's secret (a wrong
        signature, a job without a secret and a missing job get one message); then
        `InvalidParameterValue` for a malformed delivery id, a body that is not a JSON object, or parameter
        values too large to keep on a run.
        """
        job_id = self._verify(job_id, body, signature)
        if delivery_id is not None:
            _check_delivery_id(delivery_id)
        try:
            spec = self.repo.load_spec(self.repo.get_job(job_id).spec_ref)
        except JobNotFound:  # deleted after its secret was read
            raise Unauthenticated(_BAD_SIGNATURE) from None
        declared = {str(p.get("name")) for p in spec.get("parameters") or ()}
        fields = _parse_body(body)
        parameters = {name: _as_parameter(value) for name, value in fields.items() if name in declared}
        size = len(json.dumps(parameters, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_PARAMETERS_BYTES:
            raise invalid(
                "body",
                f"must carry at most {MAX_PARAMETERS_BYTES} bytes of job parameter values as JSON "
                f"(the fields {', '.join(sorted(parameters))} make {size})",
            )
        request: dict[str, Any] = {"job_id": job_id, "job_parameters": parameters}
        if delivery_id is not None:
            request["idempotency_token"] = TOKEN_PREFIX + delivery_id
        run = self.jobs.run_now(
            validate_run_now(request),
            creator=CREATOR,
            trigger=TriggerType.ONE_TIME,  # the Jobs API's TriggerType has no WEBHOOK
            trigger_info={"webhook_delivery_id": delivery_id} if delivery_id is not None else {},
        )
        log.info("webhook delivery %s: run %s of job %s", delivery_id or "(no id)", run.run_id, job_id)
        return run

    def _verify(self, job_id: int | None, body: bytes, signature: str | None) -> int:
        """`job_id` once `signature` is proven to be the HMAC of `body` under its secret."""
        match = _SIGNATURE.fullmatch((signature or "").strip())
        if match is None:
            raise Unauthenticated(
                f"{SIGNATURE_HEADER} is missing or malformed: send 'sha256=<64 hex digits>', the HMAC-SHA256 "
                "of the exact request body under the job's webhook secret."
            )
        entity = None if job_id is None else self.repo.meta.get(_PARTITION, _row(job_id))
        secret = str(entity.get("secret") or "") if entity is not None else ""
        # Without a secret, an HMAC under a throwaway key is still computed, so that the time taken does not
        # tell an unsigned caller whether the job has one.
        key = secret.encode() if secret else secrets.token_bytes(32)
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        if job_id is None or not secret or not hmac.compare_digest(expected, match.group(1).lower()):
            raise Unauthenticated(_BAD_SIGNATURE)
        return job_id


def _row(job_id: int) -> str:
    return f"{job_id:016d}"


def _parse_body(body: bytes) -> dict[str, Any]:
    """The delivery's fields: a JSON object; an empty body is `{}`."""
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body, parse_constant=reject_json_constant)
    except RecursionError:
        raise invalid("body", "must be a JSON object nested at most a few hundred levels deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN / Infinity
        raise invalid(
            "body", f"must be a JSON object (UTF-8 JSON text); it is not valid JSON: {exc}"
        ) from None
    if not isinstance(parsed, dict):
        raise invalid("body", f"must be a JSON object, not {json_type(parsed)}")
    return parsed


def _as_parameter(value: Any) -> str:
    """A job parameter value: strings as they are, any other JSON value as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        raise invalid("body", "has a parameter value nested too deeply to pass on as JSON") from None


def _check_delivery_id(delivery_id: str) -> None:
    if _DELIVERY_ID.fullmatch(delivery_id) is None:
        raise invalid(
            DELIVERY_HEADER,
            f"must be 1 to {MAX_DELIVERY_ID} characters of letters, digits and . _ : -",
            delivery_id,
        )
