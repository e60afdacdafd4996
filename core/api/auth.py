"""Bearer-token authentication of `/api/` calls. Messages never repeat the token."""

from __future__ import annotations

from core.api.service import FloeService
from core.errors import Unauthenticated


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate(floe: FloeService, authorization: str | None) -> str:
    """The calling user's name; raises `Unauthenticated` (401) for a missing or unknown token."""
    token = bearer_token(authorization)
    if token is None:
        raise Unauthenticated("Missing credentials: send the header 'Authorization: Bearer <token>'.")
    user = floe.authenticate(token)
    if user is None:
        raise Unauthenticated("Invalid access token.")
    return user
