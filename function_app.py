"""The Azure Functions entry point (Python v2 programming model). Wiring only: the one `FunctionApp` and
the Blueprints of `functions/`. See the README, "Azure Functions"."""

from __future__ import annotations

import azure.functions as func

from functions import BLUEPRINTS

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
