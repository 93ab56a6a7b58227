"""URLs of the rows a status view lists, built once per process and mount point: a batch's status
names a few URLs per page and is polled many times a second, and Werkzeug's URL building was a
third of its cost (docs/benchmarks.md, "Load")."""
from __future__ import annotations

import functools

from flask import request, url_for


def row_url(endpoint: str, **values: int | str) -> str:
    """`url_for(endpoint, **values)` (a path under the app's mount point), remembered."""
    return _built(request.script_root, endpoint, tuple(sorted(values.items())))


@functools.lru_cache(maxsize=16384)
def _built(script_root: str, endpoint: str, values: tuple[tuple[str, int | str], ...]) -> str:
    return url_for(endpoint, **dict(values))
