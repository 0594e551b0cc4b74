"""``dispatchlab simulate`` and ``dispatchlab whatif``: outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatchlab.cli import app, main
from scenarios import Kpis, Plan, PlannedStop, Route, Scenario
from scenarios.io import read_json, write_json

runner = CliRunner()


def _one_line_error(result: object, *needles: str) -> None:
    """Exit 2, no traceback, exactly one line on stderr naming what is wrong."""
    assert getattr(result, "exit_code", None) == 2, getattr(result, "output", "")
    lines = [ln for ln in getattr(result, "stderr", "").splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in getattr(result, "output", "")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """``whatif`` writes its tables and report without the PNG plots (most of a small
    report's time: a test of what the tables say; the plots are
    :func:`test_whatif_writes_tables_plots_and_html`'s and ``test_report.py``'s)."""
    import simulation.report

    monkeypatch.setattr(simulation.report, "plots", lambda result: {})


@pytest.fixture
def city_file(tmp_path: Path, small_city: Scenario) -> Path:
    path = tmp_path / "city.json"
    write_json(small_city, path)
    return path


def test_simulate_writes_kpis_with_confidence_intervals(
    tmp_path: Path, instances_dir: Path
) -> None:
    from scenarios.io import load_scenario
    from solvers.routing import RoutingParams, solve_routes

    c101 = instances_dir / "solomon" / "C101.txt"
    plan = solve_routes(load_scenario(c101), RoutingParams(engine="pyvrp", max_iterations=100))
    plan_path = tmp_path / "plan.json"
    write_json(plan, plan_path)
    out = tmp_path / "kpis.json"
    args = ["simulate", str(c101), "--plan", str(plan_path), "--replications", "3"]
    result = runner.invoke(app, [*args, "--seed", "4", "--out", str(out), "--executor", "serial"])
    assert result.exit_code == 0, result.output
    kpis = read_json(Kpis, out)
    assert kpis.replications == 3 and kpis.policy == "plan" and kpis.seed == 4
    est = kpis.on_time_rate
    assert est is not None and est.ci_low is not None and est.ci_high is not None
    assert est.ci_low <= est.mean <= est.ci_high
    assert len(kpis.per_order_on_time) == 100
    assert "on_time_rate" in result.stdout and "95% CI" in result.stdout
    again = tmp_path / "again.json"
    runner.invoke(app, [*args, "--seed", "4", "--out", str(again), "--executor", "serial", "-q"])
    assert json.loads(again.read_text()) == json.loads(out.read_text())


def _quiet_day() -> Scenario:
    """The line day without its orders, and arrivals expected but too rare to come (1e-6 an
    hour): no order is due on any replication."""
    from scenarios.stochastic import ArrivalProcess

    from .conftest import line_scenario

    line = line_scenario()
    arrivals = ArrivalProcess(hourly_rate=[1e-6] * 24, templates=line.orders[:1])
    return line.model_copy(update={"orders": [], "arrivals": arrivals})


def test_simulate_shows_an_undefined_on_time_rate_as_n_a(tmp_path: Path) -> None:
    # A quiet day (arrivals so rare that none comes): no order is due, so there is no on-time
    # rate (not 1.0). A day with no orders and no arrivals at all is refused since session 67.
    path = tmp_path / "quiet.json"
    write_json(_quiet_day(), path)
    out = tmp_path / "kpis.json"
    args = ["simulate", str(path), "--replications", "2", "--executor", "serial"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_json(Kpis, out).on_time_rate is None
    # nor, having delivered no order, a lateness: ``simulate`` showed 0 [0, 0] (constant),
    # "perfectly on time", where a what-if study shows n/a; the JSON had 0 with an interval
    payload = json.loads(out.read_text())
    assert payload["lateness_p50_s"] is None and payload["lateness_p95_s"] is None
    for kpi in ("lateness_p50_s", "lateness_p95_s"):
        row = next(ln for ln in result.stdout.splitlines() if kpi in ln and "│" in ln)
        assert "n/a" in row and "[0, 0]" not in row, row
    text = " ".join(result.stdout.split())
    assert "lateness_p50_s, lateness_p95_s: n/a (no order was delivered in any of the 2 " in text
    assert json.loads(out.read_text())["on_time_rate"] is None
    row = next(ln for ln in result.stdout.splitlines() if "on_time_rate" in ln)
    assert "n/a" in row


def test_simulate_flags_a_kpi_constant_over_the_replications(tmp_path: Path) -> None:
    """``orders_failed 0 [0, 0]`` read as an exact zero: the table writes ``(constant)`` after
    such an interval and says what it means; the JSON says ``constant``."""
    from tests.simulation.conftest import line_scenario

    path = tmp_path / "line.json"
    write_json(line_scenario(), path)  # no noise: every replication the same day
    out = tmp_path / "kpis.json"
    args = ["simulate", str(path), "--replications", "3", "--executor", "serial"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    failed = read_json(Kpis, out).orders_failed
    assert failed is not None and (failed.mean, failed.constant) == (0.0, True)
    row = next(ln for ln in result.stdout.splitlines() if "orders_failed" in ln)
    assert "[0, 0] (constant)" in row
    assert "(constant): every replication gave this same value" in " ".join(result.stdout.split())


@pytest.mark.usefixtures("no_plots")
def test_idle_couriers_go_home_is_an_option_of_simulate_and_whatif(tmp_path: Path) -> None:
    """``--idle-couriers-go-home`` sets SimParams.idle_couriers_go_home (off by default). On
    the line day (no noise) insertion gives a, b and c to v1 at 0 s (busy 635 s, home at 830
    s), v2 has nothing to do; the plan has v1 deliver a (busy 0-210 s) and v2 c then b (busy
    625 s, home at 820 s). By default both stay available until the day closes (5,000 s);
    with the option each one's time available ends at its return home (v2 unused: at once)."""
    from tests.simulation.conftest import line_scenario

    def stop(order: str, t: int) -> PlannedStop:
        return PlannedStop(order_id=order, arrival_s=t, start_s=t, departure_s=t)

    write_json(line_scenario(), tmp_path / "line.json")
    v1 = Route(vehicle_id="v1", stops=[stop("a", 100)])
    v2 = Route(vehicle_id="v2", stops=[stop("c", 250), stop("b", 500)])
    write_json(Plan(routes=[v1, v2]), tmp_path / "plan.json")
    (tmp_path / "variants.yaml").write_text(
        "base: line.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.5}\n",
        encoding="utf-8",
    )
    common = ["--replications", "2", "--executor", "serial", "-q"]
    utilisation: dict[str, list[float]] = {}
    for flag in ([], ["--idle-couriers-go-home"]):
        out = tmp_path / f"kpis{len(flag)}.json"
        result = runner.invoke(
            app, ["simulate", str(tmp_path / "line.json"), *common, *flag, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        est = read_json(Kpis, out).courier_utilisation
        assert est is not None
        report = tmp_path / f"report{len(flag)}"
        args = ["whatif", str(tmp_path / "variants.yaml"), *common, *flag, "--out", str(report)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        rows = (report / "comparison.csv").read_text().splitlines()
        base = next(r for r in rows if r.startswith("base,insertion,courier_utilisation,"))
        # several plans: compared under the same option
        plans = ["--plan", str(tmp_path / "plan.json")] * 2
        out = tmp_path / f"compared{len(flag)}.json"
        result = runner.invoke(
            app,
            ["simulate", str(tmp_path / "line.json"), *plans, *common, *flag, "--out", str(out)],
        )
        assert result.exit_code == 0, result.output
        compared = json.loads(out.read_text())["kpis"]["plan-2"]["courier_utilisation"]["mean"]
        utilisation[" ".join(flag)] = [est.mean, float(base.split(",")[3]), compared]
    # the mean over the couriers of busy time / time available (v2: 0)
    default = [635 / 5000 / 2] * 2 + [(210 / 5000 + 625 / 5000) / 2]
    assert utilisation[""] == pytest.approx(default)
    go_home = [635 / 830 / 2] * 2 + [(210 / 210 + 625 / 820) / 2]
    assert utilisation["--idle-couriers-go-home"] == pytest.approx(go_home)


@pytest.mark.usefixtures("no_plots")
def test_take_vehicle_breaks_is_an_option_of_simulate_and_whatif(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--no-take-vehicle-breaks`` sets SimParams(take_vehicle_breaks=False) (the API's params
    had it, the CLI had no way to). On the line day where v1 has a 600 s break (window 100-200
    s) insertion gives v1 every order: by default it takes its break, with the opt-out it
    works through it, as on the day without breaks; ``--take-vehicle-breaks`` is the default."""
    from tests.simulation.conftest import line_scenario

    data = line_scenario().model_dump(mode="json")
    write_json(Scenario.model_validate(data), tmp_path / "plain.json")
    brk = {"window": {"start_s": 100, "end_s": 200}, "duration_s": 600}
    data["vehicles"][0]["breaks"] = [brk]
    write_json(Scenario.model_validate(data), tmp_path / "line.json")
    (tmp_path / "variants.yaml").write_text(
        "base: line.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.5}\n",
        encoding="utf-8",
    )
    common = ["--replications", "2", "--executor", "serial", "-q"]
    hours: dict[str, tuple[float, str]] = {}
    for name, day, flag in [
        ("default", "line.json", []),
        ("on", "line.json", ["--take-vehicle-breaks"]),
        ("off", "line.json", ["--no-take-vehicle-breaks"]),
        ("plain", "plain.json", []),
    ]:
        out = tmp_path / f"{name}.json"
        result = runner.invoke(
            app, ["simulate", str(tmp_path / day), *common, *flag, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        est = read_json(Kpis, out).courier_hours
        assert est is not None
        row = ""
        if day == "line.json":
            report = tmp_path / f"report-{name}"
            args = ["whatif", str(tmp_path / "variants.yaml"), *common, *flag, "--out", str(report)]
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            rows = (report / "comparison.csv").read_text().splitlines()
            row = next(r for r in rows if r.startswith("base,insertion,courier_hours,"))
        hours[name] = (est.mean, row)
    assert hours["default"] == hours["on"]
    assert hours["off"][0] == hours["plain"][0] < hours["default"][0]
    assert hours["off"][1] != hours["default"][1]
    assert float(hours["off"][1].split(",")[3]) == pytest.approx(hours["off"][0])
    # a flag takes no value: one line, exit 2 (the entry point's usage errors)
    for command in (["simulate", str(tmp_path / "line.json")], ["whatif", "variants.yaml"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--no-take-vehicle-breaks=1"])
        err = capsys.readouterr().err
        assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert "'--no-take-vehicle-breaks' does not take a value" in err


def test_simulate_warns_of_the_orders_a_replans_plan_leaves_out(tmp_path: Path) -> None:
    """A re-plan's plan (here: a and c done before its now_s, b left) played over the whole
    day under plan counts a and c unserved: a warning says so, as the API's result notes."""
    from tests.simulation.conftest import line_scenario

    write_json(line_scenario(), tmp_path / "line.json")
    b = PlannedStop(order_id="b", arrival_s=600, start_s=600, departure_s=620)
    a = PlannedStop(order_id="a", arrival_s=100, start_s=100, departure_s=110)
    c = PlannedStop(order_id="c", arrival_s=250, start_s=250, departure_s=255)
    args = ["simulate", str(tmp_path / "line.json"), "--replications", "2", "--executor", "serial"]
    for name, stops in (("replan", [b]), ("day", [a, c, b])):
        write_json(Plan(routes=[Route(vehicle_id="v1", stops=stops)]), tmp_path / f"{name}.json")
        out = tmp_path / f"{name}-kpis.json"
        result = runner.invoke(
            app, [*args, "--plan", str(tmp_path / f"{name}.json"), "-q", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        unserved = read_json(Kpis, out).orders_unserved
        assert unserved is not None
        if name == "day":
            assert "warning" not in result.stderr and unserved.mean == 0
            continue
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("warning: 2 of the scenario's 3 orders")
        assert "(no stop, not unassigned: a, c)" in lines[0] and unserved.mean == 2


def test_comparing_plans_warns_of_the_candidate_a_replan_left_orders_out_of(
    tmp_path: Path,
) -> None:
    """``simulate --plan day --plan replan``: the re-plan's plan (a and c done before its
    now_s, b left) counts a and c unserved over the whole day, as the warning says, naming
    the candidate (the API's comparison notes alike); the day's plan gets none."""
    from tests.simulation.conftest import line_scenario

    write_json(line_scenario(), tmp_path / "line.json")
    b = PlannedStop(order_id="b", arrival_s=600, start_s=600, departure_s=620)
    a = PlannedStop(order_id="a", arrival_s=100, start_s=100, departure_s=110)
    c = PlannedStop(order_id="c", arrival_s=250, start_s=250, departure_s=255)
    for name, stops in (("replan", [b]), ("day", [a, c, b])):
        write_json(Plan(routes=[Route(vehicle_id="v1", stops=stops)]), tmp_path / f"{name}.json")
    out = tmp_path / "comparison.json"
    args = ["simulate", str(tmp_path / "line.json"), "--replications", "2", "--executor", "serial"]
    plans = ["--plan", str(tmp_path / "day.json"), "--plan", str(tmp_path / "replan.json")]
    result = runner.invoke(app, [*args, *plans, "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["kpis"]["replan"]["orders_unserved"]["mean"] == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: candidate replan: 2 of the scenario's 3 orders")
    assert "(no stop, not unassigned: a, c)" in lines[0]
    assert "under policy plan nobody dispatches them" in lines[0]


def test_whatif_warns_of_the_orders_its_replans_plan_leaves_out(tmp_path: Path) -> None:
    """A variant file's plan made by a re-plan (a and c done before its now_s, b left) is
    played in every variant over the whole day: a warning per policy says what it did with
    a and c, and the report's variant notes say it under the base."""
    from tests.simulation.conftest import line_scenario

    write_json(line_scenario(), tmp_path / "line.json")
    b = PlannedStop(order_id="b", arrival_s=600, start_s=600, departure_s=620)
    write_json(Plan(routes=[Route(vehicle_id="v1", stops=[b])]), tmp_path / "replan.json")
    (tmp_path / "variants.yaml").write_text(
        "base: line.json\nplan: replan.json\nvariants:\n  - name: slow\n    modifiers:\n"
        "      - {kind: travel_slowdown, factor: 1.5}\n",
        encoding="utf-8",
    )
    report = tmp_path / "report"
    args = ["whatif", str(tmp_path / "variants.yaml"), "--policies", "plan,insertion"]
    common = ["--replications", "2", "--executor", "serial", "-q", "--out", str(report)]
    result = runner.invoke(app, [*args, *common])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    head = "warning: the plan, played in every variant: 2 of the scenario's 3 orders are not in"
    assert all(line.startswith(head) for line in lines)
    assert all("(no stop, not unassigned: a, c)" in line for line in lines)
    assert "under policy plan nobody dispatches them" in lines[0]
    assert lines[1].endswith("policy insertion dispatches them as new orders, served again")
    table = (report / "comparison.md").read_text()
    assert "- `base`: the plan, played in every variant: 2 of the scenario's 3 orders" in table


def test_simulate_rejects_bad_input(tmp_path: Path, city_file: Path) -> None:
    _one_line_error(runner.invoke(app, ["simulate", str(tmp_path / "none.json")]), "file not found")
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--policy", "magic"]), "unknown policy"
    )
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--replications", "0"]), "--replications"
    )
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--executor", "dask"]), "--executor"
    )


def test_replications_beyond_the_services_limit_exit_2_before_any_work(
    tmp_path: Path, city_file: Path
) -> None:
    """``--replications 100000000`` spawned as many seed sequences (gigabytes) before the
    first day; the CLI now takes what the HTTP service's schema takes, 1..10,000."""
    reason = "--replications: must be an integer from 1 to 10000, got 100000000"
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--replications", "100000000"]), reason
    )
    variants = _variants(tmp_path, city_file)
    out = tmp_path / "report"
    _one_line_error(
        runner.invoke(
            app, ["whatif", str(variants), "--replications", "100000000", "--out", str(out)]
        ),
        reason,
    )
    assert not out.exists()


def test_simulate_checks_policy_plan_and_address_as_whatif_does(city_file: Path) -> None:
    # --policy plan without --plan ran and reported every order unserved; whatif rejects it
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--policy", "plan"]),
        "--policy: policy 'plan' needs a plan (give one with --plan)",
    )
    # --address without --executor ray was silently ignored; whatif rejects it
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--address", "foo:1"]),
        "--address: only with --executor ray",
    )
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--policy", "reopt:x"]),
        "--policy: reopt:x: expected minutes",
    )
    _one_line_error(
        runner.invoke(app, ["simulate", str(city_file), "--policy", "reopt:5:greedy:9"]),
        "--policy: reopt:5:greedy:9: the greedy engine builds one plan and takes no budget",
    )


def _variants(tmp_path: Path, city_file: Path, extra: str = "") -> Path:
    path = tmp_path / "variants.yaml"
    path.write_text(
        f"""base: {city_file.name}
variants:
  - name: rush
    modifiers:
      - {{kind: demand, factor: 1.5, window: {{start_s: 36000, end_s: 72000}}}}
      - {{kind: travel_slowdown, factor: 1.3}}
  - name: fewer-couriers
    modifiers:
      - {{kind: fleet, remove: 2}}
{extra}""",
        encoding="utf-8",
    )
    return path


def test_whatif_writes_tables_plots_and_html(tmp_path: Path, city_file: Path) -> None:
    variants = _variants(tmp_path, city_file)
    out = tmp_path / "report"
    args = ["whatif", str(variants), "--policies", "nearest,insertion", "--replications", "2"]
    result = runner.invoke(app, [*args, "--seed", "3", "--executor", "serial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"comparison.md", "comparison.csv", "replications.csv", "report.html"} <= names
    assert {"kpis.png", "differences.png"} <= names
    assert (out / "kpis.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "comparison.md").read_text()
    assert "| rush | insertion |" in md and "Δ vs base" in md
    rows = (out / "comparison.csv").read_text().splitlines()
    assert rows[0].startswith("variant,policy,kpi,mean,ci_low,ci_high,n,diff")
    assert len(rows) > 3 * 2 * 10
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "fewer-couriers" in html
    printed = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert printed and all(row.endswith("|") for row in printed), result.stdout  # not wrapped


@pytest.mark.usefixtures("no_plots")
def test_whatif_counts_one_run_in_the_singular(tmp_path: Path, city_file: Path) -> None:
    """The base alone over one replication printed ``1 runs in 0.3 s``."""
    variants = tmp_path / "variants.yaml"
    variants.write_text(f"base: {city_file.name}\n", encoding="utf-8")
    args = ["whatif", str(variants), "--replications", "1", "--executor", "serial"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    summary = [line for line in result.stdout.splitlines() if " on executor serial;" in line]
    assert len(summary) == 1 and summary[0].startswith("1 run in "), result.stdout


@pytest.mark.usefixtures("no_plots")
def test_whatif_hires_couriers_and_names_a_bad_fleet_add(tmp_path: Path, city_file: Path) -> None:
    """``{kind: fleet, add: N}``: N more couriers (a fleet modifier could only remove them)."""
    hire = _variants(
        tmp_path, city_file, "  - name: hire\n    modifiers: [{kind: fleet, add: 2}]\n"
    )
    out = tmp_path / "r"
    args = ["whatif", str(hire), "--replications", "2", "--executor", "serial", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| hire | insertion |" in (out / "comparison.md").read_text()
    bad = _variants(
        tmp_path, city_file, "  - name: hire\n    modifiers: [{kind: fleet, add: 2, copy_of: x}]\n"
    )
    result = runner.invoke(app, ["whatif", str(bad), "--out", str(tmp_path / "r2")])
    _one_line_error(result)
    assert result.stderr.strip() == (
        f"error: {bad}: variants.2.modifiers.0.copy_of: unknown vehicle 'x' (not in the "
        "variant's fleet)"
    )


def test_whatif_refuses_a_variant_named_base(tmp_path: Path, city_file: Path) -> None:
    """It replaced the baseline, the other variants staying the unmodified base plus their
    own modifiers; ``POST /v1/whatif`` refuses it alike (422 ``variants.2.name``)."""
    named = _variants(tmp_path, city_file, "  - name: base\n")
    result = runner.invoke(app, ["whatif", str(named), "--out", str(tmp_path / "r")])
    _one_line_error(result)
    assert result.stderr.startswith(
        f"error: {named}: variants.2.name: 'base' is the name of the baseline"
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("variant", "said"),
    [
        ('  - name: "  "\n', "variants.2.name: a blank name: give the variant a name"),
        (
            "  - name: shut\n    modifiers:\n      - {kind: node_closed, node_id: dc-01, "
            "window: {start_s: 600, end_s: 600}}\n",
            "variants.2.modifiers.0.window.end_s: ends at 600 s: the node's closure must end "
            "after it starts at 600 s",
        ),
    ],
)
def test_whatif_refuses_a_blank_name_and_a_closure_of_no_time(
    tmp_path: Path, city_file: Path, variant: str, said: str
) -> None:
    """Both were taken: a report row named by blanks, a variant that was the base."""
    bad = _variants(tmp_path, city_file, variant)
    result = runner.invoke(app, ["whatif", str(bad), "--out", str(tmp_path / "r")])
    _one_line_error(result)
    assert result.stderr.strip() == f"error: {bad}: {said}"
    assert not (tmp_path / "r").exists()


def test_whatif_names_a_repeated_variant_name_at_its_field(tmp_path: Path, city_file: Path) -> None:
    """It was ``(root): variants.2.name: duplicate variant name 'rush'`` (a plain ValueError),
    where ``POST /v1/whatif`` said ``variants.2.name: duplicate variant 'rush'``: one check,
    one line, in both."""
    again = _variants(tmp_path, city_file, "  - name: rush\n")
    result = runner.invoke(app, ["whatif", str(again), "--out", str(tmp_path / "r")])
    _one_line_error(result)
    assert result.stderr.strip() == f"error: {again}: variants.2.name: duplicate name 'rush'"


def test_whatif_refuses_standard_output_for_its_report_folder(
    tmp_path: Path, city_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out -`` is standard output for every other command: here it made a folder named
    ``-`` after the whole study had run."""
    monkeypatch.chdir(tmp_path)
    variants = _variants(tmp_path, city_file, "")
    result = runner.invoke(app, ["whatif", str(variants), "--executor", "serial", "--out", "-"])
    _one_line_error(result, "--out: '-' (standard output)", "name a folder")
    assert not (tmp_path / "-").exists()


def test_whatif_names_the_bad_field(tmp_path: Path, city_file: Path) -> None:
    bad_node = _variants(
        tmp_path,
        city_file,
        "  - name: closed\n    modifiers:\n"
        "      - {kind: node_closed, node_id: nowhere, window: {start_s: 0, end_s: 10}}\n",
    )
    _one_line_error(
        runner.invoke(
            app, ["whatif", str(bad_node), "--executor", "serial", "--out", str(tmp_path / "r")]
        ),
        "variants.2.modifiers.0.node_id",  # the third variant, "closed"
        "unknown node 'nowhere'",
    )
    _one_line_error(
        runner.invoke(app, ["whatif", str(bad_node), "--executor", "local", "--address", "x:1"]),
        "--address",
    )
    _one_line_error(
        runner.invoke(app, ["whatif", str(bad_node), "--policies", "plan", "--executor", "serial"]),
        "needs a plan",
    )


def test_simulate_compares_several_plans(tmp_path: Path, instances_dir: Path) -> None:
    from scenarios.io import load_scenario
    from solvers.routing import RoutingParams, solve_routes

    c101 = instances_dir / "solomon" / "C101.txt"
    good = solve_routes(load_scenario(c101), RoutingParams(engine="pyvrp", max_iterations=100))
    bad = good.model_copy(
        update={"routes": [r.model_copy(update={"stops": r.stops[::-1]}) for r in good.routes]}
    )
    write_json(bad, tmp_path / "bad.json")
    write_json(good, tmp_path / "good.json")
    out = tmp_path / "cmp.json"
    args = [
        "simulate",
        str(c101),
        "--plan",
        str(tmp_path / "bad.json"),
        "--plan",
        str(tmp_path / "good.json"),
    ]
    result = runner.invoke(
        app, [*args, "--replications", "4", "--executor", "serial", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["baseline"] == "bad" and payload["recommended"] == "good"
    assert payload["paired_differences"]["good"]["cost_cents"]["ci_high"] < 0
    assert "recommended: good" in result.stdout
    # the markdown table is printed whole: rows were wrapped at the console width (80 columns
    # when piped), which broke the table for anyone who saved or pasted it
    rows = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(rows) == 4 and all(row.endswith("|") for row in rows), result.stdout


def test_route_out_then_simulate_plan(
    tmp_path: Path, city_file: Path, small_city: Scenario
) -> None:
    """The documented pipeline: the plan ``route --out`` writes is what ``simulate --plan``
    plays, with the same KPIs as the Plan the solver returned."""
    from solvers.routing import RoutingParams, solve_routes

    plan_path = tmp_path / "plan.json"
    routed = runner.invoke(
        app,
        [
            "route",
            str(city_file),
            "--engine",
            "greedy",
            "--seed",
            "1",
            "-q",
            "--out",
            str(plan_path),
        ],
    )
    assert routed.exit_code == 0, routed.output
    assert "units" in json.loads(plan_path.read_text())  # the route output, not a Plan
    solved = solve_routes(small_city, RoutingParams(engine="greedy", time_limit_s=10, seed=1))
    write_json(solved, tmp_path / "solved.json")
    kpis = {}
    for name in ("plan", "solved"):
        out = tmp_path / f"kpis-{name}.json"
        args = ["simulate", str(city_file), "--plan", str(tmp_path / f"{name}.json")]
        args += ["--replications", "3", "--seed", "1", "--executor", "serial", "-q"]
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        kpis[name] = read_json(Kpis, out)
    assert kpis["plan"].policy == "plan" and kpis["plan"].replications == 3
    assert kpis["plan"].extra["orders_delivered"].mean > 0
    assert kpis["plan"] == kpis["solved"]


@pytest.mark.usefixtures("no_plots")
def test_whatif_plays_the_plan_route_out_wrote(tmp_path: Path, city_file: Path) -> None:
    plan_path = tmp_path / "plan.json"
    routed = runner.invoke(
        app, ["route", str(city_file), "--engine", "greedy", "-q", "--out", str(plan_path)]
    )
    assert routed.exit_code == 0, routed.output
    variants = _variants(tmp_path, city_file)
    variants.write_text(f"plan: {plan_path.name}\n" + variants.read_text(), encoding="utf-8")
    out = tmp_path / "report"
    args = ["whatif", str(variants), "--policies", "plan", "--replications", "2"]
    result = runner.invoke(app, [*args, "--executor", "serial", "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| fewer-couriers | plan |" in (out / "comparison.md").read_text()


def test_whatif_refuses_a_ray_address_nobody_answers_at(
    tmp_path: Path, city_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # never the session's local Ray
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was called"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends
    args = ["whatif", str(_variants(tmp_path, city_file)), "--executor", "ray"]
    result = runner.invoke(app, [*args, "--address", f"127.0.0.1:{port}", "-q"])
    _one_line_error(result, "--address", f"no Ray cluster answers at 127.0.0.1:{port}")


def test_whatif_refuses_a_plan_of_another_scenario_as_simulate_does(
    tmp_path: Path, city_file: Path, instances_dir: Path
) -> None:
    # the variant file's plan was trimmed to each variant without a check: a Solomon plan
    # on a city played an empty plan (every order unserved) and exited 0
    from scenarios.io import load_scenario
    from solvers.routing import RoutingParams, solve_routes

    c101 = load_scenario(instances_dir / "solomon" / "C101.txt")
    plan = solve_routes(c101, RoutingParams(engine="greedy"))
    plan_path = tmp_path / "other-plan.json"
    write_json(plan, plan_path)
    vehicle = plan.routes[0].vehicle_id
    simulate = ["simulate", str(city_file), "--plan", str(plan_path), "--executor", "serial"]
    simulated = runner.invoke(app, simulate)
    _one_line_error(simulated, "plan.routes.0.vehicle_id", f"unknown vehicle {vehicle!r}")
    variants = _variants(tmp_path, city_file)
    variants.write_text(f"plan: {plan_path.name}\n" + variants.read_text(), encoding="utf-8")
    out = tmp_path / "report"
    for policies in ("plan", "insertion"):
        args = ["whatif", str(variants), "--policies", policies, "--executor", "serial"]
        result = runner.invoke(app, [*args, "-q", "--out", str(out)])
        # named in the plan's file, as simulate names it, not the variant file
        _one_line_error(
            result,
            f"error: {plan_path.resolve()}: plan.routes.0.vehicle_id",
            f"unknown vehicle {vehicle!r}",
        )
    assert not out.exists()  # refused before any run


def test_whatif_names_a_variants_outage_at_an_unknown_node_in_the_variant_file(
    tmp_path: Path, city_file: Path
) -> None:
    """It was ``error: /abs/city.json: stochastic.node_outages.0.node_id: unknown node``:
    the base file and the base's field, raised when the twin compiled the variant's day."""
    variants = _variants(
        tmp_path,
        city_file,
        "  - name: outage\n    modifiers:\n      - kind: stochastic\n        values:\n"
        "          node_outages: [{node_id: nowhere, window: {start_s: 0, end_s: 600}}]\n",
    )
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["whatif", str(variants), "--executor", "serial", "-q", "--out", str(out)]
    )
    _one_line_error(result)
    assert result.stderr.strip() == (
        f"error: {variants}: variants.2.modifiers.0.values.node_outages.0.node_id: "
        "unknown node 'nowhere'"
    )
    assert not out.exists()


def test_whatif_names_its_option_for_plan_without_a_plan_before_the_executor_is_made(
    tmp_path: Path, city_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--policies plan`` with a variant file that has no ``plan`` said ``error: policies:
    ...`` (the library's field, not the option) and was refused inside the sweep, after the
    executor had been made; ``simulate --policy plan`` names its option before any work."""
    from simulation import executors

    monkeypatch.setattr(
        executors, "make_executor", lambda *a, **k: pytest.fail("the executor was made")
    )
    variants = _variants(tmp_path, city_file)
    out = tmp_path / "report"
    for policies in ("plan", "insertion,plan"):
        args = ["whatif", str(variants), "--policies", policies, "-q", "--out", str(out)]
        result = runner.invoke(app, args)
        _one_line_error(result)
        assert result.stderr.strip() == (
            "error: --policies: policy 'plan' needs a plan in the variant file"
        )
    assert not out.exists()


def test_simulate_refuses_a_plan_of_another_scenario_before_the_pool_starts(
    tmp_path: Path, city_file: Path, instances_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with the local pool the error was raised in a worker and the pool broke: a traceback
    from scenarios.io import load_scenario
    from simulation import executors
    from solvers.routing import RoutingParams, solve_routes

    c101 = load_scenario(instances_dir / "solomon" / "C101.txt")
    plan_path = tmp_path / "c101-plan.json"
    write_json(solve_routes(c101, RoutingParams(engine="greedy")), plan_path)
    monkeypatch.setattr(
        executors.LocalExecutor, "run", lambda *a, **k: pytest.fail("the pool started")
    )
    own_path = tmp_path / "own-plan.json"
    write_json(solve_routes(load_scenario(city_file), RoutingParams(engine="greedy")), own_path)
    one = ["simulate", str(city_file), "--plan", str(plan_path)]
    compared = ["simulate", str(city_file), "--plan", str(own_path), "--plan", str(plan_path)]
    for command in (one, compared):
        result = runner.invoke(app, [*command, "--replications", "2", "-q", "--out", "-"])
        _one_line_error(result, str(plan_path), "plan.routes.0.vehicle_id", "unknown vehicle")


def test_compared_plans_write_strict_json_when_a_kpi_is_undefined(tmp_path: Path) -> None:
    """No order due on any day: the on-time difference is null with n = 0, never a bare NaN."""
    from scenarios.plan import Plan

    scenario = tmp_path / "quiet.json"
    scenario.write_text(_quiet_day().model_dump_json())
    write_json(Plan(), tmp_path / "a.json")
    write_json(Plan(), tmp_path / "b.json")
    out = tmp_path / "cmp.json"
    args = ["simulate", str(scenario), "--plan", str(tmp_path / "a.json")]
    args += ["--plan", str(tmp_path / "b.json"), "--replications", "2"]
    result = runner.invoke(app, [*args, "--executor", "serial", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output

    def no_nan(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    payload = json.loads(out.read_text(), parse_constant=no_nan)
    on_time = payload["paired_differences"]["b"]["on_time_rate"]
    assert {k: on_time[k] for k in ("mean", "ci_low", "ci_high", "n")} == {
        "mean": None, "ci_low": None, "ci_high": None, "n": 0
    }  # fmt: skip
    # and no test without a pair (the test's fields were added next to the interval's)
    test = (on_time["p_value"], on_time["p_adjusted"], on_time["significant"])
    assert test == (None, None, False)
    assert payload["paired_differences"]["b"]["cost_cents"]["n"] == 2


def test_simulate_says_over_how_many_days_an_on_time_rate_is(tmp_path: Path) -> None:
    """Two of six days have no order due: the on-time interval is over n=4, and says so."""
    from scenarios.stochastic import ArrivalProcess

    from .conftest import line_scenario

    line = line_scenario()
    # every order of the day arrives stochastically, drawn from the one template
    arrivals = ArrivalProcess(hourly_rate=[0.6] * 24, templates=line.orders[:1])
    scenario = Scenario.model_validate({**line.model_dump(), "orders": [], "arrivals": arrivals})
    path = tmp_path / "sparse.json"
    write_json(scenario, path)  # a plain file, read as any other
    args = ["simulate", str(path), "--policy", "insertion", "--replications", "6", "--seed", "1"]
    result = runner.invoke(app, [*args, "--executor", "serial", "--out", str(tmp_path / "k.json")])
    assert result.exit_code == 0, result.output
    kpis = Kpis.model_validate_json((tmp_path / "k.json").read_text())
    assert kpis.on_time_rate is not None and kpis.on_time_rate.n == 4
    row = next(line for line in result.stdout.splitlines() if "on_time_rate" in line)
    assert "(n=4)" in row
    assert "(n=" not in next(line for line in result.stdout.splitlines() if "cost_cents" in line)


def test_simulate_names_an_exact_on_time_interval(tmp_path: Path) -> None:
    """Every order on time on every day: the table and the JSON said nothing of the method."""
    from .conftest import line_scenario

    path = tmp_path / "line.json"
    write_json(line_scenario(), path)
    out = tmp_path / "k.json"
    args = ["simulate", str(path), "--policy", "insertion", "--replications", "3"]
    result = runner.invoke(app, [*args, "--executor", "serial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    kpis = read_json(Kpis, out)
    assert kpis.on_time_rate is not None and kpis.on_time_rate.mean == 1.0
    assert kpis.on_time_rate.method == "clopper-pearson-orders"
    assert kpis.cost_cents.method == "t"
    row = next(line for line in result.stdout.splitlines() if "on_time_rate" in line)
    assert "(Clopper-Pearson, orders)" in row
    cost = next(line for line in result.stdout.splitlines() if "cost_cents" in line)
    assert "Clopper" not in cost


@pytest.mark.parametrize(
    "args",
    [["whatif", "-", "--policies", "insertion"], ["simulate", "CITY", "--plan", "-"]],
)
def test_standard_input_where_it_is_not_read_says_so(city_file: Path, args: list[str]) -> None:
    """A variant file names its base relative to its folder, so it is not read from stdin; the
    error said "-: path: file not found", as if a file named "-" were missing."""
    result = runner.invoke(app, [str(city_file) if a == "CITY" else a for a in args])
    _one_line_error(result, "-: path: standard input is not read here: give the file's path")


def test_simulate_says_over_how_many_days_the_lateness_is(tmp_path: Path) -> None:
    """Two of six days have no order (so none delivered): the lateness is over the other four,
    as the on-time rate is, and the table says so (it counted the empty days' 0)."""
    from scenarios.stochastic import ArrivalProcess

    from .conftest import line_scenario

    line = line_scenario()
    arrivals = ArrivalProcess(hourly_rate=[0.6] * 24, templates=line.orders[:1])
    scenario = Scenario.model_validate({**line.model_dump(), "orders": [], "arrivals": arrivals})
    path = tmp_path / "sparse.json"
    write_json(scenario, path)
    out = tmp_path / "k.json"
    args = ["simulate", str(path), "--policy", "insertion", "--replications", "6", "--seed", "1"]
    result = runner.invoke(app, [*args, "--executor", "serial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    kpis = read_json(Kpis, out)
    assert kpis.lateness_p95_s is not None and kpis.lateness_p95_s.n == 4
    assert kpis.lateness_p50_s is not None and kpis.lateness_p50_s.n == 4
    for kpi in ("lateness_p50_s", "lateness_p95_s"):
        row = next(ln for ln in result.stdout.splitlines() if kpi in ln and "│" in ln)
        assert "(n=4)" in row, row
    text = " ".join(result.stdout.split())
    assert (
        "lateness_p50_s, lateness_p95_s: over 4 of 6 replications (no order was delivered on "
        "the other 2)" in text
    )
    assert "on_time_rate: over 4 of 6 replications (no order was due on the other 2)" in text


def test_whatif_shows_a_status_line_while_the_report_is_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The progress bar ends when the days are played; the report then took seconds to draw
    with nothing on the terminal. A status line on stderr says what is being drawn, on a
    terminal only (none into a file or pipe, none with --quiet), as the progress bar does."""
    import io
    import time

    from rich.console import Console

    import dispatchlab.cli._common as common
    import simulation.report
    from tests.simulation.conftest import line_scenario

    write_json(line_scenario(), tmp_path / "line.json")
    (tmp_path / "variants.yaml").write_text("base: line.json\n", encoding="utf-8")
    args = ["whatif", str(tmp_path / "variants.yaml"), "--replications", "1"]
    args += ["--executor", "serial", "--out", str(tmp_path / "report")]
    shown: list[str] = []  # the terminal's text when the plots are drawn

    def terminal(wait_s: float) -> io.StringIO:
        monkeypatch.setenv("TERM", "xterm")  # not dumb: rich draws nothing live on a dumb one
        screen = io.StringIO()
        console = Console(file=screen, force_terminal=True, force_interactive=True, width=200)
        monkeypatch.setattr(common, "err_console", console)

        def plots(result: object) -> dict[str, bytes]:
            """Seconds of drawing in a real study: the status line's thread redraws it ~12
            times a second, so wait (up to ``wait_s``) for it to show what is being drawn."""
            deadline = time.monotonic() + wait_s
            while "drawing the plots" not in screen.getvalue() and time.monotonic() < deadline:
                time.sleep(0.02)
            shown.append(screen.getvalue())
            return {}

        monkeypatch.setattr(simulation.report, "plots", plots)
        return screen

    terminal(wait_s=5.0)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"writing the report to {tmp_path / 'report'}: drawing the plots" in shown[-1]
    terminal(wait_s=0.5)  # as long as the status line takes to show 6 times
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    assert "writing the report" not in shown[-1]
    monkeypatch.undo()  # stderr is CliRunner's, no terminal: nothing drawn
    monkeypatch.setattr(simulation.report, "plots", lambda result: {})
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "writing the report" not in result.stderr and result.stderr == ""
