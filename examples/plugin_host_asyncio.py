"""A plugin host on asyncio: launch a plugin, wait for its handshake, call it, stop it.

The plugin (``greeter_plugin.py``, beside this file) prints a go-plugin style handshake line,
``1|6|tcp|127.0.0.1:PORT|grpc``, and then serves on that address. The host:

1. launches it with :class:`procfound.ManagedProcess` (its own process group; its stderr is
   relayed to ours as it arrives);
2. waits for the handshake with :func:`procfound.wait_for_process_output`, with a timeout;
3. checks the line (protocol version, network, a loopback address) and connects;
4. stops it with SIGTERM (``aterminate_gracefully``), which the plugin handles by exiting 0.

If anything fails in between, leaving the ``async with`` block still stops the plugin's whole
process tree.

Run: ``python examples/plugin_host_asyncio.py``
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


async def main() -> None:
    async with ManagedProcess([sys.executable, str(PLUGIN)]) as plugin:
        print(f"host: launched plugin, pid {plugin.pid}")
        handshake = await wait_for_process_output(plugin, ["|tcp|", "|grpc"], timeout=10)
        host, port = parse_handshake(handshake)
        for _ in range(2):
            print(f"host: plugin says {await call_plugin(host, port)!r}")
        stopped = await plugin.aterminate_gracefully(timeout=5)
        print(f"host: plugin stopped gracefully: {stopped}, exit code {plugin.returncode}")


if __name__ == "__main__":
    asyncio.run(main())
