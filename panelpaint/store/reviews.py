"""Review decisions on finished pages and panels: approve or reject, with a comment, by a reviewer;
undo the latest one (its row is kept, marked undone). A page and its panels never contradict each
other: a page with a rejected panel cannot be approved, a panel of an approved page cannot be rejected."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.limits import TEXT_MAX
from panelpaint.store.db import ROW_LOCK
from panelpaint.store.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import Batch, Page, Panel, Review, ReviewStatus, Role, RunStatus, User, utcnow
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
    page, reviewer = _page_and_reviewer(session, page_id, reviewer_id)
    render_id = page.current_render_id if page.status == RunStatus.succeeded else None
    # The decision is on what the reviewer sees: the page's result, into which a finished
    # re-render of this panel has been merged (it is then that result itself).
    target = _target(session, page, panel_id)
    if render_id is None:
        raise IllegalTransition(f"page {page_id} has no finished render to review")
    _check_consistent(page, target, decision)
    check_review(target.review_status, decision)
    target.review_status = decision
    row = Review(page_id=page_id, panel_id=panel_id, render_id=render_id, decision=decision,
                 comment=(comment or "")[:TEXT_MAX], reviewer_id=reviewer.id)
    session.add(row)
    session.flush()
    log_event(session, f"review.{decision.value}", studio_id=reviewer.studio_id, batch_id=page.batch_id,
              page_id=page_id, render_id=render_id, data={"reviewer_id": reviewer.id, "panel_id": panel_id,
                                                           "review_id": row.id, "comment": row.comment[:200]})
    return row


def undo_review(session: Session, page_id: int, panel_id: int | None, reviewer_id: int) -> Review:
    """Take back the decision in force on a page (panel_id None) or one of its panels: it goes back
    to pending, its `Review` row is kept and marked undone, and a `review.undone` event follows the
    decision's own in the log. Any reviewer or admin of the studio may undo (`Forbidden`, `NotFound`
    as for `review`); `IllegalTransition` when the target is pending (nothing to undo: a re-render
    already reset it)."""
    page, reviewer = _page_and_reviewer(session, page_id, reviewer_id)
    target = _target(session, page, panel_id)
    what = f"panel {target.position + 1}" if panel_id is not None else f"page {page_id}"
    if target.review_status == ReviewStatus.pending:
        raise IllegalTransition(f"{what} has no decision to undo: it is pending")
    row = session.scalar(
        sa.select(Review).where(Review.page_id == page_id, _same_panel(panel_id), Review.undone_at.is_(None),
                                Review.decision == target.review_status)
        .order_by(Review.id.desc()).limit(1)
    )
    if row is None:
        raise IllegalTransition(f"{what} is {target.review_status.value} but no decision of that is on record")
    check_review(target.review_status, ReviewStatus.pending)
    target.review_status = ReviewStatus.pending
    row.undone_at = utcnow()
    row.undone_by_id = reviewer.id
    session.flush()
    log_event(session, "review.undone", studio_id=reviewer.studio_id, batch_id=page.batch_id, page_id=page_id,
              render_id=row.render_id, data={"reviewer_id": reviewer.id, "panel_id": panel_id, "review_id": row.id,
                                             "decision": row.decision.value})
    return row


def rejected_panels(page: Page) -> list[Panel]:
    """The page's panels whose colours a reviewer rejected, in reading order."""
    return [p for p in page.panels if p.review_status == ReviewStatus.rejected]


def _page_and_reviewer(session: Session, page_id: int, reviewer_id: int) -> tuple[Page, User]:
    """The page, locked, and the user deciding on it: an active admin or reviewer of its studio."""
    page = session.get(Page, page_id, with_for_update=ROW_LOCK, populate_existing=True)
    reviewer = session.get(User, reviewer_id)
    if page is None or reviewer is None or reviewer.studio_id != page.batch.studio_id:
        raise NotFound(f"page {page_id} does not exist")
    if reviewer.role not in REVIEWER_ROLES or not reviewer.is_active:
        raise Forbidden("only reviewers and admins may approve or reject work")
    return page, reviewer


def _target(session: Session, page: Page, panel_id: int | None) -> Page | Panel:
    if panel_id is None:
        return page
    panel = session.get(Panel, panel_id, populate_existing=True)
    if panel is None or panel.page_id != page.id:
        raise NotFound(f"panel {panel_id} does not exist on page {page.id}")
    return panel


def _same_panel(panel_id: int | None):  # noqa: ANN202 - a SQL condition
    return Review.panel_id.is_(None) if panel_id is None else Review.panel_id == panel_id


def _check_consistent(page: Page, target: Page | Panel, decision: ReviewStatus) -> None:
    """Refuse a decision that would contradict the page's others (`IllegalTransition`)."""
    if target is page and decision == ReviewStatus.approved:
        rejected = rejected_panels(page)
        if rejected:
            which = ", ".join(str(p.position + 1) for p in rejected)
            raise IllegalTransition(f"panel {which} of this page is rejected: re-render it or undo its rejection "
                                    "before approving the page")
    if target is not page and decision == ReviewStatus.rejected and page.review_status == ReviewStatus.approved:
        raise IllegalTransition("this page is approved: undo its approval before rejecting one of its panels")


def list_reviews(session: Session, studio_id: int, page_id: int) -> list[Review]:
    """A studio's page's review history, newest first ([] for another studio's page)."""
    return list(session.scalars(
        sa.select(Review).join(Page, Review.page_id == Page.id).join(Batch)
        .where(Review.page_id == page_id, Batch.studio_id == studio_id).order_by(Review.id.desc())
    ))
