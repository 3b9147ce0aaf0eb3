"""The local stack's HTTP server, at the socket: what every connection it accepts is set to."""

from __future__ import annotations

import socket
import threading

from infra.local.server import make_server


def test_accepted_connections_send_without_waiting_for_acks() -> None:
    """TCP_NODELAY: the server writes a response's headers and body apart, and on a kept-alive
    connection Nagle's algorithm with the client's delayed ACK held every response 40 ms."""
    seen: list[int] = []
    server = make_server(stack=None, host="127.0.0.1", port=0)  # type: ignore[arg-type]
    handler = server.RequestHandlerClass

    class Recording(handler):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            super().setup()
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server.RequestHandlerClass = Recording
    serving = threading.Thread(target=server.handle_request)
    serving.start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=5):
            pass  # connected and closed: the handler is set up, then reads no request
        serving.join(timeout=5)
    finally:
        server.server_close()
    assert not serving.is_alive()
    assert seen and all(seen), seen
