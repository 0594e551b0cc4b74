"""Every command line of README.md and docs/*.md names a command and options that exist.

The ``dispatchlab ...`` lines (in code blocks and in inline code) are checked against the CLI's
own command tree, the ``benchmarks/*.py`` lines against the options each script's parser
declares; the whole ``dispatchlab`` lines of code blocks are parsed by the CLI's parser too.
What the commands do is checked by the tests of each page; this catches a renamed option or
command that a page still names, a missing argument and an option value of the wrong type.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click.exceptions import ClickException

from dispatchlab.cli import app
from tests.conftest import REPO
from tests.test_benchmarks_usage import _options

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _command_lines(page: Path, *, inline: bool = True) -> list[tuple[int, str]]:
    """(line number, text) of each code-block line and (``inline``) inline code span of ``page``."""
    text = page.read_text(encoding="utf-8")
    found: list[tuple[int, str]] = []
    for block in re.finditer(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M):
        first = text.count("\n", 0, block.start(1)) + 1
        command, start = "", first
        for i, line in enumerate(block.group(1).split("\n")):
            if not command:
                start = first + i
            command += line.split("  #")[0]
            if command.endswith("\\"):  # continued: the next line is more of this command
                command = command[:-1] + " "
                continue
            found.append((start, command))
            command = ""
    if not inline:
        return found
    prose = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    for span in re.finditer(r"`([^`]+)`", prose):
        found.append((prose.count("\n", 0, span.start()) + 1, " ".join(span.group(1).split())))
    return found


def _cli_options(command: Any) -> set[str]:
    """The long options of a command of the CLI (typer's own click objects)."""
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def _words(line: str) -> list[str]:
    """The words of a command line as a shell splits them."""
    try:
        return shlex.split(line)
    except ValueError:  # an unbalanced quote of a fragment in prose
        return line.split()


CLI = typer.main.get_command(app)
DISPATCHLAB = [
    (page, number, line)
    for page in PAGES
    for number, line in _command_lines(page)
    if re.match(r"^(\$ )?(\w+=\S+ )?(\S+/)?dispatchlab [a-z]", line.strip())
]
#: the whole command lines of the code blocks (not a synopsis: no ``[--option]``, ``a|b``, ``...``)
DISPATCHLAB_BLOCKS = [
    (page, number, line)
    for page in PAGES
    for number, line in _command_lines(page, inline=False)
    if re.match(r"^(\$ )?(\w+=\S+ )?(\S+/)?dispatchlab [a-z]", line.strip())
    and not any(mark in word for word in _words(line) for mark in ("[", "|", "..."))
]
BENCHMARKS = [
    (page, number, line)
    for page in PAGES
    for number, line in _command_lines(page)
    if re.search(r"(^|\s|/)benchmarks/\w+\.py\b", line) and OPTION.search(line)
]


def test_the_pages_hold_commands() -> None:
    assert len(DISPATCHLAB) >= 30 and len(BENCHMARKS) >= 10 and len(DISPATCHLAB_BLOCKS) >= 20


@pytest.mark.parametrize(
    ("page", "number", "line"), DISPATCHLAB, ids=[f"{p.name}:{n}" for p, n, _ in DISPATCHLAB]
)
def test_a_dispatchlab_line_names_a_command_and_its_options(
    page: Path, number: int, line: str
) -> None:
    words = _words(line)
    program = next(w for w in words if w.split("/")[-1] == "dispatchlab" and "=" not in w)
    words = words[words.index(program) + 1 :]
    command: Any = CLI
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        if words[0] == "...":
            return  # "dispatchlab ..." stands for any command
        names = words[0].split("|")  # "keys list|revoke": either
        for name in names:
            assert name in command.commands, f"{page.name}:{number}: no command {name!r}: {line!r}"
        command, words = command.commands[names[0]], words[1:]
    unknown = set(OPTION.findall(" ".join(words))) - _cli_options(command) - {"--help"}
    assert not unknown, f"{page.name}:{number}: {line!r}: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("page", "number", "line"), BENCHMARKS, ids=[f"{p.name}:{n}" for p, n, _ in BENCHMARKS]
)
def test_a_benchmark_line_names_a_script_and_its_options(
    page: Path, number: int, line: str
) -> None:
    name = re.search(r"benchmarks/(\w+)\.py", line)
    assert name is not None
    script = REPO / "benchmarks" / f"{name.group(1)}.py"
    assert script.is_file(), f"{page.name}:{number}: no {script.name}"
    after = line[name.end() :]
    unknown = set(OPTION.findall(after)) - _options(script)
    assert not unknown, f"{page.name}:{number}: {line!r}: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("page", "number", "line"),
    DISPATCHLAB_BLOCKS,
    ids=[f"{p.name}:{n}" for p, n, _ in DISPATCHLAB_BLOCKS],
)
def test_a_dispatchlab_line_of_a_code_block_parses(page: Path, number: int, line: str) -> None:
    """Its arguments are all there and its option values have their type and range (the CLI's
    own parser, nothing run; choices a command checks itself are not seen here)."""
    words = _words(line)
    program = next(w for w in words if w.split("/")[-1] == "dispatchlab" and "=" not in w)
    words = words[words.index(program) + 1 :]
    command: Any = CLI
    path = ["dispatchlab"]
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        command, words = command.commands[words[0]], words[1:]
        path.append(command.name)
    try:
        command.make_context(" ".join(path), list(words))
    except ClickException as err:
        pytest.fail(f"{page.name}:{number}: {line!r}: {err.format_message()}")


#: the page that describes each command of the CLI (its options are named there)
COMMAND_PAGES = {
    "scenario": "docs/scenarios.md",
    "allocate": "docs/allocation.md",
    "allocate-literature": "docs/allocation.md",
    "route": "docs/routing.md",
    "simulate": "docs/simulation.md",
    "whatif": "docs/simulation.md",
    "train": "docs/rl.md",
    "evaluate": "docs/rl.md",
    "serve": "docs/api.md",
    "demo": "docs/api.md",
    "keys": "docs/api.md",
    "version": "README.md",
}


def _leaf_commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, command) of every command of the tree that runs something (no group)."""
    if not hasattr(command, "commands"):
        return [(path, command)]
    return [
        leaf
        for name, sub in sorted(command.commands.items())
        for leaf in _leaf_commands(sub, (*path, name))
    ]


LEAVES = _leaf_commands(CLI)


def test_every_command_has_a_page() -> None:
    assert {path[0] for path, _ in LEAVES} == set(COMMAND_PAGES)


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_option_of_a_command_is_named_on_its_page(
    path: tuple[str, ...], command: Any
) -> None:
    """What ``dispatchlab <command> --help`` lists is documented where the docs describe that
    command (a flag pair ``--x/--no-x`` by either spelling), and the command itself is named."""
    text = (REPO / COMMAND_PAGES[path[0]]).read_text(encoding="utf-8")
    assert f"dispatchlab {' '.join(path)}" in text or f"`{path[-1]}`" in text
    named = set(OPTION.findall(text))
    missing = [
        param.opts[0]
        for param in command.params
        if (spellings := {o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")})
        and "--help" not in spellings
        and not spellings & named
    ]
    assert not missing, f"{COMMAND_PAGES[path[0]]} does not name {missing} of {' '.join(path)}"
