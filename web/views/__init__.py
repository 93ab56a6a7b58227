"""The blueprints, one per area: they read a request, call the service layer (`web.services`) and
answer with a page, a redirect or JSON; errors they do not show in place go to `web.errors`."""
from __future__ import annotations

from . import api, auth, batches, panels, review, styles, webhooks, workers

BLUEPRINTS = (auth.bp, batches.bp, review.bp, panels.bp, styles.bp, workers.bp, webhooks.bp, api.bp)
