"""Floe: a serverless re-implementation of Databricks Lakeflow Jobs.

`core` is the cloud-agnostic engine. It never imports `azure.functions`; the Azure Functions app in
`functions/` and the local runtime in `core.runtime` both call the entry points in `core.handlers`.
"""

__version__ = "0.1.0"
