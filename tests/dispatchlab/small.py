"""A small scenario the CLI tests share."""

from __future__ import annotations

#: two orders, one courier, one node: a what-if run of one replication takes a moment
SMALL: dict[str, object] = {
    "nodes": [{"id": "n0", "location": {"x": 0, "y": 0}}],
    "orders": [
        {"id": f"o{k}", "location": {"x": 100 * k, "y": 50}, "lines": [{"sku": "a", "quantity": 1}]}
        for k in (1, 2)
    ],
    "vehicles": [{"id": "v0", "start_location": {"x": 0, "y": 0}}],
}
