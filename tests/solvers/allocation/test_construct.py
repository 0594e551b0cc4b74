"""``result.construct`` builds the instances ``model_construct`` builds, at scale-friendly cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from solvers.allocation import AllocationRequest
from solvers.allocation.heuristics import nearest
from solvers.allocation.problem import I64, Problem, compile_request
from solvers.allocation.result import (
    Alternative,
    Assignment,
    OrderExplanation,
    Reason,
    ReasonKind,
    construct,
    construct_all,
)
from solvers.allocation.solve import _assignments


def reference_assignments(prob: Problem, x: I64) -> list[Assignment]:
    """:func:`_assignments` as it was before: one ``model_construct`` per assignment."""
    used = np.nonzero(x > 0)[0]
    used = used[np.lexsort((prob.arc_node[used], prob.arc_line[used]))]
    orders = prob.pair_order[prob.arc_pair[used]].tolist()
    skus = prob.arc_sku[used].tolist()
    nodes = prob.arc_node[used].tolist()
    qty = x[used].tolist()
    return [
        Assignment.model_construct(
            order_id=prob.order_ids[o], sku=prob.sku_ids[s], node_id=prob.node_ids[n], quantity=q
        )
        for o, s, n, q in zip(orders, skus, nodes, qty, strict=True)
    ]


def assert_same_instance(new: BaseModel, ref: BaseModel) -> None:
    """Same class, values, set fields, extra and private state, and the same dump."""
    assert type(new) is type(ref)
    assert new == ref
    assert new.__dict__ == ref.__dict__
    assert new.model_fields_set == ref.model_fields_set
    assert new.__pydantic_extra__ == ref.__pydantic_extra__
    assert new.__pydantic_private__ == ref.__pydantic_private__
    assert new.model_dump() == ref.model_dump()
    assert new.model_dump_json() == ref.model_dump_json()


@pytest.mark.parametrize("cls", [Assignment, OrderExplanation, Reason, Alternative])
def test_the_constructed_models_have_nothing_construct_leaves_out(cls: type[BaseModel]) -> None:
    assert not cls.__private_attributes__
    assert not cls.__pydantic_post_init__
    assert not cls.__pydantic_root_model__
    assert cls.model_config.get("extra") != "allow"
    for info in cls.model_fields.values():
        assert info.alias is None and info.validation_alias is None


def test_construct_equals_model_construct() -> None:
    values: dict[str, Any] = {"order_id": "o1", "sku": "a", "node_id": "n1", "quantity": 3}
    built = construct(Assignment, dict(values))
    assert_same_instance(built, Assignment.model_construct(**values))
    built.quantity = 4  # an instance like any other: assignment, copies
    assert built.quantity == 4 and built.model_copy(update={"sku": "b"}).sku == "b"
    explanation: dict[str, Any] = {
        "order_id": "o1",
        "nodes": ["n1"],
        "cost": 1.5,
        "best_alternative": None,
        "reasons": [],
        "summary": "ships from n1",
    }
    assert_same_instance(
        construct(OrderExplanation, dict(explanation)),
        OrderExplanation.model_construct(**explanation),
    )


def test_construct_all_equals_model_construct_one_instance_each() -> None:
    rows: list[dict[str, Any]] = [
        {"order_id": f"o{i}", "sku": "a", "node_id": "n1", "quantity": i + 1} for i in range(3)
    ]
    built = construct_all(Assignment, [dict(r) for r in rows])
    assert len(built) == 3
    for new, values in zip(built, rows, strict=True):
        assert_same_instance(new, Assignment.model_construct(**values))
    # each has its own fields set: unsetting on one leaves the others alone
    built[0].model_fields_set.discard("sku")
    assert built[1].model_fields_set == set(rows[1])
    assert construct_all(Assignment, []) == []


def test_construct_with_defaults_equals_model_construct_of_the_given_fields() -> None:
    given: dict[str, Any] = {"kind": ReasonKind.CAPACITY, "node_id": "n1", "message": "full"}
    values = {"kind": ReasonKind.CAPACITY, "node_id": "n1", "sku": None, "rule": None}
    built = construct(Reason, {**values, "message": "full"}, set(given))
    assert_same_instance(built, Reason.model_construct(**given))
    assert built.model_dump(exclude_unset=True) == given


def test_assignments_equal_the_model_construct_reference(two_dcs: AllocationRequest) -> None:
    from benchmarks.allocation import city_request

    for req in (two_dcs, city_request(5, num_orders=150, num_nodes=8)):
        prob = compile_request(req)
        x = nearest(prob)
        new, ref = _assignments(prob, x), reference_assignments(prob, x)
        assert len(new) == len(ref) > 0
        for a, b in zip(new, ref, strict=True):
            assert_same_instance(a, b)
