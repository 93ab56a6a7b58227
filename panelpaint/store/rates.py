"""How fast a batch's own workers finish its pages, measured from its renders, for its ETA.

The rate is the batch's recent throughput: pages finished over the time from the first of them
starting to the last finishing. However many workers share the batch, that is what they achieve
together, on this batch's pages, at its work size; no figure from another machine goes in.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.store.schema import Page, Render, RunStatus, as_utc

# The most recent finished pages the rate is measured over: recent enough to follow a change in
# the number of workers, enough to smooth one slow page.
RATE_WINDOW = 20


@dataclass(frozen=True)
class BatchRate:
    """`pages` finished in `seconds` of wall time (throughput), each taking `page_seconds` on average
    from its claim to its end (latency)."""

    pages: int
    seconds: float
    page_seconds: float

    @property
    def seconds_per_page(self) -> float:
        return self.seconds / self.pages

    def eta_seconds(self, remaining: int) -> float:
        """Seconds until `remaining` more pages are done at this rate."""
        return remaining * self.seconds_per_page

    def as_dict(self) -> dict[str, float]:
        return {"pages": self.pages, "seconds_per_page": round(self.seconds_per_page, 2),
                "page_seconds": round(self.page_seconds, 2)}


def batch_rate(session: Session, batch_id: int, window: int = RATE_WINDOW) -> BatchRate | None:
    """The batch's rate over its last `window` finished page renders; None before the first."""
    rows = session.execute(
        sa.select(Render.started_at, Render.finished_at).join(Page, Page.id == Render.page_id)
        .where(Page.batch_id == batch_id, Render.panel_id.is_(None), Render.variant_set_id.is_(None),
               Render.status == RunStatus.succeeded, Render.started_at.is_not(None), Render.finished_at.is_not(None))
        .order_by(Render.finished_at.desc()).limit(window)
    ).all()
    if not rows:
        return None
    starts, ends = [as_utc(r.started_at) for r in rows], [as_utc(r.finished_at) for r in rows]
    # A floor of a tenth of a second: two pages finished in the same instant are not infinitely fast.
    span = max((max(ends) - min(starts)).total_seconds(), 0.1)
    latency = sum((e - s).total_seconds() for s, e in zip(starts, ends)) / len(rows)
    return BatchRate(len(rows), span, max(latency, 0.0))
