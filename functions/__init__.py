"""Floe's Azure Functions, one Blueprint per trigger family, registered by the root `function_app.py`.

Each function decodes its binding and calls one entry point of the process's `Floe` (`functions.root`,
the composition root): `http` serves the Jobs API, `tick` is the timer, `work` / `work_poison` handle the
`floe-work` queue and its poison queue, `blob_created` turns Event Grid events into file arrivals.
Importing this package imports no part of Floe's engine: that happens on the first invocation.
"""

from __future__ import annotations

from functions import events, http, queues, timer

BLUEPRINTS = (http.bp, timer.bp, queues.bp, events.bp)

__all__ = ["BLUEPRINTS"]
