"""The ``k`` smallest entries of an array, the same on every machine.

``np.argpartition`` (and ``np.argsort`` without ``kind="stable"``) break ties as their
algorithm happens to meet them, and NumPy picks that algorithm per CPU at run time
(x86-simd-sort on AVX2 and on AVX-512 machines, its own introselect elsewhere): where the
``k``-th smallest value is tied, *which* of the tied entries are taken differs from machine
to machine (and with ``NPY_DISABLE_CPU_FEATURES``). A greedy construction that prices the
orders "near" an insertion then takes other decisions, and the same seed gave other plans on
other machines (session 80: the 1,000-order city day 356 unassigned on AVX2, 371 with
``NPY_DISABLE_CPU_FEATURES=X86_V3``). :func:`smallest` takes the ``k`` smallest with ties to
the lower index, so the set (and its order: by index) depends on the values alone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def smallest(values: NDArray[np.generic], k: int) -> NDArray[np.int64]:
    """Indices of the ``k`` smallest entries along the last axis (ties: the lower index), in
    index order; NaN counts as larger than every number."""
    a = np.asarray(values)
    n = a.shape[-1]
    lead = a.shape[:-1]
    if k <= 0:
        return np.zeros((*lead, 0), dtype=np.int64)
    if k >= n:
        return np.ascontiguousarray(np.broadcast_to(np.arange(n, dtype=np.int64), a.shape))
    # the k-th smallest value is the same whichever algorithm finds it (NaN sorts last)
    kth = np.partition(a, k - 1, axis=-1)[..., k - 1 : k]
    less = a < kth
    tie = a == kth
    if a.dtype.kind == "f" and np.isnan(kth).any():
        nan_a, nan_k = np.isnan(a), np.isnan(kth)
        less |= nan_k & ~nan_a
        tie |= nan_a & nan_k
    need = k - np.count_nonzero(less, axis=-1, keepdims=True)
    take = less | (tie & (np.cumsum(tie, axis=-1) <= need))
    out: NDArray[np.int64] = np.nonzero(take)[-1].astype(np.int64, copy=False)
    return out.reshape(*lead, k)
