"""The dashboard end to end: the whole service in a temporary folder (a private Redis, a SQLite job
store, a real worker started as `panelpaint worker`, the web app on a free port) and headless
Chromium, shared by the e2e tests (fixtures in conftest.py)."""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from tests.testkit import ROOT, Processes, missing_service, random_weights

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
PASSWORD = "e2e-password-123"


def model_weights(path: Path) -> Path:
    """The shipped default weights when present, else a tiny random model (the test checks plumbing, not art)."""
    shipped = ROOT / "models" / "weights" / "default.safetensors"
    return shipped if shipped.is_file() else random_weights(path, version="e2e-tiny")


class Stack:
    """The whole service in one temporary folder."""

    def __init__(self, tmp: Path, redis_url: str, port: int):
        from panelpaint.settings import load_settings
        from migrations import runner as migrate
        from panelpaint.store import accounts
        from panelpaint.store.db import Store

        self.tmp = tmp
        self.db_url = f"sqlite:///{tmp / 'store.db'}"
        migrate.upgrade(self.db_url)
        store = Store(self.db_url)
        with store.session() as s:
            studio = accounts.create_studio(s, "E2E Studio")
            accounts.create_user(s, studio.id, "admin@e2e.test", PASSWORD, "admin")
        store.dispose()
        weights = model_weights(tmp / "tiny.safetensors")
        self.port = port
        self.env = {
            **os.environ, "REDIS_URL": redis_url, "DATABASE_URL": self.db_url, "STORAGE_ROOT": str(tmp / "storage"),
            "PANELPAINT_VAR_DIR": str(tmp / "var"), "PANELPAINT_WEIGHTS": str(weights), "PANELPAINT_DEVICE": "cpu",
            "PANELPAINT_WORK_SIZE": "64", "SECRET_KEY": "e2e-secret", "PYTHONPATH": str(ROOT),
        }
        self.settings = load_settings(
            redis_url=redis_url, database_url=self.db_url, storage_root=tmp / "storage", var_dir=tmp / "var",
            weights=weights, secret_key="e2e-secret", work_size=64, flower_url="http://127.0.0.1:5555",
        )
        self.processes = Processes(tmp)
        self.server = None

    def start_worker(self) -> None:
        self.processes.start("worker", [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())",
                                        "worker", "--queues", "render,io", "--concurrency", "1", "--name", "e2e@%h"],
                             self.env, stop_timeout=20, cwd=ROOT)

    def start_web(self) -> str:
        from werkzeug.serving import make_server

        from web import create_app

        app = create_app(self.settings, {"RATELIMIT_STORAGE_URI": "memory://"})
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def worker_output(self) -> str:
        return self.processes.log("worker")[-4000:]

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
        self.processes.stop()


def chromium_present() -> None:
    if not Path(CHROMIUM).exists():
        missing_service(f"Chromium at {CHROMIUM}")


def shoot(page, name: str) -> None:  # noqa: ANN001
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Thumbnails are made on request: wait until every image has arrived before taking the picture.
    # (Polled from here: wait_for_function would need 'unsafe-eval', which the page's CSP forbids.)
    deadline = time.monotonic() + 20
    while not page.evaluate("() => Array.from(document.images).every((img) => img.complete && img.naturalWidth > 0)"):
        assert time.monotonic() < deadline, f"{name}: an image did not load"
        time.sleep(0.1)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def signed_in_page(browser, base: str, height: int = 900):  # noqa: ANN001, ANN201
    """A new browser page logged in as the studio's admin, and the list that collects its console
    errors and uncaught exceptions (a test ends by asserting it is empty)."""
    context = browser.new_context(viewport={"width": 1280, "height": height})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/login")
    page.fill("#email", "admin@e2e.test")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    return page, errors
