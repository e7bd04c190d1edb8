"""Who may see the private pages (reader list, archive, health, unsigned digests). Pure: the
web server hands in what the request says.

A request is from this machine only if it comes straight from a loopback peer, names a
loopback Host, and carries no forwarding headers: a reverse proxy on the same machine makes
its peer loopback too, but it passes the public Host or adds X-Forwarded-For. Forwarding headers
count only from `[web] trusted_proxies`, and then the client is the rightmost address in them
that is not one of those proxies (a client can write any left part itself). Anyone else
needs the `[web]` login.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
from collections.abc import Mapping

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


def forwarded_for(headers: Mapping[str, str]) -> list[str]:
    """The hops that X-Forwarded-For and Forwarded (RFC 7239) name, left to right."""
    hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    hops += re.findall(r'for=("?\[?[^;,"]+\]?"?)', headers.get("forwarded", ""), re.I)
    return hops


def client(peer: str, headers: Mapping[str, str], proxies: tuple[str, ...]) -> str:
    """The address the request came from, as far as it can be believed."""
    if not _trusted(peer, proxies):
        return peer
    for hop in reversed(forwarded_for(headers)):
        if not _trusted(hop, proxies):
            return hop
    return peer


def from_this_machine(peer: str, host: str, headers: Mapping[str, str],
                      proxies: tuple[str, ...]) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    if forwarded_for(headers):
        if not _trusted(peer, proxies):
            return False  # a proxy nobody declared, or a forgery
        ip = _ip(client(peer, headers, proxies))
        return ip is not None and ip.is_loopback
    ip = _ip(peer)
    return ip is not None and ip.is_loopback and name.lower() in LOOPBACK_HOSTS


def logged_in(authorization: str, username: str, password: str) -> bool:
    """HTTP basic credentials that match (compared in constant time)."""
    if not password or not authorization.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, secret = given.partition(":")
    return hmac.compare_digest(user.encode(), username.encode()) & hmac.compare_digest(
        secret.encode(), password.encode())
