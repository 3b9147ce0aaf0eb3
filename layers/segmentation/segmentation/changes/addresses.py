"""Where a webhook may point (API.md: no server-side request forgery).

Deployed, a URL must be https to a public address: every address its host resolves to must be
globally routable (no loopback, private, shared, link-local, metadata, multicast or reserved
address; IPv4 inside IPv6 is judged as IPv4). The check runs when the webhook is saved and again
before each attempt, and the attempt connects to the very address checked, so a name that
resolves elsewhere in between (DNS rebinding) reaches nothing it should not. The setting
WEBHOOK_ALLOW_LOCAL (the local stack) also allows http(s)://127.0.0.1, [::1] and localhost, so
tests can run a receiver.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from segmentation import errors

MAX_URL_LENGTH = 2048
_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Cloud metadata services answer on these (link-local or private already, named for clarity).
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be called: `reason` says why, in a sentence."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A URL checked: what to connect to and how."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]


def _parts(url: str, allow_local: bool) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"A webhook URL is at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise Refused("The URL does not parse.") from None
    host = (parts.hostname or "").lower()
    local = allow_local and host in _LOCAL_NAMES
    if parts.scheme != "https" and not (local and parts.scheme == "http"):
        raise Refused("A webhook URL must start with https://.")
    if not host:
        raise Refused("The URL names no host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("A webhook URL may not carry a user name or password.")
    if parts.fragment:
        raise Refused("A webhook URL may not carry a #fragment.")
    return parts


def _allowed(address: IPAddress, local: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if local:
        return address.is_loopback
    return address.is_global and not address.is_multicast and address not in _METADATA


def check_syntax(url: str, allow_local: bool) -> None:
    """Refused for a URL no webhook may have, whatever its host resolves to; a literal address
    is judged here too."""
    parts = _parts(url, allow_local)
    host = (parts.hostname or "").lower()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return
    if not _allowed(literal, allow_local and host in _LOCAL_NAMES):
        raise Refused(f"{host} is not a public address.")


def resolve(url: str, allow_local: bool, *, required: bool = True) -> Target | None:
    """The URL checked and resolved: Refused when it may not be called or any address its host
    has is not public. A host that does not resolve is Refused when `required` (at send), else
    None (when saving: it may exist later, and is checked at each send)."""
    parts = _parts(url, allow_local)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    local = allow_local and host in _LOCAL_NAMES
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        if required:
            raise Refused(f"{host} does not resolve.") from None
        return None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in found))
    for text in addresses:
        if not _allowed(ipaddress.ip_address(text.split("%", 1)[0]), local):
            raise Refused(f"{host} resolves to {text}, which is not a public address.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, addresses=addresses)


def check_for_saving(url: str, allow_local: bool) -> None:
    """422 for a URL a webhook may not have."""
    try:
        check_syntax(url, allow_local)
        resolve(url, allow_local, required=False)
    except Refused as refused:
        raise errors.Invalid(
            f"{refused.reason} Webhooks call https URLs of public addresses only.",
            [{"path": "url", "message": refused.reason}],
            code="url_not_allowed",
        ) from None
