"""The io worker's webhook step: POST one attempt of a delivery and record the answer.

The request is made with the standard library's `urllib.request` (one signed POST with a
timeout needs no HTTP client dependency); redirects are not followed, so the signed body only
ever goes to the URL the studio registered, and a 3xx counts as a failed attempt like any non-2xx.
"""
from __future__ import annotations

import logging
import urllib.error
import urllib.request

from panelpaint.settings import Settings
from panelpaint.store import webhooks
from panelpaint.store.webhooks import Outgoing, Send
from worker.outcome import Outcome
from worker.resources import Resources

log = logging.getLogger(__name__)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201, PLR0913
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(request: Outgoing, timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status, error text): the status None when the endpoint could not be reached in time."""
    req = urllib.request.Request(request.url, data=request.body, headers=request.headers, method="POST")
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"not reached: {reason}"


def deliver(res: Resources, settings: Settings, delivery_id: int, attempt: int) -> dict:
    """Make attempt `attempt` of the delivery: `stale` when it is no longer this attempt's to make."""
    send = Send(delivery_id, attempt)
    with res.store.session() as s:
        request = webhooks.outgoing(s, send)
    if request is None:
        return {"delivery_id": delivery_id, "status": Outcome.STALE}
    code, error = post(request, settings.webhook_timeout_seconds)
    with res.store.session() as s:
        status = webhooks.record_attempt(s, send, code, error, max_attempts=settings.webhook_max_attempts,
                                         backoff_seconds=settings.webhook_backoff_seconds)
    if status is None:
        return {"delivery_id": delivery_id, "status": Outcome.STALE}
    if error:
        log.warning("webhook delivery %s attempt %s: %s (%s)", delivery_id, attempt, error, status.value)
    return {"delivery_id": delivery_id, "attempt": attempt, "status": status.value, "http_status": code}
