"""A table of named measurements (value, unit, target, status) written as CSV and Markdown."""

from __future__ import annotations

import csv
import os
import platform
from pathlib import Path
from typing import TypedDict

from simulation.stats import fmt_num


class Row(TypedDict):
    """One measurement."""

    measure: str
    value: float
    unit: str
    target: str
    status: str


class Measures:
    """Measurements recorded in order, echoed as they come, written as one table."""

    def __init__(self) -> None:
        """An empty table."""
        self.rows: list[Row] = []

    def record(
        self, measure: str, value: float, unit: str, target: str = "", status: str = ""
    ) -> None:
        """Add one measurement and print it."""
        self.rows.append(
            {"measure": measure, "value": value, "unit": unit, "target": target, "status": status}
        )
        print(f"{measure}: {fmt_num(value, ',.4g')} {unit} {target} {status}", flush=True)

    def write(self, out: Path, name: str, title: str, preamble: str) -> None:
        """``out/name.csv`` and ``out/name.md`` (title, preamble, machine line, the table)."""
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(Row.__annotations__))
            writer.writeheader()
            for row in self.rows:
                writer.writerow({**row, "value": fmt_num(row["value"], ".6g")})
        machine = (
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
            f"shared, Python {platform.python_version()}."
        )
        lines = [
            f"# {title}",
            "",
            f"{preamble} {machine}",
            "",
            "| measure | value | unit | target | status |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r['measure']} | {fmt_num(r['value'], ',.4g')} | {r['unit']} | {r['target']} "
                f"| {r['status']} |"
            )
        (out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {out / (name + '.md')} and {out / (name + '.csv')}")
