"""docs/rl.md stays true: the options it names exist on the commands it names."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer

from dispatchlab.cli import app
from tests.conftest import REPO, benchmark_script

TEXT = (REPO / "docs" / "rl.md").read_text(encoding="utf-8")
NAMED = set(re.findall(r"(--[a-z][a-z0-9-]*[a-z0-9])", TEXT))


def _cli_options(name: str) -> set[str]:
    """Every option spelling of ``dispatchlab <name>``."""
    commands = getattr(typer.main.get_command(app), "commands")  # noqa: B009 (a typer group)
    command = commands[name]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_hindsight_options_are_options_of_evaluate() -> None:
    """What the hindsight section describes can be set from ``dispatchlab evaluate``."""
    hindsight = {opt for opt in NAMED if opt.startswith("--hindsight-")}
    assert hindsight >= {"--hindsight-search-s", "--hindsight-cache", "--hindsight-time-limit"}
    assert hindsight <= _cli_options("evaluate")


def test_every_named_option_exists(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each option is one of ``train``, ``evaluate``, ``benchmarks/rl_evaluate.py`` or
    ``benchmarks/rl_speed.py`` (the scripts' ``--help`` printed in this process: a new Python
    each took seconds)."""
    known = _cli_options("train") | _cli_options("evaluate")
    for name in ("rl_evaluate.py", "rl_speed.py"):
        with benchmark_script(name, f"docs_{name[:-3]}") as script:
            monkeypatch.setattr(sys, "argv", [name, "--help"])
            capsys.readouterr()
            with pytest.raises(SystemExit) as end:
                script.main()
            help_text = capsys.readouterr().out
        assert end.value.code == 0, help_text
        known |= set(re.findall(r"(--[a-z][a-z0-9-]*[a-z0-9])", help_text))
    # "--dagger-*" stands for the two DAgger options
    assert {"--dagger-rounds", "--dagger-days"} <= known
    assert NAMED - {"--dagger"} <= known, sorted(NAMED - known)


def _stored_costs(name: str, policy: str) -> dict[int, float]:
    """Day -> cost of ``policy`` in the stored per-day results ``benchmarks/results/<name>.csv``."""
    import csv

    with (REPO / "benchmarks" / "results" / f"{name}.csv").open() as fh:
        return {
            int(r["seed"]): float(r["cost_cents"])
            for r in csv.DictReader(fh)
            if r["policy"] == policy
        }


def test_the_guard_tables_benchmark_rows_are_the_stored_days_paired_t_intervals() -> None:
    """Both minus plain on the benchmark days, as the table states it, is the paired t-interval
    of the stored per-day costs (the rows had been given with the normal quantile, too narrow)."""
    import numpy as np

    from simulation.stats import paired_diff

    for label, name in (
        ("benchmark 1-44", "rl-evaluation-search"),
        ("benchmark 1-100", "rl-evaluation"),
    ):
        row = re.search(rf"^\| {label} \|.*\| ([^|]*) \|$", TEXT, flags=re.MULTILINE)
        assert row is not None, label
        both, plain = (
            _stored_costs(name, "model:standard"),
            _stored_costs(name, "model-plain:standard"),
        )
        days = sorted(both)
        a, b = [both[d] for d in days], [plain[d] for d in days]
        d = paired_diff(a, b)
        cheaper = int((np.subtract(a, b) < 0).sum())
        assert row.group(1).startswith(
            f"{d.mean:,.0f} [{d.low:,.0f}, {d.high:,.0f}], {cheaper} of {len(days)}"
        ), (label, row.group(1))


def test_the_validation_day_figures_are_marked_unverifiable() -> None:
    """No per-day validation data was stored and the code that computed the validation rows is
    not in the repository: the page must say so, and what their interval method probably was,
    rather than present them like the benchmark rows (which are checked above)."""
    row = re.search(r"^\| validation 900,001-900,030 ([^|]*)\|", TEXT, flags=re.MULTILINE)
    assert row is not None and "unverifiable" in row.group(1)
    note = TEXT[TEXT.index("**Validation-day figures cannot be checked.**") :].split("\n\n")[0]
    for figure in ("-3,104 [-4,162, -2,047]", "-3,270", "+478", "5 of 30", "normal quantile"):
        assert figure in " ".join(note.split()), figure
    # the commits it cites exist: where the figures came from, where the guard rows were fixed
    for commit in ("4294e90", "005621e", "5bb648a"):
        assert f"`{commit}`" in note
        found = subprocess.run(
            ["git", "-C", str(REPO), "cat-file", "-t", commit], capture_output=True, text=True
        )
        assert found.returncode != 0 or found.stdout.strip() == "commit"


def _signed(value: float) -> str:
    """A figure as the page writes it: a sign when positive inside an interval."""
    return f"{value:,.0f}" if value < 0 else f"+{value:,.0f}"


@pytest.mark.parametrize(
    ("policy", "other", "words"),
    [
        ("model:standard", "model-plain:standard", "model minus `model-plain`"),
        ("slots-drop", "slots", "(`slots-drop` minus `slots`):"),
        ("model:standard", "slots-drop", "model minus `slots-drop`"),
        ("model-plain:standard", "slots", "`model-plain` minus `slots` is"),
    ],
)
def test_the_guards_bullet_gives_the_stored_tables_paired_differences(
    policy: str, other: str, words: str
) -> None:
    """The bullet "Most of the improvement is the guards" gave the figures of the run before
    session 51's capacity fix (-4,731 for model minus model-plain) beside a table re-run since
    (-4,858): each difference it states is the paired t-interval of the stored per-day costs."""
    import numpy as np

    from simulation.stats import paired_diff

    start = TEXT.index("- **Most of the improvement is the guards, not new learning.**")
    bullet = " ".join(TEXT[start : TEXT.index("\n- **", start + 1)].split())
    bullet = bullet.replace(" cents/day", "")  # the unit, given once
    mine, theirs = _stored_costs("rl-evaluation", policy), _stored_costs("rl-evaluation", other)
    days = sorted(mine)
    a, b = [mine[d] for d in days], [theirs[d] for d in days]
    d = paired_diff(a, b)
    cheaper = int((np.subtract(a, b) < 0).sum())
    interval = f"[{_signed(d.low)}, {_signed(d.high)}]"
    stated = f"{d.mean:,.0f} {interval}, cheaper on {cheaper} of {len(days)}"
    assert f"{words} {stated}" in bullet, (stated, bullet)


def test_the_remaining_gap_bullet_splits_the_stored_tables_costs() -> None:
    """The bullet "Where the remaining 9 % is" gave the split of the run before session 51's
    capacity fix (unserved +4,426) beside a table re-run since: each part it states is the
    stored table's mean per-day difference, model (and network alone) minus the reference."""
    import csv

    with (REPO / "benchmarks" / "results" / "rl-evaluation.csv").open() as fh:
        rows = list(csv.DictReader(fh))

    def gap(policy: str, part: str) -> str:
        cost = {r["seed"]: float(r[part]) for r in rows if r["policy"] == policy}
        ref = {r["seed"]: float(r[part]) for r in rows if r["policy"] == "hindsight"}
        return _signed(sum(cost[s] - ref[s] for s in ref) / len(ref))

    start = TEXT.index("- **Where the remaining 9 % is**")
    bullet = " ".join(TEXT[start : TEXT.index("(Before session 51's capacity fix", start)].split())
    model, plain = bullet.split("Before the guards")
    for part, words in (
        ("unserved_cost_cents", "unserved penalties"),
        ("time_cost_cents", "courier time"),
        ("distance_cost_cents", "distance"),
        ("fixed_cost_cents", "fixed"),
        ("lateness_cost_cents", "lateness"),
    ):
        assert f"{words} {gap('model:standard', part)}" in model, (part, model)
    for part, words in (
        ("lateness_cost_cents", "lateness"),
        ("time_cost_cents", "time"),
        ("unserved_cost_cents", "unserved"),
    ):
        assert f"{words} {gap('model-plain:standard', part)}" in plain, (part, plain)


def test_quiet_is_named_with_its_short_form() -> None:
    """``--quiet`` is written ``--quiet`` / ``-q`` as on the other commands' pages."""
    assert TEXT.count("`--quiet`") == TEXT.count("`--quiet` / `-q`") >= 2
    assert {"--quiet", "-q"} <= _cli_options("evaluate") & _cli_options("train")
