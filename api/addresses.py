"""Which IP addresses outbound requests may reach: globally routable unicast only, unless
inside the operator's allowed networks. Python's ``ipaddress.is_global`` alone is not enough
(3.11 calls 6to4 and NAT64 forms of 127.0.0.1, IPv4-compatible ::a.b.c.d, site-local and
multicast IPv6 "global"), so the rules here are explicit."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Blocks that ipaddress (Python 3.11) still calls global, or that are not for unicast.
_IPV4_NOT_PUBLIC = tuple(
    ipaddress.IPv4Network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "240.0.0.0/4")
)
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV6_6TO4 = ipaddress.IPv6Network("2002::/16")
_IPV6_TEREDO = ipaddress.IPv6Network("2001::/32")
_IPV6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``["127.0.0.0/8", "fd00::/8", "10.1.2.3"]`` as networks; ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as error:
            raise ValueError(f"not an IP network: {value!r} ({error})") from None
    return tuple(networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV6_6TO4:
        return address.sixtofour
    if address in _IPV6_NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, multicast, reserved,
    unspecified, shared (100.64/10), nor an IPv6 form wrapping such an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if address.scope_id or address in _IPV6_TEREDO:
            return False
        return (
            address in _IPV6_GLOBAL_UNICAST
            and address.is_global
            and not address.is_reserved
            and not address.is_multicast
        )
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not any(address in network for network in _IPV4_NOT_PUBLIC)
    )


def address_allowed(address: IPAddress, allowed_networks: Iterable[IPNetwork] = ()) -> bool:
    """Public, or inside one of the operator's ``allowed_networks`` (an IPv4-mapped IPv6
    address counts as its IPv4 address)."""
    return in_networks(str(address), allowed_networks) or is_public(address)


def in_networks(address: str, networks: Iterable[IPNetwork]) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)
