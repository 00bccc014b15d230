"""Command line: the click group; each command is a thin module under commands/ that parses, calls
the library and reports.

The group is a `contract.ContractGroup`: errors a user can fix (bad options, a conflicting
--out, no GPU) end in one line and the exit status documented in `clevr_remv.contract`,
never a traceback, from every command under `commands/`.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from clevr_remv import __version__
from clevr_remv.contract import ContractGroup


@click.group(cls=ContractGroup)
@click.version_option(version=__version__, prog_name="clevr-remv")
def main() -> None:
    """Generate and use CLEVR-Remv, a light-field dataset for referring expression segmentation."""


def _register_commands() -> None:
    """Add every `clevr_remv.commands.<name>.command` to the group (one file per command)."""
    from clevr_remv import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"clevr_remv.commands.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            main.add_command(command)


_register_commands()
