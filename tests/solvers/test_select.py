"""solvers.select.smallest: the k smallest entries, ties to the lower index, on every CPU."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from solvers.select import smallest


def _reference(row: list[float], k: int) -> list[int]:
    """The k smallest by (value, index), NaN last, in index order (a stable sort)."""
    key = [(1, 0.0, i) if np.isnan(v) else (0, v, i) for i, v in enumerate(row)]
    return sorted(i for *_, i in sorted(key)[: max(0, k)])


@given(
    rows=st.integers(1, 4),
    width=st.integers(1, 40),
    k=st.integers(-1, 42),
    data=st.data(),
)
def test_smallest_is_the_stable_sorts_first_k(
    rows: int, width: int, k: int, data: st.DataObject
) -> None:
    """Few distinct values (ties everywhere), infinities and NaN: the rows' first k by
    (value, index) of a stable sort, in index order, 1-D and row-wise alike."""
    cell = st.sampled_from([0.0, 1.0, 2.0, -0.0, float("inf"), float("nan")])
    values = np.array(
        data.draw(
            st.lists(st.lists(cell, min_size=width, max_size=width), min_size=rows, max_size=rows)
        )
    )
    got = smallest(values, k)
    assert got.dtype == np.int64
    assert got.shape == (rows, min(max(k, 0), width))
    for r in range(rows):
        assert got[r].tolist() == _reference(values[r].tolist(), k)
        assert smallest(values[r], k).tolist() == got[r].tolist()


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=60), st.integers(1, 60))
def test_smallest_of_integers_with_ties(values: list[int], k: int) -> None:
    """Integer arrays (the greedy's travel times): the same rule."""
    got = smallest(np.array(values, dtype=np.int64), k).tolist()
    assert got == _reference([float(v) for v in values], k)


def test_ties_at_the_kth_value_go_to_the_lower_index() -> None:
    """Of five equal values the first two; np.argpartition may take any two."""
    assert smallest(np.array([5, 1, 1, 1, 1, 1]), 3).tolist() == [1, 2, 3]
    assert smallest(np.array([[2.0, 0.0, 2.0, 2.0], [1.0, 1.0, 1.0, 0.0]]), 2).tolist() == [
        [0, 1],
        [0, 3],
    ]
