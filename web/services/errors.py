"""The service layer's own errors, beside the job store's (`panelpaint.store.errors`: InvalidInput,
NotFound, Forbidden, IllegalTransition) and the image checks' (`panelpaint.images.ImageError`).
Each message is written for the user; `web.errors` maps every one of them to an HTTP status."""
from __future__ import annotations


class ServiceError(Exception):
    """Base of the service layer's errors."""


class Refused(ServiceError):
    """Not possible now: nothing approved to download, a review decision that cannot be recorded."""


class NothingToDownload(Refused):
    """A batch has no finished (and, by default, approved) page to put in an archive."""


class QueueUnavailable(ServiceError):
    """The work is saved in the job store, but the queue broker cannot be reached: the janitor
    sends it once the broker is back."""
