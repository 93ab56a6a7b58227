"""Review decisions on finished pages and panels: approve or reject, with a comment, by a reviewer."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.limits import TEXT_MAX
from panelpaint.store.db import ROW_LOCK
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import Batch, Page, Panel, Review, ReviewStatus, Role, RunStatus, User
from panelpaint.store.states import check_review

REVIEWER_ROLES = frozenset({Role.admin, Role.reviewer})


def review(
    session: Session,
    page_id: int,
    panel_id: int | None,
    reviewer_id: int,
    decision: ReviewStatus | str,
    comment: str = "",
) -> Review:
    """Approve or reject a finished page (panel_id None) or one panel of it (pending -> decision).

    The reviewer must be an admin or reviewer of the page's studio (`Forbidden` for an artist,
    `NotFound` for another studio). The decision is recorded against the render being judged: the
    page's current render, or the panel's latest succeeded render when it has one.
    """
    try:
        decision = ReviewStatus(decision)
    except ValueError:
        raise InvalidInput(f"decision must be 'approved' or 'rejected', not {decision!r}") from None
    if decision == ReviewStatus.pending:
        raise InvalidInput("decision must be 'approved' or 'rejected'")
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    reviewer = session.get(User, reviewer_id)
    if page is None or reviewer is None or reviewer.studio_id != page.batch.studio_id:
        raise NotFound(f"page {page_id} does not exist")
    if reviewer.role not in REVIEWER_ROLES or not reviewer.is_active:
        raise Forbidden("only reviewers and admins may approve or reject work")
    render_id = page.current_render_id if page.status == RunStatus.succeeded else None
    target: Page | Panel = page
    if panel_id is not None:
        panel = session.get(Panel, panel_id)
        if panel is None or panel.page_id != page_id:
            raise NotFound(f"panel {panel_id} does not exist on page {page_id}")
        # The decision is on what the reviewer sees: the page's result, into which a finished
        # re-render of this panel has been merged (it is then that result itself).
        target = panel
    if render_id is None:
        raise IllegalTransition(f"page {page_id} has no finished render to review")
    check_review(target.review_status, decision)
    target.review_status = decision
    row = Review(page_id=page_id, panel_id=panel_id, render_id=render_id, decision=decision,
                 comment=(comment or "")[:TEXT_MAX], reviewer_id=reviewer.id)
    session.add(row)
    session.flush()
    log_event(session, f"review.{decision.value}", studio_id=reviewer.studio_id, batch_id=page.batch_id,
              page_id=page_id, render_id=render_id, data={"reviewer_id": reviewer.id, "panel_id": panel_id,
                                                           "comment": row.comment[:200]})
    return row


def list_reviews(session: Session, studio_id: int, page_id: int) -> list[Review]:
    """A studio's page's review history, newest first ([] for another studio's page)."""
    return list(session.scalars(
        sa.select(Review).join(Page, Review.page_id == Page.id).join(Batch)
        .where(Review.page_id == page_id, Batch.studio_id == studio_id).order_by(Review.id.desc())
    ))
