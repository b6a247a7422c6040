"""The text report of a load test: one row per topology, then each one's details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.loopback.memory import GB, MB
from bench.loopback.runs import heading


def _seconds(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _bytes(value: int) -> str:
    return f"{value / GB:.2f} GB" if value >= GB else f"{value / MB:.0f} MB"


def _table(rows: list[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return lines


def render_report(results: dict[str, Any]) -> str:
    title, machine = heading("loadtest", results)
    head = [
        title,
        f"{machine}; {results['options']['users']} users, {results['options']['photos']} photos, "
        f"deadline {results['options']['deadline']:g} s per topology"
        + (", kill a worker" if results["options"]["kill_worker"] else ""),
        "",
    ]
    rows: list[Sequence[str]] = [
        (
            "topology",
            "done/failed/lost",
            "refused",
            "retries",
            "time to result p50/p95",
            "ws latency p95",
            "images/min",
            "load 1m start→end",
        )
    ]
    details: list[str] = []
    for record in results["topologies"]:
        name = record["topology"] + (" +kill" if record.get("kill") else "")
        load = f"{record['loadavg_start'][0]:.2f}→{record['loadavg_end'][0]:.2f}"
        s = record.get("summary")
        if s is None:
            rows.append((name, "error", "", "", "", "", "", load))
            details += ["", f"{name}: {record.get('error', 'no result')}"]
            continue
        latency = s["socket_latency_p95_s"]
        rows.append(
            (
                name,
                f"{s['completed']}/{s['failed']}/{s['lost']}",
                str(s["refused"]),
                f"{s['upload_retries']} up, {s['download_retries']} down",
                f"{_seconds(s['time_to_result_p50_s'])} / {_seconds(s['time_to_result_p95_s'])} s",
                "—"
                if latency is None
                else f"{latency * 1000:.1f} ms ({s['socket_latency_method']})",
                _seconds(s["images_per_minute"]),
                load,
            )
        )
        details += [
            "",
            f"{name}: {record['elapsed_s']:.0f} s in all, servers ready after "
            f"{record.get('servers_ready_s', 0):.0f} s, load span {_seconds(s['span_s'])} s; "
            f"running → result p50/p95 {_seconds(s.get('run_time_p50_s'))} / "
            f"{_seconds(s.get('run_time_p95_s'))} s"
            + ("" if record.get("in_time", True) else ", DEADLINE REACHED"),
        ]
        details.append(
            f"  sockets: {s['socket_messages']} messages; finished seen via "
            + ", ".join(f"{k} {v}" for k, v in sorted(s["finished_via"].items()))
            + f"; latency p50 {_seconds(s['socket_latency_p50_s'], 3)} s over "
            f"{s['socket_latency_samples']} events"
            + (
                "; errors: " + ", ".join(f"{k} ×{v}" for k, v in s["socket_errors"].items())
                if s["socket_errors"]
                else ""
            )
        )
        if s["results_late"]:
            details.append(
                f"  {s['results_late']} results answered 404 right after their job's final "
                f"'done' and were there within {s['results_late_max_s']} s (done is "
                "announced before the result is committed)"
            )
        if s["upload_refusals"]:
            details.append(
                "  refusals waited out: "
                + ", ".join(f"{k} ×{v}" for k, v in sorted(s["upload_refusals"].items()))
            )
        for reason, count in sorted(s["reasons"].items()):
            details.append(f"  {count} × {reason}")
        kill = record.get("kill")
        if kill:
            if "error" in kill and "at_s" not in kill:
                details.append(f"  kill: {kill['error']}")
            else:
                details.append(
                    f"  kill: {kill['worker']} ({', '.join(kill['pids'].values())}) at "
                    f"{kill['at_s']} s, after {kill['finished_before']} finished; its job "
                    f"{kill.get('job')}: {kill.get('outcome')}, silent "
                    f"{kill.get('silent_after_kill_s')} s after the kill, result after "
                    f"{kill.get('time_to_result_s')} s"
                    + (", restart seen" if kill.get("restart_seen") else "")
                )
        dead = [role for role, alive in record.get("alive_at_end", {}).items() if not alive]
        if dead:
            details.append(f"  not running at the end: {', '.join(dead)}")
        memory = [("process", "peak RSS", "seen")] + [
            (f"{m['role']} {m['process']}", _bytes(m["peak_bytes"]), str(m["processes_seen"]))
            for m in record.get("memory", [])
        ]
        details += ["  peak memory per process:"] + ["    " + line for line in _table(memory)]
    return "\n".join(head + _table(rows) + details) + "\n"
