"""The ``dispatchlab`` command line: one Typer app, one module per command group.

Command modules import heavy dependencies inside their commands so ``dispatchlab --help``
stays fast. Each module exposes ``register(app)``.
"""

from __future__ import annotations

import typer

from dispatchlab import __version__
from dispatchlab.cli import allocate, api, rl, route, scenario, simulate

app = typer.Typer(
    name="dispatchlab",
    help="Order dispatch optimisation and simulation: allocate, route, simulate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Order dispatch optimisation and simulation: allocate, route, simulate, serve."""


for module in (scenario, route, allocate, simulate, rl, api):
    module.register(app)


@app.command("version")
def version_cmd() -> None:
    """Print the dispatchlab version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``dispatchlab`` script."""
    app()
