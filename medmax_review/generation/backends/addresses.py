"""Where a job's LLM server may be: the allow-list is checked against the address the host
name resolves to, not only the name, so a listed name that resolves (or is re-pointed, DNS
rebinding) to a private, loopback or link-local address is refused.

An address written as such in LLM_ALLOWED_BASE_URLS (http://10.0.0.5:8000/v1) is the
administrator's explicit choice and allowed; so are names in LLM_ALLOWED_PRIVATE_HOSTS (a
vLLM box on the office network). For plain http the connection is pinned to the address that
was checked; over https a re-pointed name fails the certificate check instead.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


@dataclass(frozen=True)
class Resolved:
    url: str  # what to connect to (the checked address for plain http)
    host_header: str  # the name to send as Host, when the URL was pinned
    problem: str = ""


def _inside(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_reserved or address.is_multicast or address.is_unspecified)


def _literal(host: str):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(url: str) -> Resolved:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _literal(host) is not None:
        return Resolved(url=url, host_header="")  # an address the allow-list names outright
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        # Not resolvable now: nothing to refuse; connecting fails, is retried and reported.
        return Resolved(url=url, host_header="")
    addresses = sorted({ipaddress.ip_address(info[4][0]) for info in infos},
                       key=lambda a: (a.version, str(a)))
    if host.lower() not in {h.lower() for h in settings.LLM_ALLOWED_PRIVATE_HOSTS}:
        inside = [str(a) for a in addresses if _inside(a)]
        if inside:
            return Resolved(url=url, host_header="", problem=(
                f"base URL host {host!r} resolves to {', '.join(inside)}, a private, loopback or "
                "link-local address; list the address itself in LLM_ALLOWED_BASE_URLS or the "
                "name in LLM_ALLOWED_PRIVATE_HOSTS to allow it"))
    if parts.scheme != "http" or not addresses:
        return Resolved(url=url, host_header="")
    first = addresses[0]
    netloc = f"[{first}]" if first.version == 6 else str(first)
    if parts.port:
        netloc += f":{parts.port}"
    host_header = host + (f":{parts.port}" if parts.port else "")
    return Resolved(url=urlunsplit(parts._replace(netloc=netloc)), host_header=host_header)
