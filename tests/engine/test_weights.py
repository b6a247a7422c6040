"""Weights: lookup order, layout checks, downloads from a real local HTTP server, caching."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import torch

from bgremover.engine import weights_catalogue, weights_download, weights_loader
from bgremover.engine.errors import OptionsError, WeightsError
from bgremover.engine.model import U2NET, U2NETP
from bgremover.engine.weights_catalogue import ModelSpec

DRIVE_CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
</head><body><div class="uc-main"><div id="uc-text">
<p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">{id}</a>
(168M)</span> is too large for Google to scan for viruses. Would you still like to download
this file?</p><form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" class="jfk-button" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}">
</form></div></div></body></html>"""

DRIVE_QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><div class="uc-main"><div id="uc-text">
<p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently.
Please try accessing the file again later.</p></div></div></body></html>"""

CONFIRM_UUID = "5e1c3a52-0f6b-4c1e-9a57-2c1f0d4e7b11"


class WeightsServer(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 serving ``files`` by name (``/NAME``) and, like Google
    Drive, at ``/download?id=NAME``, with switchable misbehaviour."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.honour_range = True
        self.confirm_page = False  # answer /download without confirm= with Drive's warning
        self.quota_page = False  # answer everything with Drive's quota-exceeded page
        self.drops = 0  # this many responses stop after drop_after body bytes
        self.drop_after = 0
        self.delay = 0.0  # seconds before each answer, so concurrent clients overlap

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: WeightsServer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        time.sleep(server.delay)
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        name = split.path.lstrip("/")
        if server.quota_page:
            return self._send_html(DRIVE_QUOTA_PAGE)
        if name == "download":
            name = query.get("id", "")
            if server.confirm_page and "confirm" not in query:
                return self._send_html(
                    DRIVE_CONFIRM_PAGE.format(
                        id=name, action=f"{server.url}/download", uuid=CONFIRM_UUID
                    )
                )
        body = server.files.get(name)
        if body is None:
            return self.send_error(404)
        start = 0
        requested = self.headers.get("Range")
        if requested and server.honour_range:
            start = int(requested.removeprefix("bytes=").partition("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if server.drops > 0:
            server.drops -= 1
            payload = payload[: server.drop_after]
            self.close_connection = True
        self.wfile.write(payload)

    def _send_html(self, page: str) -> None:
        encoded = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


@pytest.fixture
def serve() -> Iterator:
    """``serve(files)`` starts a WeightsServer; every one is shut down after the test."""
    servers: list[WeightsServer] = []

    def start(files: dict[str, bytes]) -> WeightsServer:
        server = WeightsServer(files)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def random_u2netp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised U2NETP state dict: valid layout, bytes of our own."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random") / "u2netp.pth"
    torch.save(U2NETP().state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def hermetic(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """No lookups in the developer's own models/ or environment; a fresh model cache."""
    repo_models = tmp_path_factory.mktemp("repo-models")
    monkeypatch.setattr(weights_catalogue, "REPO_MODEL_DIR", repo_models)
    for name in (
        weights_catalogue.MODEL_DIR_ENV,
        weights_download.WEIGHTS_URL_ENV,
        weights_loader.TORCH_THREADS_ENV,
    ):
        monkeypatch.delenv(name, raising=False)
    weights_loader.clear_model_cache()
    yield repo_models
    weights_loader.clear_model_cache()


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def u2netp_spec(url: str, md5: str | None) -> ModelSpec:
    return replace(weights_catalogue.MODELS["u2netp"], url=url, md5=md5)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


# --- downloads -----------------------------------------------------------------------------


def test_download_verifies_md5_renames_atomically_and_reports_progress(
    serve, random_u2netp, tmp_path
):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    target = tmp_path / "models"
    seen: list[tuple[int, int | None]] = []

    path = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)),
        target,
        progress=lambda done, total: seen.append((done, total)),
    )

    assert path == target / "u2netp.pth"
    assert path.read_bytes() == data
    assert leftovers(target) == []
    assert seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) >= 2  # 4.6 MB arrives in 1 MB chunks


def test_drive_virus_scan_page_is_confirmed_through_its_form(serve, random_u2netp, tmp_path):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    server.confirm_page = True
    spec = u2netp_spec(
        f"{server.url}/download?id=u2netp.pth&export=download", md5_of(random_u2netp)
    )

    path = weights_download.download_weights(spec, tmp_path)

    assert path.read_bytes() == data
    first, second = (urlsplit(p) for p, _ in server.requests)
    assert dict(parse_qsl(first.query)) == {"id": "u2netp.pth", "export": "download"}
    assert second.path == "/download"
    assert dict(parse_qsl(second.query)) == {
        "id": "u2netp.pth",
        "export": "download",
        "confirm": "t",
        "uuid": CONFIRM_UUID,
    }


def test_drive_quota_page_gives_a_clear_error_and_no_file(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    server.quota_page = True
    with pytest.raises(WeightsError, match="Too many users") as raised:
        weights_download.download_weights(u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path)
    assert "fetch_models u2netp" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_a_range_request(serve, random_u2netp, tmp_path):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    server.drops, server.drop_after = 1, 1_500_000

    path = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)), tmp_path, backoff=0
    )

    assert path.read_bytes() == data
    assert [rng for _, rng in server.requests] == [None, "bytes=1500000-"]
    assert leftovers(tmp_path) == []


def test_dropped_connection_restarts_when_the_server_ignores_range(serve, random_u2netp, tmp_path):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    server.honour_range = False
    server.drops, server.drop_after = 2, 1_500_000

    path = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)), tmp_path, backoff=0
    )

    assert path.read_bytes() == data  # the 200 answers replaced the partial bytes, not appended
    assert len(server.requests) == 3


def test_gives_up_after_the_retries_and_leaves_nothing(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    server.honour_range = False
    server.drops, server.drop_after = 100, 1000

    with pytest.raises(WeightsError, match="failed after 2 retries: connection closed"):
        weights_download.download_weights(
            u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path, retries=2, backoff=0
        )
    assert len(server.requests) == 3
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_deletes_the_download_and_says_how_to_fix_it(
    serve, u2netp_weights, tmp_path
):
    # The shared u2netp.pth is a conversion, so it really differs from the authors' md5.
    server = serve({"u2netp.pth": u2netp_weights.read_bytes()})
    spec = weights_catalogue.MODELS["u2netp"]

    with pytest.raises(WeightsError) as raised:
        weights_download.download_weights(spec, tmp_path, base_url=server.url)

    message = str(raised.value)
    assert "u2netp.pth" in message and spec.md5 in message and md5_of(u2netp_weights) in message
    assert "python manage.py fetch_models u2netp" in message
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_reported_without_retrying(serve, tmp_path):
    server = serve({})
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights_download.download_weights(u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path)
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_a_weights_error(tmp_path):
    spec = u2netp_spec("http://127.0.0.1:9/u2netp.pth", None)  # discard port: refused
    with pytest.raises(WeightsError, match="Could not download u2netp.pth"):
        weights_download.download_weights(spec, tmp_path, retries=1, backoff=0)


def test_without_a_checksum_the_download_is_checked_by_layout(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes(), "bad/u2netp.pth": b"<not weights>"})
    good = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path / "a"
    )
    assert good.read_bytes() == random_u2netp.read_bytes()

    with pytest.raises(
        WeightsError,
        match="downloaded from .*/bad/u2netp.pth is not a readable "
        "PyTorch weights file.*it was deleted",
    ):
        weights_download.download_weights(
            u2netp_spec("unused", None), tmp_path / "b", base_url=f"{server.url}/bad"
        )
    assert list((tmp_path / "b").iterdir()) == []


def test_mirror_base_url_comes_from_the_environment(monkeypatch):
    spec = weights_catalogue.MODELS["u2net"]
    assert weights_download.source_url(spec) == spec.url
    assert spec.url.startswith("https://drive.usercontent.google.com/download?id=1ao1ovG1Q")
    monkeypatch.setenv(weights_download.WEIGHTS_URL_ENV, "http://mirror.example/weights/")
    assert weights_download.source_url(spec) == "http://mirror.example/weights/u2net.pth"
    assert weights_download.source_url(spec, "http://other") == "http://other/u2net.pth"


def test_old_drive_confirm_link_is_followed():
    page = (
        '<a id="uc-download-link" href="/uc?export=download&amp;confirm=AbC1&amp;id=XyZ">'
        "Download anyway</a>"
    )
    url = weights_download._confirmation_url(
        page, "https://docs.google.com/uc?export=download&id=XyZ", CookieJar()
    )
    assert url == "https://docs.google.com/uc?export=download&confirm=AbC1&id=XyZ"


# --- files found or given ------------------------------------------------------------------


def test_real_shared_weights_load_strictly_by_explicit_path(u2netp_weights):
    loaded = weights_loader.load_model(path=u2netp_weights, device="cpu")

    assert (loaded.name, loaded.spec.architecture, loaded.path) == (
        "u2netp",
        "u2netp",
        u2netp_weights,
    )
    assert loaded.device == torch.device("cpu")
    assert not loaded.module.training
    reference = torch.load(u2netp_weights, map_location="cpu", weights_only=True)
    state = loaded.module.state_dict()
    assert list(state) == list(reference)
    assert all(torch.equal(state[key], reference[key]) for key in reference)


def test_wrapped_and_data_parallel_checkpoints_load(u2netp_weights, tmp_path):
    reference = torch.load(u2netp_weights, map_location="cpu", weights_only=True)
    wrapped = tmp_path / "checkpoint.pth"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in reference.items()}, "epoch": 3}, wrapped
    )
    loaded = weights_loader.load_model("u2netp", path=wrapped, device="cpu")
    assert torch.equal(loaded.module.outconv.weight, reference["outconv.weight"])


def _bad_weight_files(shared: Path, directory: Path) -> dict[str, tuple[Path, str]]:
    state = torch.load(shared, map_location="cpu", weights_only=True)
    renamed = dict(state)
    renamed["outconv.extra"] = renamed.pop("outconv.weight")
    files = {
        "wrong keys": (renamed, "1 missing (outconv.weight); 1 unexpected (outconv.extra)"),
        "not a state dict": ([1, 2, 3], "does not contain a model state dict"),
    }
    made = {}
    for label, (content, expected) in files.items():
        path = directory / f"{label.replace(' ', '-')}.pth"
        torch.save(content, path)
        made[label] = (path, expected)
    truncated = directory / "truncated.pth"
    truncated.write_bytes(shared.read_bytes()[: shared.stat().st_size // 2])
    made["truncated"] = (truncated, "may be truncated or corrupt")
    text = directory / "notes.pth"
    text.write_text("these are not weights\n" * 50)
    made["not torch"] = (text, "not a readable PyTorch weights file")
    empty = directory / "empty.pth"
    empty.touch()
    made["empty"] = (empty, "not a readable PyTorch weights file")
    made["missing"] = (directory / "absent.pth", "absent.pth does not exist")
    made["a directory"] = (directory, "is not a file")
    return made


@pytest.mark.parametrize(
    "case",
    ["wrong keys", "not a state dict", "truncated", "not torch", "empty", "missing", "a directory"],
)
def test_unusable_explicit_files_raise_one_clear_error(case, u2netp_weights, tmp_path):
    path, expected = _bad_weight_files(u2netp_weights, tmp_path)[case]
    with pytest.raises(WeightsError) as raised:
        weights_loader.load_model("u2netp", path=path, device="cpu")
    message = str(raised.value)
    assert str(path) in message
    assert expected in message
    assert "Check the path you gave, or run `python manage.py fetch_models u2netp`" in message


def test_weights_of_the_other_architecture_are_named_as_such(u2netp_weights):
    with pytest.raises(
        WeightsError,
        match=r"does not hold u2net weights.*\d+ wrong shape.*"
        r"looks like u2netp weights",
    ):
        weights_loader.load_model("u2net", path=u2netp_weights, device="cpu")


def test_corrupt_file_in_a_model_dir_says_to_fetch_again(tmp_path):
    (tmp_path / "u2netp.pth").write_bytes(b"\x00" * 4096)
    with pytest.raises(WeightsError) as raised:
        weights_loader.load_model("u2netp", model_dir=tmp_path, device="cpu")
    message = str(raised.value)
    assert str(tmp_path / "u2netp.pth") in message
    assert "run `python manage.py fetch_models u2netp`, or set BGREMOVER_MODEL_DIR" in message


def test_file_of_unknown_name_is_recognised_by_its_layout(u2netp_weights, tmp_path):
    copy = tmp_path / "my-weights.pth"
    shutil.copyfile(u2netp_weights, copy)
    assert weights_loader.load_model(path=copy, device="cpu").name == "u2netp"
    text = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, text)
    with pytest.raises(
        WeightsError, match="other.pth holds neither U²-Net nor U²-NetP.*Check the path you gave."
    ):
        weights_loader.load_model(path=text, device="cpu")


# --- resolution order and the default model ------------------------------------------------


def test_resolution_order_path_then_model_dir_then_env_then_repo_models(
    u2netp_weights, tmp_path, hermetic, monkeypatch
):
    given, model_dir, env_dir = tmp_path / "given.pth", tmp_path / "dir", tmp_path / "env"
    for directory in (model_dir, env_dir):
        directory.mkdir()
        shutil.copyfile(u2netp_weights, directory / "u2netp.pth")
    shutil.copyfile(u2netp_weights, given)
    shutil.copyfile(u2netp_weights, hermetic / "u2netp.pth")

    def chosen(**kwargs) -> Path:
        return weights_loader.load_model("u2netp", device="cpu", download=False, **kwargs).path

    assert chosen() == hermetic / "u2netp.pth"
    monkeypatch.setenv(weights_catalogue.MODEL_DIR_ENV, str(env_dir))
    assert chosen() == env_dir / "u2netp.pth"
    assert chosen(model_dir=model_dir) == model_dir / "u2netp.pth"
    assert chosen(model_dir=model_dir, path=given) == given
    assert weights_catalogue.search_dirs(model_dir) == [model_dir, hermetic]


def test_default_is_u2netp_when_only_it_is_present(u2netp_weights, tmp_path):
    shutil.copyfile(u2netp_weights, tmp_path / "u2netp.pth")
    assert weights_catalogue.default_model_name(tmp_path) == "u2netp"
    assert weights_loader.load_model(model_dir=tmp_path, device="cpu").name == "u2netp"
    assert weights_catalogue.available_models(tmp_path) == [
        ("u2net", None),
        ("u2netp", tmp_path / "u2netp.pth"),
        ("u2net_human_seg", None),
    ]


def test_default_prefers_u2net_when_its_weights_are_present(u2netp_weights, tmp_path):
    shutil.copyfile(u2netp_weights, tmp_path / "u2netp.pth")
    torch.manual_seed(0)
    torch.save(U2NET().state_dict(), tmp_path / "u2net.pth")  # 176 MB, random but valid layout
    loaded = weights_loader.load_model(model_dir=tmp_path, device="cpu")
    assert (loaded.name, loaded.path) == ("u2net", tmp_path / "u2net.pth")
    assert isinstance(loaded.module, U2NET)


def test_no_implicit_download_for_the_default_model(serve, tmp_path, monkeypatch):
    server = serve({})
    monkeypatch.setenv(weights_download.WEIGHTS_URL_ENV, server.url)
    with pytest.raises(WeightsError, match="No model weights found.*fetch_models"):
        weights_loader.load_model(model_dir=tmp_path)
    assert server.requests == []


def test_named_model_is_downloaded_once_even_by_several_workers(
    serve, random_u2netp, tmp_path, monkeypatch
):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    monkeypatch.setenv(weights_download.WEIGHTS_URL_ENV, server.url)
    monkeypatch.setitem(
        weights_catalogue.MODELS, "u2netp", u2netp_spec("unused", md5_of(random_u2netp))
    )
    server.delay = 0.3

    with pytest.raises(WeightsError, match="No weights for model 'u2netp'.*fetch_models u2netp"):
        weights_loader.load_model("u2netp", model_dir=tmp_path, download=False)
    assert server.requests == []

    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda _: weights_loader.load_model("u2netp", model_dir=tmp_path, device="cpu"),
                range(4),
            )
        )
    assert len(server.requests) == 1
    assert all(result is results[0] for result in results)
    assert results[0].path == tmp_path / "u2netp.pth"
    assert leftovers(tmp_path) == []


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(WeightsError, match="Unknown model 'u3net'. Known models: u2net, u2netp"):
        weights_loader.load_model("u3net")


# --- caching, devices, threads -------------------------------------------------------------


def test_load_model_is_cached_per_file_and_device(u2netp_weights, tmp_path):
    first = weights_loader.load_model(path=u2netp_weights, device="cpu")
    assert weights_loader.load_model("u2netp", path=u2netp_weights, device="cpu") is first
    copy = tmp_path / "u2netp.pth"
    shutil.copyfile(u2netp_weights, copy)
    assert weights_loader.load_model(path=copy, device="cpu") is not first
    weights_loader.clear_model_cache()
    assert weights_loader.load_model(path=u2netp_weights, device="cpu") is not first


def test_default_device_is_cuda_exactly_when_available(u2netp_weights, monkeypatch):
    monkeypatch.delenv(weights_loader.DEVICE_ENV, raising=False)
    loaded = weights_loader.load_model(path=u2netp_weights)
    assert loaded.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert next(loaded.module.parameters()).device == loaded.device


@pytest.mark.parametrize(
    "device, message",
    [
        ("warp-drive", "not a device name"),
        pytest.param(
            "cuda",
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present"),
        ),
    ],
)
def test_unusable_device_is_an_options_error(device, message, u2netp_weights):
    with pytest.raises(OptionsError, match=message):
        weights_loader.load_model(path=u2netp_weights, device=device)


def test_device_comes_from_the_environment_when_not_given(u2netp_weights, monkeypatch):
    monkeypatch.setenv(weights_loader.DEVICE_ENV, "cpu")
    assert weights_loader.load_model(path=u2netp_weights).device == torch.device("cpu")
    monkeypatch.setenv(weights_loader.DEVICE_ENV, "warp-drive")
    with pytest.raises(OptionsError, match="BGREMOVER_DEVICE 'warp-drive' is not a device"):
        weights_loader.load_model(path=u2netp_weights)
    # An explicit device wins over the environment.
    assert weights_loader.load_model(path=u2netp_weights, device="cpu").device.type == "cpu"


def test_configure_torch_threads_follows_the_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(weights_loader.TORCH_THREADS_ENV, "1")
        assert weights_loader.configure_torch_threads() == 1
        assert torch.get_num_threads() == 1
        monkeypatch.delenv(weights_loader.TORCH_THREADS_ENV)
        assert weights_loader.configure_torch_threads() >= 1
        monkeypatch.setenv(weights_loader.TORCH_THREADS_ENV, "lots")
        with pytest.raises(OptionsError, match="BGREMOVER_TORCH_THREADS must be a positive"):
            weights_loader.configure_torch_threads()
    finally:
        torch.set_num_threads(before)


def test_registry_matches_the_published_facts():
    u2net, u2netp, human = (
        weights_catalogue.MODELS[n] for n in ("u2net", "u2netp", "u2net_human_seg")
    )
    assert (u2net.architecture, u2net.md5) == ("u2net", "09fb4e49b7f785c9f855baf94916840a")
    assert (u2netp.architecture, u2netp.md5) == ("u2netp", "e4f636406ca4e2af789941e7f139ee2e")
    assert "1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy" in u2netp.url
    assert human.architecture == "u2net" and "1m_Kgs91b21gayc2XLW0ou8yugAIadWVP" in human.url
    assert all(spec.filename == f"{name}.pth" for name, spec in weights_catalogue.MODELS.items())
    assert set(weights_catalogue.DEFAULT_CANDIDATES) <= set(weights_catalogue.MODELS)
