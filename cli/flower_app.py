"""Flower with no open endpoint: `/metrics` and `/healthcheck` behind the same login as the rest
(Flower exempts them: mher/flower #1129, #1342; docs/deploy.md). What `panelpaint flower` and
`panelpaint up` run instead of `celery flower`:

    python -m cli.flower_app -A panelpaint.queue flower --address=127.0.0.1 --port=5555"""
from __future__ import annotations

import sys

import tornado.web
from flower import urls
from flower.views import monitor


class Metrics(monitor.Metrics):
    @tornado.web.authenticated
    async def get(self) -> None:
        await super().get()


class Healthcheck(monitor.Healthcheck):
    @tornado.web.authenticated
    async def get(self) -> None:
        await super().get()


GUARDED = {monitor.Metrics: Metrics, monitor.Healthcheck: Healthcheck}


def guard(handlers: list) -> None:
    """Replace Flower's open handlers in its URL table, in place (the app reads it when built).
    Fails loudly if a Flower upgrade moved them, rather than leaving them open."""
    for i, handler in enumerate(handlers):
        if isinstance(handler, tuple) and handler[1] in GUARDED:
            handlers[i] = (handler[0], GUARDED[handler[1]], *handler[2:])
    used = {h[1] for h in handlers if isinstance(h, tuple)}
    missing = [cls.__name__ for cls in GUARDED.values() if cls not in used]
    if missing:
        raise RuntimeError(f"Flower's URL table has no {', '.join(missing)} handler: "
                           "check cli/flower_app.py against this Flower version")


def main() -> None:
    guard(urls.handlers)
    from celery.__main__ import main as celery_main

    sys.exit(celery_main())


if __name__ == "__main__":
    main()
