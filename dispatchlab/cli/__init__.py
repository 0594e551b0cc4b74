"""The ``dispatchlab`` command line: one Typer app, one module per command group.

Command modules import heavy dependencies inside their commands so ``dispatchlab --help``
stays fast. Each module exposes ``register(app)``.
"""

from __future__ import annotations

import sys

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from dispatchlab import __version__
from dispatchlab.cli import allocate, api, rl, route, scenario, simulate
from dispatchlab.cli._common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, print_error
from scenarios.pipes import StdoutUnwritable, guarded_stdout, unwritable_exit

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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dispatchlab`` script; usage errors are one line with exit code 2.

    A standard output that cannot be written (``> /dev/full``, a full disk) is one line,
    ``error: standard output: <reason>``, exit 1, whichever command (or ``--help``) wrote to
    it: a traceback until session 80 (``version``, ``--help``), or ``error: <reason>`` with
    exit 2 as if the input were bad (the commands).
    """
    command = typer.main.get_command(app)
    try:
        with guarded_stdout():
            result = command.main(args=argv, prog_name="dispatchlab", standalone_mode=False)
            sys.stdout.flush()  # what is still buffered fails here, not as Python exits
    except StdoutUnwritable as err:
        raise unwritable_exit(err) from None
    except NoArgsIsHelpError as err:
        err.show()
        raise SystemExit(EXIT_BAD_INPUT) from None
    except UsageError as err:
        where = f" (try '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        print_error(f"{err.format_message()}{where}")
        raise SystemExit(EXIT_BAD_INPUT) from None
    except ClickException as err:
        print_error(err.format_message())
        raise SystemExit(err.exit_code) from None
    except typer.Abort:
        print_error("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    raise SystemExit(result if isinstance(result, int) else 0)
