"""Option types the commands share, built from the service's one definition of each range."""
from __future__ import annotations

import click

from panelpaint.limits import SEED_MAX, WORK_SIZE_MAX, WORK_SIZE_MIN

# The long side fed to the network, as a batch's work size allows it.
WORK_SIZE = click.IntRange(WORK_SIZE_MIN, WORK_SIZE_MAX)
# A variant seed, as the job store takes it.
SEED = click.IntRange(0, SEED_MAX)
