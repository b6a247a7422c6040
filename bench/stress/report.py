"""The summary of a stress run: one Check per measured figure against its target, the table
of them and the text report with each scenario's memory and load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.loopback.memory import GB
from bench.loopback.runs import heading


@dataclass
class Check:
    """One line of the summary: a measured value against its target (ok None: figure only)."""

    scenario: str
    measure: str
    value: str
    target: str
    ok: bool | None


def mark(ok: bool | None) -> str:
    return "—" if ok is None else ("✔" if ok else "✘")


def render_table(checks: list[Check]) -> str:
    rows = [("scenario", "measure", "value", "target", "")]
    rows += [(c.scenario, c.measure, c.value, c.target, mark(c.ok)) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(line.rstrip() for line in lines)


def render_report(results: dict[str, Any], checks: list[Check]) -> str:
    title, machine = heading("stress", results)
    head = [title, f"{machine}, memory cap {results['memory_cap_bytes'] / GB:.1f} GB", ""]
    details = ["", "per scenario (RSS: sum over the Daphne process and its descendants):"]
    for name, record in results["scenarios"].items():
        peak = record.get("peak_rss_bytes", 0) / GB
        base = record.get("baseline_rss_bytes", 0) / GB
        load = "→".join(f"{record[k][0]:.2f}" for k in ("loadavg_start", "loadavg_end"))
        details.append(
            f"  {name:<10} {record['elapsed_s']:>7.1f} s  RSS idle {base:.2f} GB, peak "
            f"{peak:.2f} GB  load(1 min) {load}"
            + ("" if record.get("server_alive_at_end", True) else "  SERVER DIED")
        )
    return "\n".join(head) + render_table(checks) + "\n" + "\n".join(details) + "\n"
