"""Fixtures of the dashboard's end-to-end tests: a whole service (`dashboard.Stack`) and Chromium."""
from __future__ import annotations

import pytest

from tests.e2e.dashboard import CHROMIUM, CHROMIUM_ARGS, Stack, chromium_present
from tests.testkit import free_port, missing_service


@pytest.fixture
def stack(tmp_path, redis_server):  # noqa: ANN001 - a private Redis: no queue shared with other tests
    s = Stack(tmp_path, redis_server.url, free_port())
    s.start_worker()  # starts loading torch and the model while the browser and app come up
    yield s
    s.close()


@pytest.fixture
def browser():
    chromium_present()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("the playwright Python package")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
