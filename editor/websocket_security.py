"""Who may open a websocket, and how many at once.

``SameOriginWebsocketValidator`` wraps the websocket application: a socket is accepted only
when its ``Origin`` is exactly the site's own origin as the handshake addresses it (scheme,
host and port), or exactly one of settings.CSRF_TRUSTED_ORIGINS; and its ``Host`` is in
ALLOWED_HOSTS. A missing, malformed or ``null`` Origin is refused. Channels' own
AllowedHostsOriginValidator compares host names only, so a page on another port of the same
host (another app, a test server) could open this site's sockets with the visitor's cookie.

The site's own scheme comes, in this order, from the header a trusted TLS proxy sets
(settings.SECURE_PROXY_SSL_HEADER, which TRUST_PROXY_SCHEME_HEADER turns on), from the
server's ``scheme`` in the scope (``ws`` is http, ``wss`` is https), and else (Daphne does
not say) from settings.HTTPS. Default ports are normalised: ``http://host`` is
``http://host:80``.

``ConnectionCounter`` counts open sockets per key (owner, client address) in this server
process, for the caps in editor.consumers.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

# RFC 6455 "policy violation".
CLOSE_POLICY_VIOLATION = 1008

DEFAULT_PORTS = {"http": 80, "https": 443}

# (scheme, host, port): one web origin, normalised.
Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as an Origin (default port filled in), else None: other
    schemes, ``null``, user info, a path, query or fragment, a bad port."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return (scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def _header_values(scope: Mapping[str, Any], name: bytes) -> list[str]:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
    return [value.decode("latin-1") for key, value in headers if key.lower() == name]


def _one_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The header's value if it is sent exactly once, else None."""
    values = _header_values(scope, name)
    return values[0] if len(values) == 1 else None


def _allowed_hosts() -> list[str]:
    # As Django's HttpRequest.get_host: DEBUG with no ALLOWED_HOSTS means local names only.
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed


def site_scheme(scope: Mapping[str, Any]) -> str:
    """``http`` or ``https``: how the browser reached this site (see the module doc)."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        meta_name, secure_value = proxy_header
        if meta_name.startswith("HTTP_"):
            name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
            values = _header_values(scope, name)
            if values:
                # As Django's HttpRequest.scheme: the first entry decides.
                first = values[0].split(",", 1)[0].strip()
                return "https" if first == secure_value else "http"
    scheme = scope.get("scheme")
    if scheme is not None:
        return "https" if scheme in ("wss", "https") else "http"
    return "https" if getattr(settings, "HTTPS", False) else "http"


def site_origin(scope: Mapping[str, Any]) -> Origin | None:
    """The origin the handshake addresses (Host header and scheme), or None when the Host is
    missing, repeated, malformed or not in ALLOWED_HOSTS."""
    host = _one_header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return parse_origin(f"{site_scheme(scope)}://{host}")


def origin_allowed(scope: Mapping[str, Any]) -> bool:
    """Whether a websocket handshake may go on (see the module doc)."""
    own = site_origin(scope)
    if own is None:
        return False
    origin_header = _one_header(scope, b"origin")
    if origin_header is None:
        return False
    origin = parse_origin(origin_header)
    if origin is None:
        return False
    if origin == own:
        return True
    return any(parse_origin(trusted) == origin for trusted in settings.CSRF_TRUSTED_ORIGINS)


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SameOriginWebsocketValidator:
    """ASGI middleware: websockets from a foreign origin are refused at the handshake."""

    def __init__(self, application: Callable[..., Awaitable[None]]) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or origin_allowed(scope):
            await self.application(scope, receive, send)
            return
        # Refuse the handshake (the server answers 403) and end this application instance.
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION})
                return
            if message["type"] == "websocket.disconnect":
                return


class ConnectionCounter:
    """Open connections per key in this process. ``acquire`` and ``release`` are atomic
    (a lock, held for no await), so event-loop code and threads may share one counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def acquire(self, key: str, limit: int) -> bool:
        """Count one more connection for ``key`` unless it already has ``limit`` (0 or less:
        no limit). True when counted; the caller then calls ``release`` exactly once."""
        with self._lock:
            count = self._counts.get(key, 0)
            if limit > 0 and count >= limit:
                return False
            self._counts[key] = count + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            count = self._counts.get(key, 0) - 1
            if count > 0:
                self._counts[key] = count
            else:
                self._counts.pop(key, None)

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
