"""One webhook POST, to the very address that was checked (changes.addresses), with TLS verified
against the URL's host name. No redirect is followed (a 3xx is a failed attempt)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from segmentation.changes.addresses import Target

TIMEOUT_SECONDS = 15.0
_READ_AT_MOST = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no answer (timeout, refused connection, TLS failure)
    duration_ms: int
    error: str | None = None


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address; SNI and the certificate check use the URL's host."""

    def __init__(self, target: Target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a given address (the local stack's loopback receivers only)."""

    def __init__(self, target: Target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(target: Target, headers: dict[str, str], body: bytes, timeout: float = TIMEOUT_SECONDS) -> Answer:
    """POST `body` to the first of the target's addresses; the answer's status, or why none came."""
    address = target.addresses[0]
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target, address, timeout)
    started = time.perf_counter()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(_READ_AT_MOST)
        status = response.status
    except TimeoutError:
        return Answer(None, _elapsed_ms(started), "timeout")
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, _elapsed_ms(started), type(error).__name__)
    finally:
        connection.close()
    elapsed = _elapsed_ms(started)
    if elapsed > timeout * 1000:
        return Answer(None, elapsed, "timeout")
    return Answer(status, elapsed)


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
