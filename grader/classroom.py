"""Classroom commands (release, batch, package-gradescope): registered on the ``kata`` CLI."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the classroom subcommands to the ``kata`` parser."""
