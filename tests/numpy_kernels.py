"""Running a script under NumPy's SIMD kernels and without them, as another machine would.

NumPy chooses its sort and selection kernels per CPU at run time (x86-simd-sort on AVX2 and
AVX-512, its own introselect on older x86 and elsewhere), and ``np.argpartition`` breaks ties
differently in each. ``NPY_DISABLE_CPU_FEATURES`` in a subprocess plays the other machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: every x86 feature group NumPy dispatches on (names of NumPy >= 2.4 and before; unknown
#: names are ignored), so the subprocess runs the baseline (SSE) kernels
NO_SIMD = "X86_V3 X86_V4 AVX512_SKX AVX512F AVX2 FMA3 AVX512_ICL AVX512_SPR"

#: a first line for a script: a hash of where ``np.argpartition`` puts ties under the
#: kernels it runs with (two runs printing the same one ran the same selection kernel)
TIES_LINE = """
import hashlib
import numpy as np
ties = np.arange(4000) % 7
print(hashlib.sha256(np.sort(np.argpartition(ties, 99)[:100]).tobytes()).hexdigest())
"""


def run_script(script: str, disable: str | None) -> list[str]:
    """The first two output lines of ``TIES_LINE + script`` run from the repository's root,
    with NumPy's dispatch as given (None: the CPU's own; else ``NPY_DISABLE_CPU_FEATURES``)."""
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    if disable is not None:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    run = subprocess.run(
        [sys.executable, "-c", TIES_LINE + script],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split("\n")[:2]
