"""Adversarial edges of talking to a child (issue 26): writes against children that answer as
they read, and the seams of write and expect with the other reads and endings."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from conftest import SyncCall, python
from test_cli import cli_env

from procfound import ManagedProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux children")

PIPE = subprocess.PIPE
# Ten MiB in lines: more than the owner keeps unread (4 MiB), so `cat` answering it would fill
# the buffer long before the write is through.
TEN_MIB = (b"x" * 1023 + b"\n") * (10 * 1024)
LAST = b"y" * 10 + b"\n"


@pytest.mark.parametrize("kind", ["pipe", "pty"])
def test_write_megabytes_to_a_child_that_echoes_them(sync_call: SyncCall, kind: str) -> None:
    """`cat` writes back what it reads: while the write waits for room, the output is read on,
    or cat blocks on its stdout, stops reading, and the write times out."""
    kwargs: dict[str, object] = {"pty": True} if kind == "pty" else {"stdin": PIPE}

    def scenario() -> bytes:
        with ManagedProcess(["cat"], **kwargs) as cat:  # type: ignore[arg-type]
            cat.write(TEN_MIB + LAST, timeout=30)
            return cat.expect("y" * 10, timeout=30).match.group().encode()

    assert sync_call(scenario) == b"y" * 10


@pytest.mark.anyio
async def test_awrite_megabytes_to_a_child_that_echoes_them() -> None:
    async with ManagedProcess(["cat"], stdin=PIPE) as cat:
        with anyio.fail_after(60):
            await cat.awrite(TEN_MIB + LAST, timeout=30)
            found = await cat.aexpect("y" * 10, timeout=30)
    assert found.match.group() == "y" * 10


@pytest.mark.parametrize("pty", [False, True])
def test_expect_on_an_endless_writer_keeps_a_bounded_window(pty: bool) -> None:
    """`yes` writes hundreds of MiB a second: an expect that never matches reads on (the
    pattern may come later) but lets the oldest unread output go past a few MiB, as a probe
    does, instead of holding all of it (a GiB and more within the default 10 s)."""
    script = python(
        f"""
        import re, tracemalloc
        from procfound import ManagedProcess, ProcessTimeoutError
        tracemalloc.start()
        with ManagedProcess(["yes"], pty={pty}) as proc:
            try:
                # (a terminal moves a few MiB a second: time to read past the window)
                proc.expect(["never", re.compile("nev(er)+")], timeout={6 if pty else 3})
            except ProcessTimeoutError:
                pass
            dropped = proc.stdout_dropped
        # What Python held at its peak (the process's RSS would also count what the allocator
        # keeps after a free, which depends on timing and threads, not on what was held).
        print(dropped, tracemalloc.get_traced_memory()[1] >> 20)
        """
    )
    done = subprocess.run(
        script, env=cli_env(), check=True, capture_output=True, text=True, timeout=60
    )
    dropped, peak_mib = map(int, done.stdout.split())
    assert dropped > 0
    assert peak_mib < 300
