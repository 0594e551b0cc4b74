"""Helpers every CLI command uses: one-line errors with exit code 2, shared consoles.

User text (file names, option values, names from input files) is never read as Rich markup
or emoji codes: the consoles have ``emoji=False`` and such text goes through
:func:`rich.markup.escape` (or is printed with ``markup=False``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from scenarios.errors import InputError, input_error_from_validation
from scenarios.geo import MAX_SEED

P = ParamSpec("P")
R = TypeVar("R")

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def print_error(message: str) -> None:
    """Print ``error: message`` on one line of stderr; ``message`` is plain text."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """Print ``warning: message`` on one line of stderr; ``message`` is plain text."""
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    print_error(message)
    return typer.Exit(code)


def cli_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn bad input into one clear line on stderr and exit 2; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            raise fail(err.one_line()) from None
        except ValidationError as err:
            raise fail(input_error_from_validation(err).one_line()) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None

    return wrapper


def seed_option(help: str) -> Any:
    """A ``--seed`` option: an integer in 0..MAX_SEED (2**32 - 1), checked while parsing."""
    return typer.Option(help=help, min=0, max=MAX_SEED)
