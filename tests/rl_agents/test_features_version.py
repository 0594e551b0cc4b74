"""Model files record the version of the observation features they were trained on; a model of
another version is refused naming the file and both versions (it was used silently: after
f062068 changed the pickup features, a model trained before read numbers of another meaning)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

import rl_agents  # noqa: F401  (registers the policies)
from rl_agents.features import (
    COURIER_FEATURES,
    FEATURES_VERSION,
    FEATURES_VERSIONS,
    GLOBAL_FEATURES,
    ORDER_FEATURES,
    PENDING_FEATURES,
)
from rl_agents.model_io import META, load_model, shipped_model_path
from scenarios.errors import InputError
from simulation import make_policy

#: no ``features_version`` in the record (a file written before records held it)
UNRECORDED = object()


def retagged(src: Path, dst: Path, version: Any) -> Path:
    """A copy of the model ``src`` whose record says ``features_version: version``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == META:
                meta = json.loads(data)
                meta.pop("features_version", None)
                if version is not UNRECORDED:
                    meta["features_version"] = version
                data = json.dumps(meta).encode()
            zout.writestr(info, data)
    return dst


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        (1, "version 1 (the pickup features at a node's next closing)"),
        (UNRECORDED, "version 1 (the pickup features at a node's next closing: its "),
        (3, "version 3 (unknown)"),
        ("2", "version '2' (unknown)"),
        (True, "version True (unknown)"),
    ],
)
def test_a_model_of_other_features_is_refused_naming_the_file_and_both_versions(
    tmp_path: Path, version: Any, shown: str
) -> None:
    old = retagged(shipped_model_path(), tmp_path / "old.zip", version)
    with pytest.raises(InputError) as err:
        load_model(old)
    reason = err.value.reason
    assert err.value.field == "model" and str(old) in reason
    assert shown in reason
    assert f"this code computes version {FEATURES_VERSION} " in reason
    assert FEATURES_VERSIONS[FEATURES_VERSION] in reason and "dispatchlab train" in reason
    with pytest.raises(InputError, match="trained on observation features version"):
        make_policy(f"model-plain:{old}")
    # the same file tagged with the current version loads
    assert load_model(retagged(old, tmp_path / "new.zip", FEATURES_VERSION)).algo


def test_the_shipped_model_is_of_the_current_features_version() -> None:
    """Trained under version 1, it was re-tagged after playing every stored benchmark day
    under version 2 to the cent (its day 3: tests/rl_agents/test_guards.py)."""
    model = load_model("standard")
    assert model.meta["features_version"] == FEATURES_VERSION == 2
    assert "features_version_checked" in model.meta["info"]
    policy = make_policy("model:standard")
    assert policy is not None and policy.name == "model:standard"


def test_a_trained_model_records_the_features_version(tiny_model: Path) -> None:
    with zipfile.ZipFile(tiny_model) as zf:
        assert json.loads(zf.read(META))["features_version"] == FEATURES_VERSION


def test_the_features_are_the_layout_of_their_version() -> None:
    """A feature added, dropped or reordered changes what a model reads: bump FEATURES_VERSION
    (and write down here the new layout); a feature computed differently needs a bump too."""
    assert FEATURES_VERSION == 2
    assert (len(ORDER_FEATURES), len(COURIER_FEATURES)) == (15, 19)
    assert (len(PENDING_FEATURES), len(GLOBAL_FEATURES)) == (6, 11)
    assert ORDER_FEATURES[-1] == "pickup_closes_in_h"
    assert COURIER_FEATURES[-1] == "pickup_margin_h"
    layout = ORDER_FEATURES + COURIER_FEATURES + PENDING_FEATURES + GLOBAL_FEATURES
    assert layout == (
        *("to_window_start_h", "to_window_end_h", "window_width_h", "service_min"),
        *("units_10", "penalty_10k", "num_pickups", "ready_in_h", "trip_h", "age_h"),
        *("times_offered_10", "num_feasible", "best_cost_1k", "best_true_cost_1k"),
        "pickup_closes_in_h",
        *("feasible", "cost_1k", "true_cost_1k", "cost_above_best_1k", "lateness_h"),
        *("slack_h", "distance_km", "end_delay_h", "used", "idle", "stops_10"),
        *("free_in_h", "shift_left_h", "tail_cost_1k", "eta_pickup_h", "van"),
        *("load_share", "rank", "pickup_margin_h"),
        *("to_window_end_h", "to_window_start_h", "age_h", "from_focus_delivery_h"),
        *("from_focus_pickup_h", "penalty_10k"),
        *("time_sin", "time_cos", "day_fraction", "pending_10", "arrivals_30min_10"),
        *("arrivals_60min_10", "on_shift_share", "used_share", "idle_used_share"),
        *("is_arrival", "is_tick"),
    )


def test_evaluate_refuses_a_model_of_other_features_with_one_line(tmp_path: Path) -> None:
    from dispatchlab.cli import app
    from tests.rl_agents.test_cli import one_line_error, runner

    old = retagged(shipped_model_path(), tmp_path / "old.zip", UNRECORDED)
    args = ["evaluate", "--policies", f"greedy,model:{old}", "--seeds", "1", "--workers", "1"]
    result = runner.invoke(app, [*args, "--quiet"])
    one_line_error(result, str(old), "features version 1", "computes version 2")
