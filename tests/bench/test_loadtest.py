"""The load test's building blocks, without a server: percentiles, how a job is counted
(completed, failed, lost, refused), state frames and their timestamps, the socket's latency
from a timestamp or from polling, the users' shares, the scale-out database environment, a
db_worker's running task read from its log, the per-process memory sampler and the report."""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadtest import cli, figures, load, report, topologies
from bench.loadtest.figures import percentile
from bench.loadtest.records import JobRecord, Message, classify, parse_state_frame, sent_timestamp
from bench.loopback import memory

PNG_STATE = {"urls": {"cutout": "/jobs/j/files/cutout", "status": "/jobs/j/status/"}}


def state(status: str, stage: str = "", percent: int = 0, **extra: object) -> dict:
    return {
        "job": "j",
        "status": status,
        "stage": stage or status,
        "percent": percent,
        "finished": status in ("done", "failed"),
        **PNG_STATE,
        **extra,
    }


def accepted(**fields: object) -> JobRecord:
    record = JobRecord(user=0, photo="p.jpg", upload_started=10.0, upload_status=201)
    record.job_id = "j"
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([], 95) is None
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 10.0
    assert percentile(reversed(values), 50) == pytest.approx(5.5)  # any order


def test_jobs_are_counted_completed_failed_lost_or_refused() -> None:
    completed = accepted(final=state("done", percent=100), finished_at=30.0, png=True)
    assert classify(completed) == ("completed", "")
    assert completed.time_to_result == pytest.approx(20.0)
    assert completed.run_time is None  # never seen running
    completed.polled_states = [Message(26.0, 0.0, state("running", "inference", 40))]
    completed.messages = [Message(25.0, 0.0, state("running", "decoding"))]
    assert completed.run_time == pytest.approx(5.0)  # from the first sight, socket or poll

    failed = accepted(final=state("failed", error="Too big."), finished_at=12.0)
    assert classify(failed) == ("failed", "Too big.")

    unfinished = accepted(messages=[Message(11.0, 0.0, state("running", "decoding"))])
    assert classify(unfinished) == ("lost", "not finished by the deadline (last seen: running)")
    assert classify(accepted())[1] == "not finished by the deadline (last seen: nothing)"
    assert unfinished.time_to_result is None

    no_png = accepted(final=state("done"), finished_at=30.0, download_status=404)
    outcome, reason = classify(no_png)
    assert outcome == "lost" and "404" in reason

    refused = JobRecord(user=1, photo="q.jpg", upload_status=503, upload_error="Busy.")
    assert classify(refused) == ("refused", "upload answered 503 Busy.")
    assert classify(JobRecord(user=1, photo="q.jpg"))[0] == "refused"  # no answer at all


def test_the_summary_adds_up_and_times_only_completed_jobs() -> None:
    records = [
        accepted(final=state("done"), finished_at=10.0 + t, png=True, upload_started=10.0)
        for t in (10.0, 20.0, 30.0)
    ]
    records[0].refusals, records[0].retries = [429, 429], 2
    records.append(accepted(final=state("failed", error="x"), finished_at=100.0))
    records.append(accepted())  # lost
    records.append(JobRecord(user=0, photo="r.jpg", upload_status=429, refusals=[429]))
    summary = figures.summarize(records)
    assert (summary["completed"], summary["failed"], summary["lost"], summary["refused"]) == (
        3,
        1,
        1,
        1,
    )
    assert summary["time_to_result_p50_s"] == 20.0
    assert summary["upload_retries"] == 2
    assert summary["upload_refusals"] == {"429": 3}
    # 3 completed from the first upload start (10 s) to the last completion (40 s).
    assert summary["span_s"] == 30.0 and summary["images_per_minute"] == 6.0
    assert summary["reasons"]["lost: not finished by the deadline (last seen: nothing)"] == 1


def test_state_frames_are_read_or_refused() -> None:
    assert parse_state_frame('{"job": "j", "status": "queued"}') == {
        "job": "j",
        "status": "queued",
    }
    assert parse_state_frame(b'{"job": "j", "status": "done", "finished": true}')
    for bad in ("not json", "[1, 2]", '{"status": "done"}', "", b"\xff"):
        assert parse_state_frame(bad) is None


def test_a_timestamp_is_read_as_seconds_from_numbers_or_iso() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=datetime.UTC)
    epoch = moment.timestamp()
    assert sent_timestamp({"sent_at": epoch}) == epoch
    assert sent_timestamp({"sent_at": epoch * 1000}) == pytest.approx(epoch)
    assert sent_timestamp({"published_at": moment.isoformat()}) == epoch
    assert sent_timestamp({"sent_at": "2026-01-02T03:04:05.5Z"}) == epoch
    assert sent_timestamp({"sent_at": "yesterday"}) is None
    assert sent_timestamp({"sent_at": True}) is None
    assert sent_timestamp({}) is None


def test_socket_latency_from_sent_at_skips_the_connect_snapshot() -> None:
    record = accepted(
        messages=[
            Message(1.0, 1000.0, state("queued", sent_at=900.0)),  # on connect: not an event
            Message(2.0, 1001.05, state("running", "decoding", sent_at=1001.0)),
            Message(3.0, 1002.20, state("running", "inference", 40, sent_at=1002.0)),
        ]
    )
    values, method = figures.socket_latencies(record)
    assert method == "sent_at"
    assert values == pytest.approx([0.05, 0.20])


def test_socket_latency_from_polling_compares_first_sightings() -> None:
    running = state("running", "decoding")
    inference = state("running", "inference", 40)
    done = state("done", "done", 100)
    record = accepted(
        messages=[
            Message(1.0, 0.0, state("queued")),
            Message(2.0, 0.0, running),  # before polling began: not counted
            Message(3.10, 0.0, inference),
            Message(4.00, 0.0, done),
        ],
        polled_from=2.5,
        polls=[
            Message(2.6, 0.0, running),
            Message(3.0, 0.0, inference),
            Message(3.2, 0.0, inference),
            Message(4.05, 0.0, done),  # the poll was later than the socket
        ],
    )
    values, method = figures.socket_latencies(record)
    assert method == "polling"
    assert sorted(values) == pytest.approx([-0.05, 0.10])
    assert figures.socket_latencies(accepted()) == ([], "")


def test_photos_are_shared_round_robin_and_cycled() -> None:
    assert load.shares(list(range(7)), 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert load.shares([1], 3) == [[1], [], []]


def test_the_database_url_also_becomes_db_variables_for_older_settings() -> None:
    url = "postgres://bgremover:p%40ss@127.0.0.1:5433/bgremover"
    assert topologies.database_env(url, ["DATABASE_URL", "REDIS_URL"]) == {"DATABASE_URL": url}
    older = topologies.database_env(url, ["DB", "DB_HOST"])
    assert older["DB"] == "postgres" and older["DB_PASSWORD"] == "p@ss"
    assert (older["DB_HOST"], older["DB_PORT"], older["DB_NAME"]) == (
        "127.0.0.1",
        "5433",
        "bgremover",
    )


def test_a_workers_running_task_is_read_from_its_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    assert topologies.running_task(log) is None  # no log yet
    log.write_text(
        "Starting worker worker_id=w queues=default\n"
        "Task id=a1 path=editor.tasks.process_job state=RUNNING\n"
        "Task id=a1 path=editor.tasks.process_job state=SUCCESSFUL\n"
    )
    assert topologies.running_task(log) is None
    with log.open("a") as out:
        out.write("Task id=b2 path=editor.tasks.process_job state=RUNNING\n")
    assert topologies.running_task(log) == "b2"


def test_server_limits_raise_caps_above_the_run(tmp_path: Path) -> None:
    settings = tmp_path / "bgremover" / "settings.py"
    settings.parent.mkdir()
    settings.write_text('X = os.getenv("RATE_LIMIT_UPLOADS_PER_ADDRESS", "60/10m")\n')
    args = argparse.Namespace(users=20, photos=200)
    limits = topologies.server_limits(args, tmp_path)
    assert limits["RATE_LIMIT_UPLOADS_PER_ADDRESS"] == "off"
    assert limits["RATE_LIMIT_UPLOADS"] == "off"
    assert int(limits["JOB_QUEUE_LIMIT"]) > 200
    assert int(limits["WEBSOCKET_MAX_PER_ADDRESS"]) > 200
    assert int(limits["JOB_QUEUE_LIMIT_PER_OWNER"]) >= 10


def test_the_sampler_keeps_each_process_peak_apart() -> None:
    # The child allocates; its parent holds little: the two peaks are kept apart.
    child = "b = b'x' * (60 << 20); import time; time.sleep(2)"
    parent_code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        sampler = memory.RoleSampler({"web": parent.pid}, interval_s=0.05).start()
        parent.wait(timeout=30)
        sampler.stop()
    finally:
        parent.kill()
        parent.wait()
    rows = sampler.peaks()
    assert {row["role"] for row in rows} == {"web"}
    tree = next(row for row in rows if row["process"] == "tree (sum)")
    assert tree["processes_seen"] == 2
    peaks = sorted(sampler.process_peaks.values())
    assert len(peaks) == 2 and peaks[1] >= 60 * memory.MB > peaks[0]
    assert tree["peak_bytes"] >= peaks[1]


def test_the_report_renders_results_and_errors() -> None:
    record = accepted(final=state("done"), finished_at=40.0, png=True)
    topology = {
        "topology": "scaleout",
        "loadavg_start": (1.0, 1.0, 1.0),
        "loadavg_end": (2.5, 1.0, 1.0),
        "elapsed_s": 80.0,
        "servers_ready_s": 5.0,
        "summary": figures.summarize([record]),
        "alive_at_end": {"web-1": True, "worker-1": False},
        "kill": {
            "worker": "worker-1",
            "pids": {"1": "db_worker", "2": "engine"},
            "at_s": 12.0,
            "finished_before": 4,
            "job": "j",
            "outcome": "completed",
            "silent_after_kill_s": 26.0,
            "time_to_result_s": 50.0,
        },
        "memory": [
            {"role": "web-1", "process": "daphne", "peak_bytes": 150 << 20, "processes_seen": 1}
        ],
    }
    broken = {
        "topology": "embedded",
        "loadavg_start": (1.0, 1.0, 1.0),
        "loadavg_end": (1.0, 1.0, 1.0),
        "elapsed_s": 1.0,
        "error": "RuntimeError: no server",
    }
    results = {
        "started": "now",
        "repo": "/r",
        "commit": "abc",
        "cpus": 2,
        "memory_total_bytes": 8 << 30,
        "options": {"users": 1, "photos": 1, "deadline": 60.0, "kill_worker": True},
        "topologies": [topology, broken],
    }
    text = report.render_report(results)
    assert "scaleout +kill  1/0/0" in text
    assert "1.00→2.50" in text
    assert "killed" not in text and "kill: worker-1 (db_worker, engine)" in text
    assert "not running at the end: worker-1" in text
    assert "web-1 daphne" in text and "150 MB" in text
    assert "embedded: RuntimeError: no server" in text


def test_arguments_are_checked() -> None:
    args = cli.parse_args(["--topology", "embedded", "--users", "3", "--photos", "10"])
    assert args.topologies == ["embedded"] and args.users == 3 and args.photos == 10
    assert cli.parse_args([]).topologies == ["embedded", "scaleout"]
    for bad in (["--users", "0"], ["--kill-at", "1.5"], ["--server-env", "NOEQUALS"]):
        with pytest.raises(SystemExit):
            cli.parse_args(bad)
