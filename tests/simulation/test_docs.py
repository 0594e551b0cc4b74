"""docs/simulation.md: the policy-hook example runs; the numbers are the committed run."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from scenarios import Scenario
from scenarios.io import write_json
from tests.conftest import REPO, benchmark_script

TEXT = (REPO / "docs" / "simulation.md").read_text(encoding="utf-8")
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)


def test_the_policy_hook_example_runs(
    small_city: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As written: it used a ``scenario`` it never loaded."""
    example = next(code for code in PYTHON if "next_decision" in code)
    write_json(small_city, tmp_path / "city.json")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/simulation.md", "exec"), namespace)
    result = namespace["result"]
    assert getattr(result, "metrics")["orders_delivered"] > 0  # noqa: B009


def test_the_numbers_table_is_the_committed_benchmark_run() -> None:
    """The table kept a first run's figures after simulation-twin.md/.csv were re-run."""
    with (REPO / "benchmarks" / "results" / "simulation-twin.csv").open(encoding="utf-8") as fh:
        rows = {row["measure"].strip(): row for row in csv.DictReader(fh)}
    run = {measure: float(row["value"]) for measure, row in rows.items()}
    table = TEXT[TEXT.index("## Numbers") :].split("\n\n")[2]
    # the plan replay was "(median of 3)" before --repeats made it a mean over the runs
    old = "one replication, plan replay (median of 3)"
    replay = run.get("one replication, plan replay", run.get(old, float("nan")))

    def hundreds(measure: str) -> str:
        return f"{round(run[measure], -2):,.0f}"

    def interval(measure: str, shown: Callable[[float], str]) -> str:
        """`` [low, high]`` of a repeated measure's 95% CI, or nothing for one run."""
        row = rows.get(measure, {})
        if not row.get("ci_low"):
            return ""
        return f" [{shown(float(row['ci_low']))}, {shown(float(row['ci_high']))}]"

    def seconds(x: float) -> str:
        return f"{x:.2f}"

    def by_hundreds(x: float) -> str:
        return f"{round(x, -2):,.0f}"

    replay_name = "one replication, plan replay" if "one replication, plan replay" in run else old
    pool = "30 replications, local pool, 2 workers (incl. start-up)"
    insertion = "one replication, dynamic cheapest insertion"
    hook_5000 = "policy hook, random valid actions, 5000-order day"
    hook_500 = "policy hook, random valid actions, 500-order day"
    expected = [
        f"({run['plan stops']:,.0f} stops)",
        f"{replay:.2f} s{interval(replay_name, seconds)}, "
        f"{hundreds('events per second, plan replay')} events/s",
        f"| {run[pool]:.2f} s{interval(pool, seconds)} |",
        f"| {run[insertion]:.2f} s{interval(insertion, seconds)} |",
        f"{hundreds(hook_5000)}{interval(hook_5000, by_hundreds)} / "
        f"{hundreds(hook_500)}{interval(hook_500, by_hundreds)} decisions/s",
        f"{run['100 short runs, serial']:.1f} s / "
        f"{run['100 short runs, local pool (2 workers)']:.1f} s / "
        f"{run['100 short runs, Ray (2 CPUs, after start-up)']:.1f} s "
        f"(+{run['Ray start-up (local instance)']:.1f} s Ray start-up)",
        f"local pool {run['local pool overhead per run vs ideal split']:.1f} ms, "
        f"Ray {run['Ray overhead per run vs ideal split']:.1f} ms",
    ]
    missing = [text for text in expected if text not in table]
    assert not missing, missing


def test_the_on_time_tables_are_the_committed_policy_runs() -> None:
    """The twin-version-9 tables of ``insertion:ontime`` against ``insertion`` (the 8 days it
    was checked on and the 4 held out) came from scratch scripts: each of their rows is now
    what ``benchmarks/simulation_policies.py``'s committed per-run CSV gives, as its table."""
    results = REPO / "benchmarks" / "results"
    with benchmark_script("simulation_policies.py", "docs_simulation_policies") as policies:
        runs = policies.read_csv(results / "simulation-policies.csv")
        days = policies.days_arg("tuned,held-out")
        rows = policies.table_rows(runs, days, "insertion", "insertion:ontime")
    assert len(rows) == 2 * len(days)  # breaks on and off
    table = (results / "simulation-policies.md").read_text(encoding="utf-8").splitlines()
    assert [line for line in table if line.startswith("| ") and "-order city" in line] == rows
    fixed = TEXT[TEXT.index("The fixed rule against `insertion`") :]
    shown = [
        [line for line in block.splitlines() if line.startswith("| ") and "-order city" in line]
        for block in fixed.split("\n\n")
    ]
    tuned, held_out = shown[1], next(b for b in shown if b and "held out:" in b[0])
    assert "benchmarks/simulation_policies.py --workers 2" in " ".join(fixed.split())
    assert tuned + held_out == rows


def test_the_long_whatif_run_counts_the_example_variant_file() -> None:
    """The paragraph on the first ``whatif`` line counts the variant file of "What-if variant
    files": it still said 5 variants (150 days) after the file had grown to 7 (session 78)."""
    import yaml

    from scenarios.variants import VariantFile

    section = TEXT[TEXT.index("## What-if variant files") :]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    spec = VariantFile.model_validate(yaml.safe_load(block.group(1)))
    variants = len(spec.variants) + 1  # the base is a variant of the study
    line = re.search(
        r"dispatchlab whatif variants\.yaml --policies (\S+) --replications (\d+)", TEXT
    )
    assert line is not None
    policies, replications = line.group(1).split(","), int(line.group(2))
    said = re.search(
        r"(\d+) variants \(the base included\) x (\d+) policies x (\d+) replications\s+"
        r"are (\d+) simulated days, (\d+) of them under `reopt:10`",
        TEXT,
    )
    assert said is not None
    assert "reopt:10" in policies
    days = variants * len(policies) * replications
    assert [int(g) for g in said.groups()] == [
        variants,
        len(policies),
        replications,
        days,
        variants * replications,
    ]
