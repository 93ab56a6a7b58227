"""Subcommands of the `panelpaint` command line, one module per area."""
