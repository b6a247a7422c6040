"""Outbound HTTP for the API: fetching image URLs and calling webhooks without letting a
caller reach the server's own networks (SSRF).

Every hop is checked from scratch: the scheme (http, https), no credentials, the port, and
every address the host resolves to must be globally routable (or inside the operator's
``allowed_networks``). The connection then goes to the exact address that was checked (no
second DNS look-up an attacker could rebind), with the URL's host in the Host header and,
for https, in SNI and the certificate check. Redirects are followed by hand, each one
checked again. One wall-clock deadline covers the whole fetch (DNS, connects, TLS, every
read, every redirect); bodies are read in chunks up to a byte limit.

Framework-light: nothing here reads Django settings except ``policy_from_settings``.

Errors are ``FetchError`` (``FetchRefused``: the URL is not one we fetch; ``FetchFailed``:
fetching it failed), each with a user-facing ``message``, a suggested HTTP ``status``
(400 bad or forbidden URL, bad answer; 413 too large; 504 past the time limit) and a
machine-readable ``code``.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from importlib import metadata
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from api.addresses import IPNetwork, address_allowed, in_networks, parse_networks

try:
    VERSION = metadata.version("bgremover")
except metadata.PackageNotFoundError:  # a checkout run without `pip install -e .`
    VERSION = "dev"
USER_AGENT = f"bgremover/{VERSION}"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")


@dataclass(frozen=True)
class FetchPolicy:
    """What an outbound request may do. ``allowed_networks``: addresses inside them are
    allowed although private (and on any port); ``timeout_s`` bounds the whole request,
    redirects included; ``read_timeout_s`` bounds each wait for the network."""

    max_bytes: int = 25 * 1024 * 1024
    timeout_s: float = 15.0
    read_timeout_s: float = 5.0
    max_redirects: int = 3
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_ports: frozenset[int] = frozenset({80, 443})
    user_agent: str = USER_AGENT


class FetchError(Exception):
    """An outbound request that did not succeed. ``message`` is safe to show the caller;
    ``status`` is the HTTP status to answer them with; ``code`` names the case."""

    def __init__(self, message: str, *, status: int = 400, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class FetchRefused(FetchError):
    """The URL is not one this server fetches (scheme, credentials, port, private address)."""


class FetchFailed(FetchError):
    """The URL was allowed, but fetching it failed (DNS, connection, TLS, HTTP status,
    too large, too slow)."""


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str
    final_url: str


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``addresses``, all allowed) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    request_path: str
    addresses: tuple[tuple[int, str], ...] = field(default=())


def _invalid(reason: str) -> FetchRefused:
    return FetchRefused(f"The URL is not valid: {reason}.", code="url_invalid")


def _parse(url: str) -> Target:
    if not isinstance(url, str) or not url.strip():
        raise _invalid("it is empty")
    if len(url) > 2048:
        raise _invalid("it is longer than 2048 characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise _invalid("it contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _invalid(str(error)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}:" if scheme else "none"
        raise FetchRefused(
            f"Only http and https URLs can be fetched (the scheme was {shown}).",
            code="url_scheme",
        )
    if "@" in parts.netloc:
        raise FetchRefused(
            "URLs with a user name or password are not accepted.", code="url_credentials"
        )
    host = parts.hostname or ""
    if not host:
        raise _invalid("it has no host")
    if ":" in host:
        try:
            literal = ipaddress.IPv6Address(host)  # a bracketed IPv6 literal, without a zone
        except ValueError:
            literal = None
        if literal is None or literal.scope_id:
            raise _invalid("the host is not a valid IPv6 address")
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _invalid("the host name is not valid") from None
        if len(host) > 253 or not _HOST_NAME.match(host):
            raise _invalid("the host name is not valid")
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise _invalid("port 0")
    # Characters http.client would refuse are %-escaped; existing escapes are kept.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Target(url=url, scheme=scheme, host=host, port=port, request_path=path)


def _resolve(host: str, port: int, deadline: float) -> list[tuple[int, str]]:
    """getaddrinfo in a helper thread, so that a slow resolver cannot outlast the deadline
    (the thread finishes on its own when the resolver gives up)."""
    found: dict[str, Any] = {}

    def look_up() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            found["error"] = error

    worker = threading.Thread(target=look_up, name="bgremover-resolve", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise TimeoutError("name resolution")
    if "error" in found:
        raise FetchFailed(f"The host {host} could not be found.", code="host_not_found")
    addresses = []
    for family, _type, _proto, _name, sockaddr in found["infos"]:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr[0]) not in addresses:
            addresses.append((family, sockaddr[0]))
    if not addresses:
        raise FetchFailed(f"The host {host} could not be found.", code="host_not_found")
    return addresses


def _forbidden(host: str) -> FetchRefused:
    # The resolved address is not shown: it would tell a caller about internal names.
    return FetchRefused(
        f"The host {host} is on a private or reserved network; only public addresses "
        "can be fetched.",
        code="url_forbidden",
    )


def check_url(url: str, policy: FetchPolicy, deadline: float | None = None) -> Target:
    """Check one hop: scheme, credentials, host, port, and every address the host resolves
    to. Returns the target with the checked addresses to connect to; raises FetchRefused
    (or FetchFailed when the host cannot be resolved, TimeoutError past ``deadline``)."""
    if deadline is None:
        deadline = time.monotonic() + policy.timeout_s
    target = _parse(url)
    port_listed = target.port in policy.allowed_ports
    if not port_listed and not policy.allowed_networks:
        raise _port_refused(target.port)
    addresses = _resolve(target.host, target.port, deadline)
    for _family, address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise _forbidden(target.host) from None
        if not address_allowed(ip, policy.allowed_networks):
            raise _forbidden(target.host)
    if not port_listed:
        # Any port, but only to hosts wholly inside the operator's allowed networks.
        if not all(in_networks(a, policy.allowed_networks) for _f, a in addresses):
            raise _port_refused(target.port)
    return replace(target, addresses=tuple(addresses))


def _port_refused(port: int) -> FetchRefused:
    return FetchRefused(
        f"Port {port} is not allowed: use the standard ports (80 for http, 443 for https).",
        code="url_port",
    )


class _DeadlineMixin:
    """Before each network wait, the socket's timeout becomes the smaller of the per-read
    timeout and the time left: a server trickling bytes cannot outlast the deadline."""

    deadline: float
    read_timeout: float

    def arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self.settimeout(min(self.read_timeout, remaining))  # type: ignore[attr-defined]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self.arm()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self.arm()
        return super().recv(*args, **kwargs)  # type: ignore[misc]

    def send(self, *args: Any, **kwargs: Any) -> int:
        self.arm()
        return super().send(*args, **kwargs)  # type: ignore[misc]

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self.arm()
        return super().sendall(*args, **kwargs)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineMixin, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):
    pass


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to one checked address; Host, SNI and the certificate check use
    the URL's host name."""

    def __init__(
        self, target: Target, address: tuple[int, str], policy: FetchPolicy, deadline: float
    ) -> None:
        super().__init__(target.host, target.port, timeout=policy.read_timeout_s)
        self.default_port = 443 if target.scheme == "https" else 80  # Host omits it then
        self._target = target
        self._address = address
        self._policy = policy
        self._deadline = deadline

    def connect(self) -> None:
        family, ip = self._address
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        sock.deadline, sock.read_timeout = self._deadline, self._policy.read_timeout_s
        tls = None
        try:
            sock.arm()
            sock.connect((ip, self._target.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._target.scheme == "https":
                context = ssl.create_default_context()
                context.sslsocket_class = _DeadlineSSLSocket
                sock.arm()
                tls = context.wrap_socket(
                    sock, server_hostname=self._target.host, do_handshake_on_connect=False
                )
                tls.deadline, tls.read_timeout = self._deadline, self._policy.read_timeout_s
                tls.arm()
                tls.do_handshake()
                self.sock = tls
            else:
                self.sock = sock
        except BaseException:
            (tls or sock).close()
            raise


@contextmanager
def _translated_errors(host: str, policy: FetchPolicy) -> Iterator[None]:
    """Network and protocol errors as FetchFailed with a message for the caller."""
    try:
        yield
    except FetchError:
        raise
    except TimeoutError:
        raise FetchFailed(
            f"The URL took longer than {policy.timeout_s:g} s to answer.",
            status=504,
            code="timeout",
        ) from None
    except ssl.SSLCertVerificationError as error:
        raise FetchFailed(
            f"The TLS certificate of {host} could not be verified "
            f"({error.verify_message or 'invalid certificate'}).",
            code="tls_failed",
        ) from None
    except ssl.SSLError:
        raise FetchFailed(
            f"A secure (TLS) connection to {host} could not be made.", code="tls_failed"
        ) from None
    except (http.client.HTTPException, ValueError):
        raise FetchFailed(
            f"The server at {host} did not answer with valid HTTP.", code="bad_response"
        ) from None
    except OSError:
        raise FetchFailed(f"Could not connect to {host}.", code="connect_failed") from None


@contextmanager
def _exchange(
    target: Target,
    method: str,
    body: bytes | None,
    headers: Mapping[str, str],
    policy: FetchPolicy,
    deadline: float,
) -> Iterator[http.client.HTTPResponse]:
    """Send one request to the first checked address that accepts a connection; yields the
    response (headers read, body not) and closes the connection afterwards."""
    connection = None
    error: OSError | None = None
    for address in target.addresses:
        candidate = _PinnedConnection(target, address, policy, deadline)
        try:
            candidate.connect()
        except OSError as failure:  # the next address, while time is left (arm() checks)
            error = failure
            continue
        connection = candidate
        break
    if connection is None:
        raise error or OSError("no address")
    try:
        sent = {"User-Agent": policy.user_agent, "Accept-Encoding": "identity", **headers}
        connection.request(method, target.request_path, body=body, headers=sent)
        yield connection.getresponse()
    finally:
        connection.close()


def read_body(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The body, read in chunks; FetchFailed (413) as soon as it passes ``limit`` bytes, or
    up front when Content-Length says it will."""
    declared = response.getheader("Content-Length")
    length = int(declared) if declared and declared.strip().isdigit() else None
    if length is not None and length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = response.read1(CHUNK_BYTES)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    if length is not None and not response.chunked and total != length:
        raise http.client.IncompleteRead(b"", length - total)
    return b"".join(chunks)


def _too_large(limit: int) -> FetchFailed:
    return FetchFailed(
        f"The file at the URL is larger than the {limit / 1_000_000:g} MB limit.",
        status=413,
        code="too_large",
    )


def _bad_status(response: http.client.HTTPResponse) -> FetchFailed:
    # The standard phrase, not the server's own text, goes back to the caller.
    try:
        phrase = " " + HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    return FetchFailed(f"The URL answered HTTP {response.status}{phrase}.", code="bad_status")


def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """GET ``url`` under ``policy``, following up to ``policy.max_redirects`` redirects
    (each checked as a new URL). Raises FetchRefused / FetchFailed (see the module's
    docstring for statuses)."""
    deadline = time.monotonic() + policy.timeout_s
    current = url
    for _hop in range(policy.max_redirects + 1):
        host = current
        with _translated_errors(host, policy):
            target = check_url(current, policy, deadline)
            host = target.host
        with _translated_errors(host, policy):
            with _exchange(target, "GET", None, {"Accept": "image/*"}, policy, deadline) as r:
                if r.status in REDIRECT_STATUSES:
                    location = r.getheader("Location", "").strip()
                    if not location:
                        raise _bad_status(r)
                    current = urljoin(target.url, location)
                    continue
                if not 200 <= r.status < 300:
                    raise _bad_status(r)
                content = read_body(r, policy.max_bytes)
                if not content:
                    raise FetchFailed("The URL answered with an empty body.", code="empty")
                return Fetched(content, r.getheader("Content-Type", ""), target.url)
    raise FetchFailed(
        f"The URL redirected more than {policy.max_redirects} times.",
        code="too_many_redirects",
    )


def send(
    url: str,
    *,
    method: str,
    body: bytes,
    headers: Mapping[str, str],
    policy: FetchPolicy,
) -> int:
    """One request (no redirects followed) under ``policy``; returns the answer's status.
    At most ``policy.max_bytes`` of the answer's body are read, then it is dropped."""
    deadline = time.monotonic() + policy.timeout_s
    host = url
    with _translated_errors(host, policy):
        target = check_url(url, policy, deadline)
        host = target.host
    with _translated_errors(host, policy):
        with _exchange(target, method, body, headers, policy, deadline) as response:
            status = response.status
            # The answer's body is read (bounded) only so the server sees it taken; its fate
            # does not change the status.
            try:
                received = 0
                while received <= policy.max_bytes:
                    chunk = response.read1(CHUNK_BYTES)
                    if not chunk:
                        break
                    received += len(chunk)
            except (OSError, http.client.HTTPException):
                pass
            return status


def policy_from_settings() -> FetchPolicy:
    """The image-URL policy from Django settings: API_FETCH_MAX_BYTES, API_FETCH_TIMEOUT_S,
    API_FETCH_MAX_REDIRECTS, API_FETCH_ALLOWED_NETWORKS."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        networks = parse_networks(settings.API_FETCH_ALLOWED_NETWORKS)
    except ValueError as error:
        raise ImproperlyConfigured(f"API_FETCH_ALLOWED_NETWORKS: {error}") from None
    return FetchPolicy(
        max_bytes=settings.API_FETCH_MAX_BYTES,
        timeout_s=float(settings.API_FETCH_TIMEOUT_S),
        max_redirects=settings.API_FETCH_MAX_REDIRECTS,
        allowed_networks=networks,
    )
