"""A plugin host on trio: launch a plugin, wait for its handshake, call it, stop it.

The same host as ``plugin_host_asyncio.py``, written for trio: procfound's coroutines run
natively under trio (through AnyIO), and a cancel scope around the handshake wait shows that a
plugin that never answers cannot hang the host.

Run: ``python examples/plugin_host_trio.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from procfound import ManagedProcess, wait_for_process_output

PLUGIN = Path(__file__).with_name("greeter_plugin.py")
CORE_PROTOCOL_VERSION = "1"


def parse_handshake(text: str) -> tuple[str, int]:
    """The (host, port) of a go-plugin handshake line, after checking what we support."""
    line = text.strip().splitlines()[-1]
    core, app, network, address, protocol = line.split("|")
    if core != CORE_PROTOCOL_VERSION or network != "tcp" or protocol != "grpc":
        raise RuntimeError(f"unsupported plugin handshake: {line!r}")
    host, port = address.rsplit(":", 1)
    if host != "127.0.0.1":  # a local plugin must only listen on loopback
        raise RuntimeError(f"plugin listens on {host}, not on 127.0.0.1")
    print(f"host: plugin speaks protocol {app}, listening on {address}")
    return host, int(port)


async def call_plugin(host: str, port: int) -> str:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        data = b""
        while not data.endswith(b"\n"):
            chunk = await stream.receive_some()
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


async def main() -> None:
    async with ManagedProcess([sys.executable, str(PLUGIN)]) as plugin:
        print(f"host: launched plugin, pid {plugin.pid}")
        with trio.fail_after(10):  # trio's own deadline works too; 10 s is generous
            handshake = await wait_for_process_output(plugin, ["|tcp|", "|grpc"])
        host, port = parse_handshake(handshake)
        for _ in range(2):
            print(f"host: plugin says {await call_plugin(host, port)!r}")
        stopped = await plugin.aterminate_gracefully(timeout=5)
        print(f"host: plugin stopped gracefully: {stopped}, exit code {plugin.returncode}")


if __name__ == "__main__":
    trio.run(main)
