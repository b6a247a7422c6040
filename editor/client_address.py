"""Which client a request comes from, for limits that a script cannot dodge by dropping its
cookie.

By default the address is the TCP peer (``REMOTE_ADDR``, or a websocket scope's ``client``).
Behind a reverse proxy every request seems to come from the proxy, so an operator names the
header the proxy sets (settings.CLIENT_ADDRESS_HEADER, e.g. ``X-Forwarded-For``); its last
entry is used, the one the proxy itself appended (earlier entries are whatever the client
sent). IPv6 addresses count by their /64 network: one subscriber usually holds a whole /64.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest

UNKNOWN = "unknown"


def normalise(address: str | None) -> str:
    """A stable key for one client: IPv4 as is, IPv6 as its /64 network, else "unknown"."""
    text = (address or "").strip().strip("[]")
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return UNKNOWN
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _from_header(value: str | None) -> str | None:
    entries = [entry.strip() for entry in (value or "").split(",") if entry.strip()]
    return entries[-1] if entries else None


def request_address(request: HttpRequest) -> str:
    """The client address of an HTTP request (see the module doc)."""
    header = settings.CLIENT_ADDRESS_HEADER
    if header:
        meta_key = "HTTP_" + header.upper().replace("-", "_")
        forwarded = _from_header(request.META.get(meta_key))
        if forwarded:
            return normalise(forwarded)
    return normalise(request.META.get("REMOTE_ADDR"))


def scope_address(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI scope (a websocket), by the same rule."""
    header = settings.CLIENT_ADDRESS_HEADER
    if header:
        wanted = header.lower().encode("latin-1")
        headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
        values = [value.decode("latin-1") for name, value in headers if name.lower() == wanted]
        forwarded = _from_header(",".join(values))
        if forwarded:
            return normalise(forwarded)
    client = scope.get("client")
    return normalise(client[0] if client else None)
