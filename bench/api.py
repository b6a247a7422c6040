"""The HTTP API under load, beside the browser's way (bench/README.md, "API").

One embedded server (Daphne, its in-process workers, the real weights), as ``make run``
starts it, and a key made with ``manage.py apikey create``:

- **Latency**: one photo at a time at 1 and 12 MP, alternating the synchronous remove.bg call
  with the browser's way (upload, poll the status every 0.1 s, download the PNG); medians,
  and the API's overhead as the median of the back-to-back pairs' ratios − 1.
- **Throughput**: 4 clients at once sending 1 MP photos through the synchronous call, images a
  minute over the runs' wall time; the same photos the browser's way beside it, in the order
  API, browser, browser, API, so that a load drifting during the run weighs on both alike.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import speed
from bench.data import REPO_ROOT, spread
from bench.loopback.client import Answer, Client
from bench.loopback.servers import ServerConfig, prepare, web_server

LATENCY_SIZES = {1.0: 9, 12.0: 7}  # megapixels: repeats of each way
QUICK_LATENCY_SIZES = {1.0: 2, 12.0: 1}
CLIENTS = 4
THROUGHPUT_PHOTOS, QUICK_THROUGHPUT_PHOTOS = 8, 4  # per run; each way runs twice
POLL_S = 0.1
TIMEOUT_S = 900.0


def _limits() -> dict[str, str]:
    """Nothing the run does may be refused: rate limits off, queue caps above the run."""
    return {
        "API_RATE_LIMIT": "off",
        "RATE_LIMIT_UPLOADS": "off",
        "RATE_LIMIT_DOWNLOADS": "off",
        "RATE_LIMIT_UPLOADS_PER_ADDRESS": "off",
        "RATE_LIMIT_DOWNLOADS_PER_ADDRESS": "off",
        "JOB_QUEUE_LIMIT_PER_OWNER": "100",
        "MAX_UPLOAD_BYTES": str(60 * 1024 * 1024),
    }


def api_call(base_url: str, key: str, name: str, data: bytes) -> Answer:
    """The synchronous call, as remove.bg's curl example sends it (a transparent PNG)."""
    client = Client(base_url, TIMEOUT_S)
    boundary = "benchboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; '
            f'filename="{name}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Api-Key": key}
    return client.request("POST", "/api/v1.0/removebg", body, headers)


def browser_way(base_url: str, name: str, data: bytes) -> Answer:
    """Upload, poll until done, download the transparent PNG: what the page does."""
    client = Client(base_url, TIMEOUT_S)
    client.open_page()
    started = time.monotonic()
    answer = client.upload(name, data)
    state = answer.json() or {}
    if answer.status != 201:
        return answer
    while not state.get("finished"):
        time.sleep(POLL_S)
        state = client.job_state(state["urls"]["status"]) or state
    if state.get("status") != "done":
        return Answer(500, time.monotonic() - started, error=str(state.get("error")))
    query = "background=transparent&format=png&output=cutout"
    download = client.request("GET", f"/images/{state['image']}/download/?{query}")
    download.elapsed_s = time.monotonic() - started
    return download


def _timed(way: Callable[[], Answer]) -> float:
    answer = way()
    if answer.status != 200:
        raise RuntimeError(f"a request failed: {answer.summary()}")
    return answer.elapsed_s


def _photos(shared: Path, folder: Path, megapixels: float, count: int) -> list[tuple[str, bytes]]:
    stems = spread(sorted(p.stem for p in (shared / "eval/sod/images").glob("*.jpg")), count)
    photos = []
    for stem in stems:
        target = folder / f"{stem}-{megapixels:g}mp.jpg"
        speed.upscale_to_megapixels(shared / "eval/sod/images" / f"{stem}.jpg", megapixels, target)
        photos.append((target.name, target.read_bytes()))
    return photos


def latency(url: str, key: str, photos: dict[float, list[tuple[str, bytes]]]) -> dict:
    rows = {}
    for megapixels, chosen in photos.items():
        api, browser = [], []
        for name, data in chosen:  # alternating, so drift in the load hits both alike
            browser.append(_timed(lambda n=name, d=data: browser_way(url, n, d)))
            api.append(_timed(lambda n=name, d=data: api_call(url, key, n, d)))
        # Each pair ran back to back, under the same load: the median of the pairs' ratios
        # is steadier than the ratio of the medians on a busy machine.
        ratios = [a / b for a, b in zip(api, browser, strict=True)]
        rows[f"{megapixels:g}"] = {
            "repeats": len(chosen),
            "api_median_s": statistics.median(api),
            "browser_median_s": statistics.median(browser),
            "api_overhead": statistics.median(ratios) - 1,
            "pairs_s": [[round(a, 3), round(b, 3)] for a, b in zip(api, browser, strict=True)],
        }
    return rows


def throughput(url: str, key: str, photos: list[tuple[str, bytes]]) -> dict:
    def run(one: Callable[[tuple[str, bytes]], Answer]) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(one, photos))
        failed = [a.summary() for a in answers if a.status != 200]
        if failed:
            raise RuntimeError(f"{len(failed)} requests failed, e.g. {failed[0]}")
        return time.monotonic() - started

    ways = {
        "api": lambda photo: api_call(url, key, *photo),
        "browser": lambda photo: browser_way(url, *photo),
    }
    # A, B, B, A: a load that drifts during the run weighs on both ways alike.
    seconds = dict.fromkeys(ways, 0.0)
    for name in ("api", "browser", "browser", "api"):
        seconds[name] += run(ways[name])
    return {
        "clients": CLIENTS,
        "photos": 2 * len(photos),
        "megapixels": 1.0,
        **{
            name: {"seconds": spent, "images_per_min": 2 * len(photos) / spent * 60}
            for name, spent in seconds.items()
        },
    }


def run(shared: Path, workdir: Path, quick: bool, log: Callable[[str], None]) -> dict:
    sizes = QUICK_LATENCY_SIZES if quick else LATENCY_SIZES
    count = QUICK_THROUGHPUT_PHOTOS if quick else THROUGHPUT_PHOTOS
    workdir.mkdir(parents=True, exist_ok=True)
    config = ServerConfig(
        REPO_ROOT, sys.executable, shared / "models", workdir / "static", workdir, 0
    )
    prepare(config)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        env = config.environment(Path(scratch) / "data", _limits())
        config.manage(env, "migrate", "--noinput", "-v", "0")
        created = config.manage(env, "apikey", "create", "bench")
        key = re.search(r"bgr_[A-Za-z0-9]+", created)[0]  # type: ignore[index]
        with web_server("api-bench-web", config, env) as web:
            log("api: warming up (first job loads the model)")
            warm = _photos(shared, workdir, 1.0, 1)[0]
            _timed(lambda: api_call(web.url, key, *warm))
            photos = {mp: _photos(shared, workdir, mp, n) for mp, n in sizes.items()}
            log("api: latency, the synchronous call beside the browser's way")
            load_before = os.getloadavg()
            rows = latency(web.url, key, photos)
            log(f"api: throughput, {CLIENTS} clients")
            flow = throughput(web.url, key, _photos(shared, workdir, 1.0, count))
            load_after = os.getloadavg()
    return {"latency": rows, "throughput": flow, "load_average": [load_before, load_after]}
