"""HTTP: every path and method goes to Floe's ASGI app (`core.api.create_app`), the Jobs API and webhooks.

The route is `{*route}` and host.json sets `extensions.http.routePrefix` to "", so `/api/2.2/jobs/...`
reaches the app unchanged. The function is anonymous to the Functions host: Floe checks its own bearer
tokens (and webhook signatures), exactly as `floe serve` does, so the Databricks SDK and CLI work with a
Floe token and no function key.

The app is built on the first request (with the process's `Floe`, see `functions.root`). The function is
async, on the worker's event loop: the app hands every blocking storage call to a thread.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import azure.functions as func

from functions import root

if TYPE_CHECKING:
    from core.handlers import Floe

bp = func.Blueprint()

_asgi: tuple[Floe, func.AsgiMiddleware] | None = None


def _middleware(floe: Floe) -> func.AsgiMiddleware:
    global _asgi
    if _asgi is None or _asgi[0] is not floe:  # a new Floe after `root.reset()`
        from core.api import create_app

        _asgi = (floe, func.AsgiMiddleware(create_app(floe, public_url=floe.settings.public_url)))
    return _asgi[1]


@bp.function_name("http")
@bp.http_type(http_type="asgi")
@bp.route(route="{*route}", methods=list(func.HttpMethod), auth_level=func.AuthLevel.ANONYMOUS)
async def http(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    floe = await asyncio.to_thread(root.floe)  # the first call opens storage: not on the event loop
    return await _middleware(floe).handle_async(req, context)
