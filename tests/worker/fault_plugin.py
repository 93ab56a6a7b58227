"""Faults landed at an exact stage of a page, for the worker tests only: receivers of `worker.signals`.

`harness.Stack(faults=Faults(...))` loads this module into its worker processes (`--include
fault_plugin`) and passes the faults in the environment. Pages named "slow..." take
`panel_delay` seconds per panel while they are finished, pages named "stall..." as long per panel
while they are coloured (reliable windows to kill or cancel in), a page whose name contains
`kill_page` makes its worker process SIGKILL itself on every claim (a poison page), and a page
whose name contains `freeze_page` makes the io child finishing it SIGSTOP itself at its first
panel, once (a frozen process: only its pool's hard time limit ends it).
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from worker import signals

PANEL_DELAY, KILL_PAGE = "TEST_FAULT_PANEL_DELAY", "TEST_FAULT_KILL_PAGE"
FREEZE_PAGE, MARKS = "TEST_FAULT_FREEZE_PAGE", "TEST_FAULT_MARKS"


@dataclass(frozen=True)
class Faults:
    panel_delay: float = 0.0
    kill_page: str = ""
    freeze_page: str = ""
    marks: str = ""  # a folder where a one-time fault records that it happened

    def env(self) -> dict[str, str]:
        return {PANEL_DELAY: str(self.panel_delay), KILL_PAGE: self.kill_page, FREEZE_PAGE: self.freeze_page,
                MARKS: self.marks}

    @classmethod
    def from_env(cls) -> "Faults":
        return cls(float(os.environ.get(PANEL_DELAY) or 0), os.environ.get(KILL_PAGE, ""),
                   os.environ.get(FREEZE_PAGE, ""), os.environ.get(MARKS, ""))


FAULTS = Faults.from_env()


@signals.page_loaded.connect
def _kill_on_poison(sender=None, name: str = "", **_kw) -> None:
    if FAULTS.kill_page and FAULTS.kill_page in name:
        os.kill(os.getpid(), signal.SIGKILL)


@signals.page_colouring.connect
def _stall(sender=None, name: str = "", panels: int = 0, **_kw) -> None:
    if FAULTS.panel_delay and "stall" in name:
        time.sleep(FAULTS.panel_delay * panels)


@signals.panel_finished.connect
def _slow(sender=None, name: str = "", **_kw) -> None:
    if FAULTS.panel_delay and "slow" in name:
        time.sleep(FAULTS.panel_delay)


@signals.panel_finished.connect
def _freeze_once(sender=None, name: str = "", **_kw) -> None:
    if not (FAULTS.freeze_page and FAULTS.freeze_page in name and FAULTS.marks):
        return
    try:  # the first finisher of the page to get here freezes; the others go on
        os.close(os.open(os.path.join(FAULTS.marks, f"frozen-{sender}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGSTOP)
