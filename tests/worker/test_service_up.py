"""`panelpaint up` end to end (embedded Redis, migrations, admin, workers, web, Flower, clean Ctrl-C), and `worker` argv."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode

import click
import psutil
import pytest

from tests.testkit import ROOT, free_port, port_free, random_weights, wait_for
from panelpaint import queue
from cli.service import web_argv, worker_argv
from panelpaint.settings import load_settings

pytestmark = [pytest.mark.slow]


def _status(url: str, auth: tuple[str, str] | None = None) -> int:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_up_runs_everything_and_stops_cleanly_on_ctrl_c(tmp_path):
    var = tmp_path / "var"
    ports = {"PANELPAINT_EMBEDDED_REDIS_PORT": free_port(), "PANELPAINT_WEB_PORT": free_port(),
             "PANELPAINT_FLOWER_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "STORAGE_ROOT")}
    env.update({k: str(v) for k, v in ports.items()})
    home = tmp_path / "home"  # nothing the stack writes may land outside var/ (gunicorn's socket did)
    env.update(PANELPAINT_VAR_DIR=str(var), PANELPAINT_DEVICE="cpu", PYTHONPATH=str(ROOT), HOME=str(home),
               PANELPAINT_WEB_WORKERS="2",
               PANELPAINT_WEIGHTS=str(random_weights(tmp_path / "tiny.safetensors")))
    as_root = os.geteuid() == 0  # a CI machine: `up` says so once and runs
    out = open(tmp_path / "up.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", "up",
                             "--io-concurrency", "1"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    log = lambda: (tmp_path / "up.out").read_text(errors="replace")  # noqa: E731
    try:
        wait_for(lambda: "press Ctrl-C" in log() or proc.poll() is not None, 150, "`panelpaint up` to start", log)
        assert proc.poll() is None, log()
        web = f"http://127.0.0.1:{ports['PANELPAINT_WEB_PORT']}"
        flower = f"http://127.0.0.1:{ports['PANELPAINT_FLOWER_PORT']}"
        # gunicorn listens before its workers have loaded the app: on a busy machine the first answer takes a while.
        wait_for(lambda: _status(web + "/") in (200, 302), 60, "the dashboard to answer")
        # Flower is never open: 401 without credentials, 200 with the generated ones.
        password = (var / "flower_password").read_text().strip()
        assert _status(flower + "/") == 401
        assert _status(flower + "/", ("admin", password)) == 200
        assert _status(flower + "/metrics") == _status(flower + "/healthcheck") == 401  # nothing open
        assert _status(flower + "/metrics", ("admin", password)) == 200
        assert log().count("running as root") == (1 if as_root else 0)
        admin_password = (var / "admin_password").read_text().strip()  # the password alone
        assert stat.S_IMODE((var / "admin_password").stat().st_mode) == 0o600
        assert f"admin@panelpaint.local / {admin_password}" in log() and " " not in admin_password
        settings = load_settings(redis_url=f"redis://127.0.0.1:{ports['PANELPAINT_EMBEDDED_REDIS_PORT']}/0",
                                 var_dir=var)
        wait_for(lambda: {tuple(w["queues"]) for w in queue.live_workers(settings)} == {("render",), ("io",)},
                 90, "a render and an io worker", lambda: queue.live_workers(settings))
        assert stat.S_ISSOCK((var / "gunicorn.ctl").stat().st_mode)
        assert not (home / ".gunicorn").exists()
        family = psutil.Process(proc.pid).children(recursive=True)
        assert len(family) >= 8  # redis, 2 workers + their pool children, gunicorn + its 2 workers, flower
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(90)
        finally:
            if proc.poll() is None:
                proc.kill()
            out.close()
    assert code == 0, log()
    assert "stopped" in log()
    time.sleep(0.5)
    alive = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline()[:4] for p in alive]
    assert all(port_free(p) for p in ports.values())


def test_worker_argv_one_render_process_per_gpu_and_cores_for_io(settings):
    render = worker_argv(settings, ["render"], None, None)
    assert render[render.index("--concurrency") + 1] == "1" and render[render.index("--pool") + 1] == "prefork"
    assert render[render.index("-A") + 1] == "worker.celery_app"
    io = worker_argv(settings.model_copy(update={"worker_concurrency": 3}), ["io"], None, None)
    assert io[io.index("--concurrency") + 1] == "3" and io[io.index("--queues") + 1] == "io"
    with pytest.raises(click.BadParameter, match="unknown queue"):
        worker_argv(settings, ["gpu"], None, None)


def test_web_argv_sizes_gunicorn_for_the_machine_and_keeps_its_socket_in_var(settings, tmp_path):
    settings = settings.model_copy(update={"var_dir": tmp_path / "var"})
    argv = web_argv(settings)
    assert argv[argv.index("--workers") + 1] == str(max(2, os.cpu_count() or 1))
    assert argv[argv.index("--threads") + 1] == str(settings.web_threads)
    assert argv[argv.index("--control-socket") + 1] == str((tmp_path / "var" / "gunicorn.ctl").resolve())
    sized = web_argv(settings.model_copy(update={"web_workers": 3, "web_threads": 2}))
    assert (sized[sized.index("--workers") + 1], sized[sized.index("--threads") + 1]) == ("3", "2")
    told = web_argv(settings, workers=1, threads=8)
    assert (told[told.index("--workers") + 1], told[told.index("--threads") + 1]) == ("1", "8")
