"""The `panelpaint` command: a click group whose subcommands live in `cli.*`.

Subcommands are imported only when invoked, so `panelpaint --help` stays fast and the web side
never pays for importing torch.
"""
from __future__ import annotations

import importlib

import click

# name -> "module:attribute"
COMMANDS: dict[str, str] = {
    # Each area adds its line here; the module must import heavy libraries inside the command body.
    "up": "cli.service:up",
    "worker": "cli.service:worker",
    "web": "cli.service:web",
    "flower": "cli.service:flower",
    "db": "cli.db:db",
    "user": "cli.users:user",
    "render": "cli.render:render",
    "colorize": "cli.colorize:colorize",
    "train": "cli.train:train_command",
    "evaluate": "cli.evaluate:evaluate_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup)
@click.version_option(package_name="panelpaint")
def main() -> None:
    """Colour comic pages from line art and a style reference."""
