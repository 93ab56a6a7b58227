"""URL converters: `<id:name>` matches a row id, a whole number 1..ID_MAX (`panelpaint.limits`).

A bigger number, or 0, can name no row, so it answers 404 before any query is built (a number past
the database's integer would otherwise fail inside the driver). The 404 is raised rather than
Werkzeug's ValidationError: that one lets the router go on to a rule of the same path for another
method and answer 405.
"""
from __future__ import annotations

from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from panelpaint.limits import ID_MAX


class IdConverter(BaseConverter):
    regex = r"\d+"
    weight = 50  # as Werkzeug's int converter

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= ID_MAX:
            raise NotFound()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


CONVERTERS = {"id": IdConverter}
