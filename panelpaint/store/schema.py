"""The job store's tables (SQLAlchemy 2.x): studios, users, styles, batches, uploads, pages, panels,
renders, variant sets, reviews, events. Every row a studio owns reaches it through a foreign key
chain, so queries are scoped by studio; status transitions are `panelpaint.store.states`'."""
from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from panelpaint.flats import Background
from panelpaint.panels.model import Direction


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(t: dt.datetime | None) -> dt.datetime | None:
    """A stored time made aware: SQLite hands back naive datetimes; every time the store writes is UTC."""
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


# Named constraints make Alembic migrations reproducible on SQLite (batch mode) and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, list[Any] | None: JSON}


class Role(str, enum.Enum):
    admin = "admin"
    artist = "artist"
    reviewer = "reviewer"


class RunStatus(str, enum.Enum):
    """Life of a unit of work (a page or a render): see `states.RUN_TRANSITIONS`."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    skipped = "skipped"  # the page arrived already coloured: not coloured again (`renders.skip_coloured`)


class RenderStage(str, enum.Enum):
    """Where a running render is on its way through the two queues (`panelpaint.store.recovery`):
    a render worker holds it (`colouring`), its colours wait for an io worker (`waiting`: not lost,
    however long the io queue is), or an io worker finishes it (`finishing`)."""

    colouring = "colouring"
    waiting = "waiting"
    finishing = "finishing"


class PanelCheck(str, enum.Enum):
    """A person's check of a page's panels before colouring (`panelpaint.store.panel_edits`): the
    page is held (`awaiting`: its batch asked for it, or detection was unsure of the layout) until
    its boxes are confirmed."""

    awaiting = "awaiting"
    confirmed = "confirmed"


class ReviewStatus(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (no native PG enum) so adding a value needs no type migration.
    return Enum(cls, name=name, native_enum=False, length=16, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class Studio(Base):
    __tablename__ = "studio"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    studio_id: Mapped[int] = mapped_column(ForeignKey("studio.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.artist)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Named by every session cookie of the user; moved on (`accounts.end_sessions`) to end them all.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    studio: Mapped[Studio] = relationship()


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # shown to the user to tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class StyleReference(Base):
    """A finished painting used as a style reference, kept in the studio's library."""

    __tablename__ = "style_reference"
    id: Mapped[int] = mapped_column(primary_key=True)
    studio_id: Mapped[int] = mapped_column(ForeignKey("studio.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    image_key: Mapped[str] = mapped_column(String(128))  # storage key of the image
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # The colour key ([{"color": "#rrggbb", "share": f}], `panelpaint.palette`): extracted from the
    # image when the style is added, editable; None = extract it when colouring.
    palette: Mapped[list[Any] | None] = mapped_column(nullable=True)
    snap_palette: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    background: Mapped[Background] = mapped_column(_enum(Background, "background"), default=Background.PAPER,
                                                   server_default=Background.PAPER.value)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Batch(Base):
    __tablename__ = "batch"
    id: Mapped[int] = mapped_column(primary_key=True)
    studio_id: Mapped[int] = mapped_column(ForeignKey("studio.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    default_style_id: Mapped[int | None] = mapped_column(ForeignKey("style_reference.id", ondelete="SET NULL"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"), default=Direction.ltr)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # work_size, formats, seed...
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # When the batch's end (finished or failed) was last announced (`panelpaint.store.webhooks`).
    notified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    pages: Mapped[list["Page"]] = relationship(back_populates="batch", order_by="Page.position")


class Page(Base):
    __tablename__ = "page"
    __table_args__ = (UniqueConstraint("batch_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(255))  # the uploaded name, for display only
    source_key: Mapped[str | None] = mapped_column(String(128))  # storage key; None if upload was unreadable
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    style_id: Mapped[int | None] = mapped_column(ForeignKey("style_reference.id", ondelete="SET NULL"))
    direction: Mapped[Direction | None] = mapped_column(_enum(Direction, "direction"))  # None: batch's
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.queued, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    review_status: Mapped[ReviewStatus] = mapped_column(
        _enum(ReviewStatus, "review_status"), default=ReviewStatus.pending
    )
    panels_done: Mapped[int] = mapped_column(Integer, default=0)
    panels_total: Mapped[int] = mapped_column(Integer, default=0)
    # How sure detection was of the page's panels as a whole (its weakest panel's); None: not
    # detected, or edited by a person. A panel check (None: none asked) holds the page's render.
    layout_confidence: Mapped[float | None] = mapped_column(Float)
    panel_check: Mapped[PanelCheck | None] = mapped_column(_enum(PanelCheck, "panel_check"))
    # The network's inputs cut from the page ahead of its render, by the io worker that detected
    # its panels: {"key": storage key, "work_size": int, "panels": [panel dicts]}. A render uses
    # them only while the page's panels and work size are still these.
    prepared: Mapped[dict[str, Any] | None] = mapped_column()
    # Thumbnails of the line art ({"thumb180": storage key, ...}), made by the io worker's ingest.
    thumbnails: Mapped[dict[str, Any] | None] = mapped_column()
    current_render_id: Mapped[int | None] = mapped_column(
        ForeignKey("render.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Indexed: the janitor looks for batches whose pages just changed (`webhooks.announce_ended`).
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow,
                                                    index=True)

    batch: Mapped[Batch] = relationship(back_populates="pages")
    # The page's panels now; a panel an edit retired (kept for its renders and reviews) is not one.
    panels: Mapped[list["Panel"]] = relationship(
        order_by="Panel.position", viewonly=True,
        primaryjoin="and_(Page.id == Panel.page_id, Panel.retired_at.is_(None))")
    # Read-only: for eager loading a batch's current renders in one query (`pages_with_renders`);
    # code that changes `current_render_id` goes on reading the render by that id.
    current_render: Mapped["Render | None"] = relationship(foreign_keys=[current_render_id], viewonly=True)


class Upload(Base):
    """Files of one submission that an io worker turns into pages: ZIP/CBZ archives (and the
    images sent with them, kept in order), unpacked off the web request. Progress is the pair
    (`next_file`, `next_entry`), advanced in the same transaction as each page it adds, so a
    redelivered task resumes where the last one stopped and no page is added twice."""

    __tablename__ = "upload"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # [{"name": label, "key": storage key, "archive": bool, "pages": images the archive lists}]
    files: Mapped[list[Any]] = mapped_column(default=list)
    style_id: Mapped[int | None] = mapped_column(ForeignKey("style_reference.id", ondelete="SET NULL"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.queued)
    next_file: Mapped[int] = mapped_column(Integer, default=0)
    next_entry: Mapped[int] = mapped_column(Integer, default=0)
    pages_added: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    batch: Mapped[Batch] = relationship()


class Panel(Base):
    __tablename__ = "panel"
    __table_args__ = (UniqueConstraint("page_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # reading order, 0-based
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    polygon: Mapped[list[Any]] = mapped_column(default=list)  # [[x, y], ...] in page pixels
    style_id: Mapped[int | None] = mapped_column(ForeignKey("style_reference.id", ondelete="SET NULL"))
    hints: Mapped[list[Any]] = mapped_column(default=list)  # [{"x":..,"y":..,"color":"#rrggbb"}] page px
    review_status: Mapped[ReviewStatus] = mapped_column(
        _enum(ReviewStatus, "review_status"), default=ReviewStatus.pending
    )
    confidence: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")  # detection's; a person's 1.0
    # Set when an edit removed a panel that has renders or reviews: the row stays for them, with
    # its position moved out of the way (-id) so the page's positions stay unique.
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    page: Mapped[Page] = relationship()


class Render(Base):
    """One attempt-fenced rendering of a page (panel_id None) or of one panel of it."""

    __tablename__ = "render"
    __table_args__ = (
        UniqueConstraint("page_id", "panel_id", "version"),
        # NULLs are distinct in a UNIQUE constraint, so page-level versions need their own index.
        Index("ux_render_page_version", "page_id", "version", unique=True,
              sqlite_where=text("panel_id IS NULL"), postgresql_where=text("panel_id IS NULL")),
        Index("ix_render_status_queued_at", "status", "queued_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"), index=True)
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("panel.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per page (or per panel)
    style_id: Mapped[int | None] = mapped_column(ForeignKey("style_reference.id", ondelete="SET NULL"))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    model_version: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.queued)
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # incremented by every claim
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(64))
    hints: Mapped[list[Any]] = mapped_column(default=list)  # colour hints for this render, page px
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # seconds per stage
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)  # kind -> storage key
    degraded: Mapped[str | None] = mapped_column(String(200))  # e.g. "cuda oom: cpu fallback"
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Renewed by every claim and progress report; a running render whose heartbeat is older than the
    # lease may be taken over by a redelivered task (see `panelpaint.store.renders`).
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The stage of a running render, and the storage key of the colours handed to finishing (the
    # janitor re-sends `finish_page(id, attempt, handoff_key)` when that message is gone).
    stage: Mapped[RenderStage | None] = mapped_column(_enum(RenderStage, "render_stage"))
    handoff_key: Mapped[str | None] = mapped_column(String(128))
    # When the service last sent the task of the render's current stage; the janitor's guard, so
    # that two sweeps, or a sweep and a worker, never both send it again.
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    # Set for the renders of a variant set (`panelpaint.store.variants`): never a page's result
    # until one is picked.
    variant_set_id: Mapped[int | None] = mapped_column(ForeignKey("variant_set.id", ondelete="CASCADE"), index=True)

    page: Mapped[Page] = relationship(foreign_keys=[page_id])
    panel: Mapped["Panel | None"] = relationship(foreign_keys=[panel_id])


class VariantSet(Base):
    """N renders of one page with N random seeds, asked for together; the one picked becomes the
    page's result (see `panelpaint.store.variants`)."""

    __tablename__ = "variant_set"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"), index=True)
    style_id: Mapped[int | None] = mapped_column(ForeignKey("style_reference.id", ondelete="SET NULL"))
    size: Mapped[int] = mapped_column(Integer)  # how many variants were asked for
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    picked_render_id: Mapped[int | None] = mapped_column(
        ForeignKey("render.id", ondelete="SET NULL", use_alter=True)
    )
    picked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    picked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    renders: Mapped[list[Render]] = relationship(foreign_keys=[Render.variant_set_id], order_by=Render.id)


class Review(Base):
    __tablename__ = "review"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"), index=True)
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("panel.id", ondelete="CASCADE"))
    render_id: Mapped[int | None] = mapped_column(ForeignKey("render.id", ondelete="SET NULL"))
    decision: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus, "review_status"))
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # An undone decision keeps its row (and its event); these say when and by whom it was undone.
    undone_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class DeliveryStatus(str, enum.Enum):
    """A webhook delivery: still being tried, answered 2xx, or given up after its last attempt."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class Webhook(Base):
    """A studio's endpoint told when its batches end, each body signed with the endpoint's secret."""

    __tablename__ = "webhook"
    id: Mapped[int] = mapped_column(primary_key=True)
    studio_id: Mapped[int] = mapped_column(ForeignKey("studio.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 key, hex; shown to the studio's admins
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One event sent to one endpoint: its payload, every attempt counted, the last answer, the
    next try (None once delivered or given up). The dashboard's delivery log."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"), index=True)
    studio_id: Mapped[int] = mapped_column(ForeignKey("studio.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"),
                                                   default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    webhook: Mapped[Webhook] = relationship()


class Event(Base):
    """Append-only log of what happened to a batch; rows are never updated or deleted."""

    __tablename__ = "event"
    id: Mapped[int] = mapped_column(primary_key=True)
    studio_id: Mapped[int | None] = mapped_column(ForeignKey("studio.id", ondelete="CASCADE"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id", ondelete="CASCADE"), index=True)
    page_id: Mapped[int | None] = mapped_column(ForeignKey("page.id", ondelete="CASCADE"))
    render_id: Mapped[int | None] = mapped_column(ForeignKey("render.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
