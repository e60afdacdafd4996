"""One authenticated API call, as the endpoint functions in `core.api.jobs` and `core.api.runs` see it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.api.service import FloeService
from core.model import parse_bool, parse_id, parse_int

API_VERSIONS = ("2.0", "2.1", "2.2")


@dataclass(frozen=True, slots=True)
class Call:
    floe: FloeService
    version: str  # "2.0" | "2.1" | "2.2"
    params: Mapping[str, Any]  # the query string of a GET (strings), the JSON body of a POST
    user: str
    base_url: str  # e.g. "http://127.0.0.1:8080/", for run_page_url
    now_ms: int

    @property
    def pages_arrays(self) -> bool:
        """API 2.2 returns at most 100 tasks / clusters / parameters per reply, with a page token."""
        return self.version == "2.2"

    @property
    def queue_default(self) -> bool:
        """Jobs created through 2.2 queue by default; through 2.0 and 2.1 they do not."""
        return self.version == "2.2"

    def get_id(self, name: str) -> int:
        return parse_id(self.params.get(name), name)

    def get_optional_id(self, name: str) -> int | None:
        value = self.params.get(name)
        return None if value is None or value == "" else parse_id(value, name)

    def get_bool(self, name: str) -> bool:
        return parse_bool(self.params.get(name), name)

    def get_int(self, name: str, *, min: int, max: int | None = None, default: int) -> int:
        return parse_int(self.params.get(name), name, min=min, max=max, default=default)

    def get_optional_int(self, name: str, *, min: int) -> int | None:
        value = self.params.get(name)
        return None if value is None or value == "" else parse_int(value, name, min=min, default=0)

    def page_token(self) -> str | None:
        """An empty `page_token=` (Airflow's first page) means no token."""
        value = self.params.get("page_token")
        return None if value is None or value == "" else str(value)


Endpoint = Callable[[Call], dict[str, Any]]
