"""api.outbound against real servers on 127.0.0.1: what may be fetched, what is refused
(before any connection), and the limits on redirects, size and time."""

from __future__ import annotations

import ipaddress
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from api.addresses import is_public, parse_networks
from api.outbound import (
    USER_AGENT,
    FetchError,
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    fetch,
    policy_from_settings,
)
from tests.api.local_servers import (
    answer,
    free_port,
    nobody_connected,
    redirect,
    self_signed_certificate,
    serve,
    silent_listener,
    trickle,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
LOOPBACK = parse_networks(["127.0.0.0/8"])
ONLY_127_0_0_1 = parse_networks(["127.0.0.1/32"])


def policy(**changes: object) -> FetchPolicy:
    base = {"allowed_networks": LOOPBACK, "timeout_s": 2.0, "read_timeout_s": 1.0}
    return FetchPolicy(**{**base, **changes})  # type: ignore[arg-type]


def refused(url: str, rules: FetchPolicy, code: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, rules)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_an_allowed_image_is_fetched_with_our_user_agent_and_no_cookies() -> None:
    with serve({"/cat.png": lambda h: answer(h, PNG)}) as server:
        got = fetch(server.url("/cat.png?size=full"), policy())
    assert got.content == PNG
    assert got.content_type == "image/png"
    assert got.final_url == server.url("/cat.png?size=full")
    (seen,) = server.requests
    assert seen.path == "/cat.png?size=full"
    assert seen.headers["Host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("bgremover/")
    assert "Cookie" not in seen.headers and "Proxy-Authorization" not in seen.headers


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "10.0.0.1",
        "192.168.1.20",
        "172.16.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "[::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "[fe80::1]",
        "[fc00::1]",
        "[2002:7f00:1::]",  # 6to4 wrapping 127.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 wrapping 10.0.0.1
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f.1",  # hex and short form
        "017700000001",  # octal
        "127.1",
        "localhost",
    ],
)
def test_private_and_reserved_addresses_are_refused(host: str) -> None:
    error = refused(f"http://{host}/image.png", FetchPolicy(), "url_forbidden")
    assert isinstance(error, FetchRefused) and error.status == 400
    assert "private or reserved network" in error.message


def test_a_refused_address_is_never_connected_to() -> None:
    with silent_listener() as (listener, port):
        rules = FetchPolicy(allowed_ports=frozenset({80, 443, port}))
        refused(f"http://127.0.0.1:{port}/", rules, "url_forbidden")
        refused(f"http://2130706433:{port}/", rules, "url_forbidden")
        assert nobody_connected(listener)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2002:808:808::1", "::ffff:8.8.8.8"]
)
def test_public_addresses_count_as_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/x",
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/x",
    ],
)
def test_a_redirect_to_a_forbidden_address_is_refused(target: str) -> None:
    routes: dict[str, object] = {}
    with serve(routes) as first, serve({"/x": lambda h: answer(h, PNG)}) as victim:  # type: ignore[arg-type]
        location = target.format(port=victim.port)
        routes["/go"] = lambda h: redirect(h, location)
        refused(first.url("/go"), policy(allowed_networks=ONLY_127_0_0_1), "url_forbidden")
        assert [s.path for s in first.requests] == ["/go"]
        assert victim.requests == []


def test_a_redirect_to_another_scheme_is_refused() -> None:
    with serve({"/go": lambda h: redirect(h, "file:///etc/passwd")}) as server:
        refused(server.url("/go"), policy(), "url_scheme")


def test_redirects_are_followed_up_to_the_limit_and_each_hop_checked() -> None:
    def hop(n: int) -> object:
        return lambda h: redirect(h, f"/hop{n + 1}", status=301 if n % 2 else 307)

    routes = {f"/hop{n}": hop(n) for n in range(5)}
    routes["/hop3"] = lambda h: answer(h, PNG)
    with serve(routes) as server:
        got = fetch(server.url("/hop0"), policy(max_redirects=3))
        assert got.content == PNG and got.final_url == server.url("/hop3")
        error = refused(server.url("/hop0"), policy(max_redirects=2), "too_many_redirects")
    assert isinstance(error, FetchFailed) and error.status == 400
    assert error.message == "The URL redirected more than 2 times."


def test_a_body_over_the_limit_is_refused_up_front_from_its_content_length() -> None:
    def liar(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(10**9))
        h.end_headers()
        h.wfile.write(b"x" * 100)
        h.wfile.flush()
        time.sleep(1.5)  # would time the fetch out if it waited for the body

    with serve({"/big": liar}) as server:
        start = time.monotonic()
        error = refused(server.url("/big"), policy(max_bytes=1000), "too_large")
    assert time.monotonic() - start < 1.2
    assert error.status == 413
    assert error.message == "The file at the URL is larger than the 0.001 MB limit."


def _chunked(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for _ in range(200):
        h.wfile.write(b"1000\r\n" + b"y" * 0x1000 + b"\r\n")
    h.wfile.write(b"0\r\n\r\n")


def _unframed(h: BaseHTTPRequestHandler) -> None:
    # HTTP/1.0 style: no length, the body ends when the connection closes.
    h.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\n\r\n" + b"z" * 300_000)


@pytest.mark.parametrize("route", [_chunked, _unframed])
def test_a_body_over_the_limit_without_a_length_is_cut_off_while_read(route: object) -> None:
    with serve({"/big": route}) as server:  # type: ignore[dict-item]
        refused(server.url("/big"), policy(max_bytes=100_000), "too_large")
        # The same answers under the limit come through whole.
        assert len(fetch(server.url("/big"), policy(max_bytes=1_000_000)).content) in (
            200 * 0x1000,
            300_000,
        )


def _slow_body(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "1000")
    h.end_headers()
    h.wfile.flush()
    trickle(h, b"b" * 1000, every_s=0.05, for_s=3)


def _slow_headers(h: BaseHTTPRequestHandler) -> None:
    trickle(h, b"HTTP/1.1 200 OK\r\nX-Padding: " + b"p" * 200, every_s=0.05, for_s=3)


@pytest.mark.parametrize("route", [_slow_body, _slow_headers])
def test_a_trickling_server_is_cut_off_at_the_total_time_limit(route: object) -> None:
    with serve({"/slow": route}) as server:  # type: ignore[dict-item]
        start = time.monotonic()
        # Each byte comes well within the per-read timeout: only the total limit stops it.
        error = refused(server.url("/slow"), policy(timeout_s=0.5, read_timeout_s=1.0), "timeout")
        elapsed = time.monotonic() - start
    assert 0.45 < elapsed < 1.5
    assert error.status == 504
    assert error.message == "The URL took longer than 0.5 s to answer."


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/cat.png",
        "gopher://example.com:70/_",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "example.com/cat.png",
    ],
)
def test_other_schemes_are_refused(url: str) -> None:
    error = refused(url, FetchPolicy(), "url_scheme")
    assert error.message.startswith("Only http and https URLs can be fetched")


@pytest.mark.parametrize("userinfo", ["user:secret@", "user@", ":@"])
def test_credentials_in_the_url_are_refused(userinfo: str) -> None:
    with serve({"/": lambda h: answer(h, PNG)}) as server:
        url = f"http://{userinfo}127.0.0.1:{server.port}/"
        error = refused(url, policy(), "url_credentials")
        assert server.requests == []
    assert error.message == "URLs with a user name or password are not accepted."


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://",
        "http:///path",
        "http://[::1/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://example.com/\r\nX-Injected: 1",
        "http://a%2fb.example/",
        "http://[fe80::1%25eth0]/",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    error = refused(url, FetchPolicy(), "url_invalid")
    assert error.message.startswith("The URL is not valid")


def test_other_ports_are_refused_unless_the_host_is_in_the_allowed_networks() -> None:
    refused("http://example.com:22/", FetchPolicy(), "url_port")
    with serve({"/": lambda h: answer(h, PNG)}) as server:
        # 127.0.0.1 is allowed, and so is any port on it; a public host's odd port is not.
        assert fetch(server.url("/"), policy()).content == PNG
        refused("http://8.8.8.8:8080/", policy(), "url_port")


def test_an_error_status_a_closed_port_and_an_empty_body_fail_with_reasons() -> None:
    with serve({"/empty": lambda h: answer(h, b"")}) as server:
        error = refused(server.url("/missing"), policy(), "bad_status")
        assert error.message == "The URL answered HTTP 404 Not Found."
        refused(server.url("/empty"), policy(), "empty")
    refused(f"http://127.0.0.1:{free_port()}/", policy(), "connect_failed")


def test_https_to_a_self_signed_certificate_fails_verification(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    files = self_signed_certificate(tmp_path)
    with serve({"/": lambda h: answer(h, PNG)}, tls_files=files) as server:
        error = refused(server.url("/"), policy(), "tls_failed")
        assert server.requests == []
    assert "could not be verified" in error.message and error.status == 400


def test_policy_from_settings_reads_the_api_settings(settings: object) -> None:
    settings.API_FETCH_ALLOWED_NETWORKS = ["10.1.0.0/16", "fd00::/8"]  # type: ignore[attr-defined]
    settings.API_FETCH_MAX_BYTES = 1234  # type: ignore[attr-defined]
    settings.API_FETCH_TIMEOUT_S = 7  # type: ignore[attr-defined]
    settings.API_FETCH_MAX_REDIRECTS = 1  # type: ignore[attr-defined]
    rules = policy_from_settings()
    assert rules.allowed_networks == parse_networks(["10.1.0.0/16", "fd00::/8"])
    assert (rules.max_bytes, rules.timeout_s, rules.max_redirects) == (1234, 7.0, 1)
    settings.API_FETCH_ALLOWED_NETWORKS = ["10.1.0.0/16", "intranet"]  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match="intranet"):
        policy_from_settings()


def test_the_default_byte_limit_is_the_upload_limit() -> None:
    from django.conf import settings

    assert settings.API_FETCH_MAX_BYTES == settings.MAX_UPLOAD_BYTES
    assert settings.API_IMAGE_URLS is False and settings.API_FETCH_ALLOWED_NETWORKS == []


def test_a_host_name_is_sent_as_host_while_the_checked_address_is_connected_to() -> None:
    # localhost may resolve to ::1 first, where nothing listens: the next checked address
    # is tried, and the Host header keeps the name.
    with serve({"/": lambda h: answer(h, PNG)}) as server:
        rules = policy(allowed_networks=parse_networks(["127.0.0.0/8", "::1/128"]))
        assert fetch(server.url("/", host="localhost"), rules).content == PNG
    assert server.requests[0].headers["Host"] == f"localhost:{server.port}"
