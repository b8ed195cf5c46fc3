"""A tiny plugin for the plugin host examples: a go-plugin style handshake, then one service.

It listens on a free port of 127.0.0.1 (never another interface), prints the handshake line
``1|6|tcp|127.0.0.1:PORT|grpc`` on stdout, and answers every connection with one line. It
logs to stderr (the host relays that to its own stderr) and exits cleanly on SIGTERM, which
is how the host's ``terminate_gracefully`` asks it to stop.

Run it alone to see the handshake: ``python examples/greeter_plugin.py`` (Ctrl-C to stop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from types import FrameType

CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 6


def stop(signum: int, frame: FrameType | None) -> None:
    # Raising from the handler interrupts the blocking accept() below (PEP 475).
    raise SystemExit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        print(f"greeter: starting, pid {os.getpid()}", file=sys.stderr, flush=True)
        print(
            f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|127.0.0.1:{port}|grpc",
            flush=True,
        )
        served = 0
        try:
            while True:
                connection, _ = server.accept()
                with connection:
                    served += 1
                    connection.sendall(f"hello from the greeter plugin (call {served})\n".encode())
        finally:
            print(f"greeter: stopping after {served} call(s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C when run by hand
        main()
