"""Floe's errors, each carrying the Databricks error code and HTTP status it is reported with.

Every error a user can cause is a `FloeError`. The API turns one into the Databricks shape
`{"error_code": ..., "message": ...}` with `http_status`; messages name the field, the value and the rule.
"""

from __future__ import annotations


class FloeError(Exception):
    """Base of every error Floe reports to a caller."""

    error_code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterValue(FloeError, ValueError):
    """A request field (or a job setting) breaks a rule; the message names field, value and rule."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class MalformedRequest(FloeError, ValueError):
    """The request body is not JSON, or not a JSON object."""

    error_code = "MALFORMED_REQUEST"
    http_status = 400


class InvalidState(FloeError):
    """The request is well-formed but the resource's state forbids it (e.g. deleting an active run)."""

    error_code = "INVALID_STATE"
    http_status = 400


class NotFound(FloeError, LookupError):
    """A job, run or other resource does not exist.

    The Jobs API reports a missing job or run as 400 INVALID_PARAMETER_VALUE with the wording
    "Job 123 does not exist." / "Run 456 does not exist."; the Databricks SDK recognises exactly that
    wording and raises `ResourceDoesNotExist`, so it is kept.
    """

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident} does not exist.")
        self.kind = kind
        self.ident = ident


class JobNotFound(NotFound):
    def __init__(self, job_id: int) -> None:
        super().__init__("Job", job_id)


class RunNotFound(NotFound):
    def __init__(self, run_id: int) -> None:
        super().__init__("Run", run_id)


class ResourceDoesNotExist(FloeError, LookupError):
    """A resource outside the Jobs API (a path, a cluster) is missing: 404 as Databricks answers it."""

    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class ResourceConflict(FloeError):
    error_code = "RESOURCE_CONFLICT"
    http_status = 409


class Unauthenticated(FloeError):
    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(FloeError):
    error_code = "PERMISSION_DENIED"
    http_status = 403


class RequestLimitExceeded(FloeError):
    """Too many requests: answered 429 with `Retry-After`, which the SDK and Airflow honour."""

    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 429

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class StorageError(FloeError):
    """The storage backend failed in a way the caller cannot fix (reported as 503 so clients retry)."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class SchemaVersionError(FloeError):
    """A persisted record was written by a newer Floe than the one reading it."""

    error_code = "INTERNAL_ERROR"
    http_status = 500
