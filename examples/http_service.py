"""A service in a script: start a real HTTP server, wait until it answers, use it, stop it.

    python examples/http_service.py

1. Python's own ``http.server`` is started with :class:`procfound.ManagedProcess`, and
   ``wait_ready(http=...)`` waits until a GET is answered (sync code).
2. The same from async code: ``async with`` and ``await wait_for_http(...)`` (asyncio here; trio
   is the same code under ``anyio.run(..., backend="trio")``).
3. A server started with a typo in its arguments exits at once: the wait fails at once too, with
   its exit code and the end of its stderr, instead of waiting for the timeout.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio

from procfound import ManagedProcess, ProcessError, wait_for_http


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def http_server(port: int, root: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(root),
        str(port),
    ]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return f"{answer.status} {answer.read().decode().strip()!r}"


def from_sync_code(port: int, root: Path) -> None:
    url = f"http://127.0.0.1:{port}/"
    # stderr_relay=False: the server's access log is kept (server.stderr_tail), not printed.
    with ManagedProcess(http_server(port, root), stderr_relay=False) as server:
        print(f"started http.server, pid {server.pid}")
        started = time.monotonic()
        server.wait_ready(http=url, timeout=10)
        print(f"ready after {time.monotonic() - started:.2f}s: {url} answers")
        print(f"GET /hello.txt -> {get(url + 'hello.txt')}")
        print(f"stopped gracefully: {server.terminate_gracefully(timeout=5)}")
    print(f"server {server.pid} still running: {server.is_running()}")


async def from_async_code(port: int, root: Path) -> None:
    url = f"http://127.0.0.1:{port}/hello.txt"
    async with ManagedProcess(http_server(port, root), stderr_relay=False) as server:
        status = await wait_for_http(server, url, timeout=10)
        print(f"async: {url} answered {status}")
    # A typo: "--bnd" is not an option, so the server exits at once, and so does the wait.
    typo = [sys.executable, "-m", "http.server", "--bnd", "127.0.0.1", str(port)]
    async with ManagedProcess(typo, stderr_relay=False) as broken:
        started = time.monotonic()
        try:
            await wait_for_http(broken, f"http://127.0.0.1:{port}/", timeout=30)
        except ProcessError as error:
            waited = time.monotonic() - started
            print(f"broken server: exit code {error.return_code} after {waited:.2f}s (timeout 30s)")
            last = (error.stderr or "").strip().splitlines()[-1:]
            print(f"its last stderr line: {last[0] if last else '(none)'}")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="procfound-example-"))
    (root / "hello.txt").write_text("hello from the service\n")
    try:
        print("== from sync code")
        from_sync_code(free_port(), root)
        print("== from async code")
        anyio.run(from_async_code, free_port(), root)
    finally:
        (root / "hello.txt").unlink()
        root.rmdir()


if __name__ == "__main__":
    main()
