"""A module a test's Ray workers preload: when it was imported (``time.time()``)."""

from __future__ import annotations

import time

IMPORTED_AT = time.time()
