"""Variant sets: N renders of one finished page with N random seeds, side by side; one is picked
(how they live beside the page's own renders: docs/architecture.md, "Variant sets")."""
from __future__ import annotations

import random
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.limits import SEED_MAX, VARIANTS_DEFAULT, VARIANTS_MAX, VARIANTS_MIN
from panelpaint.store.db import ROW_LOCK
from panelpaint.store.errors import IllegalTransition, InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.renders import (
    check_hints, lock_renderable_page, log_render, next_version, reset_review,
)
from panelpaint.store.schema import Batch, Page, Render, RunStatus, VariantSet, utcnow
from panelpaint.store.states import ACTIVE, check_page
from panelpaint.store.styles import require_style


_seeds = random.SystemRandom()


def check_count(count: Any) -> int:
    """How many variants to make: an integer VARIANTS_MIN..VARIANTS_MAX; `InvalidInput` otherwise."""
    if isinstance(count, bool) or not isinstance(count, int) or not VARIANTS_MIN <= count <= VARIANTS_MAX:
        raise InvalidInput(f"variants: ask for {VARIANTS_MIN} to {VARIANTS_MAX}, got {count!r}")
    return count


def active_set(session: Session, page_id: int) -> int | None:
    """The id of the page's variant set that still has a render queued or running, if any."""
    return session.scalar(sa.select(Render.variant_set_id).where(
        Render.page_id == page_id, Render.variant_set_id.is_not(None), Render.status.in_(list(ACTIVE))).limit(1))


def queue_variants(
    session: Session,
    page_id: int,
    count: int = VARIANTS_DEFAULT,
    style_id: int | None = None,
    hints: list[Any] | None = None,
    *,
    user_id: int | None = None,
) -> VariantSet:
    """A variant set of a finished page: `count` queued renders with distinct random seeds.

    Style defaults to that of the page's result when it is a page render (else the page's, then the
    batch's); hints default to those of the page's result (a panel re-render's dots lie on its
    panel, so a page render gives them to that panel again); given hints must lie on the page's panels.
    Refused (`IllegalTransition`) for a page that is not succeeded, a cancelled batch, or while
    another set of the page is still being made. The caller commits, then enqueues every render's
    task (`render.task_id`, `render.id`), as for `queue_render`.
    """
    count = check_count(count)
    page = lock_renderable_page(session, page_id)
    batch = page.batch
    if page.status != RunStatus.succeeded:
        raise IllegalTransition(f"page {page_id} is {page.status.value}: variants are made of a finished page")
    running = active_set(session, page_id)
    if running is not None:
        raise IllegalTransition(f"the variants of set {running} of this page are still being made")
    require_style(session, batch.studio_id, style_id)
    current = session.get(Render, page.current_render_id) if page.current_render_id else None
    if style_id is None:
        page_level = current is not None and current.panel_id is None
        style_id = (current.style_id if page_level else None) or page.style_id or batch.default_style_id
    hints = check_hints(page, None, list(current.hints or []) if hints is None and current else hints or [])
    vset = VariantSet(page_id=page_id, style_id=style_id, size=count, created_by_id=user_id)
    session.add(vset)
    session.flush()
    first = next_version(session, page_id, None)
    renders = [Render(page_id=page_id, panel_id=None, version=first + i, style_id=style_id, seed=seed,
                      hints=list(hints), status=RunStatus.queued, attempt=0, task_id=str(uuid.uuid4()),
                      variant_set_id=vset.id)
               for i, seed in enumerate(_seeds.sample(range(SEED_MAX + 1), count))]
    session.add_all(renders)
    session.flush()
    for render in renders:
        log_render(session, "render.variant", render, version=render.version, variant_set_id=vset.id,
                   style_id=style_id, seed=render.seed, user_id=user_id)
    log_event(session, "variants.queued", studio_id=batch.studio_id, batch_id=batch.id, page_id=page_id,
              data={"variant_set_id": vset.id, "count": count, "style_id": style_id, "user_id": user_id,
                    "render_ids": [r.id for r in renders]})
    session.expire(vset, ["renders"])
    return vset


def pick_variant(session: Session, studio_id: int, render_id: int, *, user_id: int | None = None) -> Render:
    """Make a succeeded variant the page's result (its current render); reviews go back to pending.

    Refused (`IllegalTransition`) for a render that is not a variant or not succeeded, and while a
    render that drives the page (not a variant) is queued or running, or the batch is cancelled.
    Picking the variant that already is the result changes nothing. `NotFound` for another
    studio's render.
    """
    render = session.scalar(sa.select(Render).join(Page, Render.page_id == Page.id).join(Batch)
                            .where(Render.id == render_id, Batch.studio_id == studio_id))
    if render is None:
        raise NotFound(f"render {render_id} does not exist")
    if render.variant_set_id is None:
        raise IllegalTransition(f"render {render_id} is not a variant: only a variant can be picked")
    page = session.get(Page, render.page_id, with_for_update=ROW_LOCK, populate_existing=True)
    session.refresh(render)
    if render.status != RunStatus.succeeded:
        raise IllegalTransition(f"variant v{render.version} is {render.status.value}: "
                                "only a finished one can be picked")
    if page.current_render_id == render.id:
        return render
    if page.status not in (RunStatus.succeeded, RunStatus.failed):
        raise IllegalTransition(f"page {page.id} is {page.status.value}: pick a variant once its render is done")
    if page.status != RunStatus.succeeded:
        check_page(page.status, RunStatus.succeeded)
    replaced = page.current_render_id
    page.current_render_id = render.id
    page.status = RunStatus.succeeded
    page.error = None
    page.panels_done = page.panels_total
    reset_review(page)
    for panel in page.panels:
        reset_review(panel)
    vset = session.get(VariantSet, render.variant_set_id)
    vset.picked_render_id, vset.picked_by_id, vset.picked_at = render.id, user_id, utcnow()
    session.flush()
    log_render(session, "render.picked", render, variant_set_id=vset.id, replaced=replaced, seed=render.seed,
               user_id=user_id)
    return render


def list_variant_sets(session: Session, studio_id: int, page_id: int) -> list[VariantSet]:
    """A studio's page's variant sets, newest first ([] for another studio's page)."""
    return list(session.scalars(
        sa.select(VariantSet).join(Page, VariantSet.page_id == Page.id).join(Batch)
        .where(VariantSet.page_id == page_id, Batch.studio_id == studio_id).order_by(VariantSet.id.desc())))
