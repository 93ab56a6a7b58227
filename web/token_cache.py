"""API tokens this dashboard process has just checked, trusted for reads for a few seconds.

A polling client sends its token with every poll, and looking it up was the largest part of a
304's cost: on PostgreSQL a pool check-out with its ping, the query and the rollback, a quarter of
the poll's time (docs/benchmarks.md, "Load"). Within `Settings.token_cache_seconds` a read made
with a token checked before skips that. What keeps it safe:

- Only reads use an entry; a request that writes always checks its token in the database.
- Any write that succeeds in this process (a token revoked, a user disabled) empties it at once.
- A token revoked through another process can still read for at most `token_cache_seconds`.
- Entries are keyed by the token's SHA-256, as stored, never by the plaintext.
"""
from __future__ import annotations

import threading

from cachetools import TTLCache

from panelpaint.store.accounts import TokenOwner

TOKEN_CACHE = "panelpaint.token_cache"  # the app's `TokenCache` (absent: every request checks its token)
MAX_TOKENS = 4096  # the tokens of every client polling one process; the oldest go first


class TokenCache:
    """Token owners by token hash, each for `seconds` after its check."""

    def __init__(self, seconds: float):
        self._owners: TTLCache[str, TokenOwner] = TTLCache(maxsize=MAX_TOKENS, ttl=seconds)
        self._lock = threading.Lock()  # TTLCache is not thread-safe, and gunicorn runs threads

    def get(self, token_hash: str) -> TokenOwner | None:
        with self._lock:
            return self._owners.get(token_hash)

    def put(self, token_hash: str, owner: TokenOwner) -> None:
        with self._lock:
            self._owners[token_hash] = owner

    def clear(self) -> None:
        """Something changed through this process: check every token again."""
        with self._lock:
            self._owners.clear()
