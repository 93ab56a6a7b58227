"""Status answers shared by everyone who polls them within `Settings.status_max_age` seconds.

While a chapter renders, a batch's status changes many times a second (every panel, every stage),
so ETags alone save little: ten clients polling twice a second had the dashboard build the same
60-page answer 20 times a second, half a core taken from the workers on a 2-core machine
(docs/benchmarks.md, "Load"). Here an answer is built at most once per `status_max_age` per
user and URL, kept in Redis for every gunicorn process, and its ETag goes with it.

- Workers' progress shows at most `status_max_age` late (the dashboard polls every 1.5 s).
- The studio's own changes show at once: every write request that succeeds bumps the studio's
  generation, which is part of the entry, so an entry from before it is never served.
- Keyed by database, studio, user and URL: two stacks on one Redis, two studios, two users (an
  answer says which batches are "mine") never share an entry.
- Redis unreachable: every poll builds its answer, as with no cache, and Redis is tried again
  after `RETRY_AFTER` seconds.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds without trying Redis after it failed
TIMEOUT = 0.25  # seconds: a poll waits no longer than this for Redis before building its answer


@dataclass(frozen=True)
class Cached:
    tag: str
    body: bytes | None  # None: only the tag is known (the poll that found it current was answered 304)


class StatusCache:
    """Built answers by (studio, user, URL), valid for `max_age` seconds and until the studio's next write."""

    def __init__(self, redis_url: str, max_age: float, namespace: str):
        self.max_age_ms = max(1, int(max_age * 1000))
        # The namespace tells stacks sharing one Redis apart (their databases differ).
        self.prefix = "panelpaint:status:" + hashlib.blake2b(namespace.encode(), digest_size=6).hexdigest()
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        self._down_until = 0.0

    def _key(self, studio_id: int, user_id: int, url: str) -> str:
        return f"{self.prefix}:{studio_id}:{user_id}:{url}"

    def _generation_key(self, studio_id: int) -> str:
        return f"{self.prefix}:{studio_id}:generation"

    def get(self, studio_id: int, user_id: int, url: str) -> tuple[Cached | None, bytes]:
        """(the cached answer or None, the studio's generation now, for `put`)."""
        if not self._up():
            return None, b""
        try:
            generation, entry = self.redis.mget(self._generation_key(studio_id), self._key(studio_id, user_id, url))
        except redis.RedisError as exc:
            self._failed(exc)
            return None, b""
        generation = generation or b"0"
        if entry is None:
            return None, generation
        entry_generation, tag, has_body, body = entry.split(b"\n", 3)
        if entry_generation != generation:
            return None, generation
        return Cached(tag.decode(), body if has_body == b"1" else None), generation

    def put(self, studio_id: int, user_id: int, url: str, generation: bytes, answer: Cached) -> None:
        """Keep an answer built under `generation` (as `get` gave it) for `max_age`."""
        if not generation or not self._up():
            return
        try:
            entry = (generation, answer.tag.encode(), b"0" if answer.body is None else b"1", answer.body or b"")
            self.redis.set(self._key(studio_id, user_id, url), b"\n".join(entry), px=self.max_age_ms)
        except redis.RedisError as exc:
            self._failed(exc)

    def changed(self, studio_id: int) -> None:
        """The studio changed something through the dashboard or the API: its entries are stale."""
        if not self._up():
            return
        try:
            self.redis.incr(self._generation_key(studio_id))
        except redis.RedisError as exc:
            self._failed(exc)

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._down_until == 0.0:
            log.warning("status cache: Redis unreachable (%s); building every answer for now", type(exc).__name__)
        self._down_until = time.monotonic() + RETRY_AFTER
