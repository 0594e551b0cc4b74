"""Per-entity random streams: the per-order uniforms are numpy's Philox draws, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.streams import SOURCE_KEYS, _order_uniforms, entity_key


def _reference(seed: int, order_ids: list[str], widths: list[int]) -> np.ndarray:
    """One ``numpy.random.Philox`` generator per order, as draws version 3 defined them."""
    word = np.random.SeedSequence(seed, spawn_key=(SOURCE_KEYS["orders"],))
    high = int(word.generate_state(1, dtype=np.uint64)[0]) << 64
    parts = [
        np.random.Generator(np.random.Philox(key=high | entity_key(oid))).random(width)
        for oid, width in zip(order_ids, widths, strict=True)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**63),
    orders=st.lists(st.tuples(st.text(max_size=12), st.integers(0, 41)), max_size=25),
)
def test_order_uniforms_are_those_of_a_philox_generator_per_order(
    seed: int, orders: list[tuple[str, int]]
) -> None:
    """The blocks computed at once are the draws of a generator per order (so the noise of a
    seed, ``DRAWS_VERSION`` 3 on, is unchanged), whatever the widths (4 words a block)."""
    ids, widths = [o for o, _ in orders], [w for _, w in orders]
    got = _order_uniforms(seed, ids, widths)
    assert got.dtype == np.float64
    assert np.array_equal(got, _reference(seed, ids, widths))


def test_a_day_of_orders_draws_as_a_generator_per_order() -> None:
    ids = [f"order-{i:05d}" for i in range(1000)] + ["ä", "", "order-00001"]
    widths = [6 + 2 * (i % 7) for i in range(len(ids))]
    assert np.array_equal(_order_uniforms(12345, ids, widths), _reference(12345, ids, widths))
