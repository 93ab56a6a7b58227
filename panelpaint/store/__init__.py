"""The job store: SQLAlchemy schema, state machine, sessions and file storage shared by web and workers.

Import service functions from here (`from panelpaint.store import claim_render`) or from their
modules: accounts, styles, batches, uploads, renders, recovery, variants, reviews, events, storage (migrations live in `migrations/`, run by `migrations.runner`). All of them take a
`Session` first and flush but never commit: the caller owns the transaction (`Store.session()`).
"""
from panelpaint.store.accounts import (
    authenticate, create_api_token, create_studio, create_user, end_sessions, get_studio_by_name, get_user, get_user_by_email,
    hash_password, list_tokens, list_users, revoke_token, set_password, set_user_active, user_for_token,
)
from panelpaint.store.batches import (
    BatchProgress, add_page, batch_progress, batch_progress_many, cancel_batch, create_batch, get_batch, get_page,
    get_render, is_cancelled, list_batches, list_renders, panel_of, set_panels,
)
from panelpaint.store.db import Store, make_engine
from panelpaint.store.errors import (
    AppendOnlyViolation, Forbidden, IllegalTransition, InvalidInput, LeaseHeld, NotFound, StaleAttempt, StoreError,
)
from panelpaint.store.events import list_events, log_event
from panelpaint.store.renders import (
    Claim, acknowledge_cancel, claim_following, claim_render, complete_render, fail_render, hand_off,
    queue_new_page, queue_render, rerender, retry_page, set_progress, start_finishing,
)
from panelpaint.store.reviews import list_reviews, review
from panelpaint.store.schema import (
    ApiToken, Batch, Direction, Event, Page, Panel, Render, RenderStage, Review, ReviewStatus, Role, RunStatus,
    Studio, StyleReference, Upload, User, VariantSet,
)
from panelpaint.store.storage import LocalStorage, Storage, storage_from_settings
from panelpaint.store.styles import add_style_reference, get_style, list_styles, style_palette, update_colour_key
from panelpaint.store.variants import (
    list_variant_sets, pick_variant, queue_variants,
)

import types as _types

__all__ = [n for n, v in dict(globals()).items() if not n.startswith("_") and not isinstance(v, _types.ModuleType)]
