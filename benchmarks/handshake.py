"""Workload ``handshake``: launch a server-like child until its handshake line is seen."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, Final

import anyio

from benchmarks.harness import (
    Contender,
    Unavailable,
    Workload,
    in_loop_self_timed,
    procfound_attr,
)

HANDSHAKE: Final = "1|6|tcp|127.0.0.1:4242|grpc"
# `exec` makes the sleeping child the direct child, so killing it leaves no grandchild.
SCRIPT: Final = f"echo '{HANDSHAKE}'; exec sleep 30"
READ_TIMEOUT: Final = 10.0


def read_line(stdout: IO[bytes], into: queue.SimpleQueue[bytes]) -> None:
    into.put(stdout.readline())


def time_first_line(proc: subprocess.Popen[bytes], started: float, expected: bytes) -> float:
    """Seconds from ``started`` to ``proc``'s first line (read in a thread, as the seed does,
    and checked); then ``proc`` is killed, reaped and its pipe closed."""
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    reader = None
    try:
        assert proc.stdout is not None
        reader = threading.Thread(target=read_line, args=(proc.stdout, lines), daemon=True)
        reader.start()
        line = lines.get(timeout=READ_TIMEOUT)
        elapsed = time.perf_counter() - started
        if expected not in line:
            raise AssertionError(f"unexpected first line {line!r}")
        return elapsed
    finally:
        proc.kill()
        proc.wait()
        if reader is not None:
            reader.join()
        if proc.stdout is not None:
            proc.stdout.close()


def workload(quick: bool) -> Workload:
    cmd = [shutil.which("sh") or "/bin/sh", "-c", SCRIPT]
    n = 5 if quick else 20
    expected = HANDSHAKE.encode()

    def stdlib() -> float:
        """What the seed does: Popen, then a blocking readline in a thread, with a timeout."""
        total = 0.0
        for _ in range(n):
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            total += time_first_line(proc, start, expected)
        return total

    def joined(how: str) -> float:
        """The floor of joining a cgroup before exec: the stdlib way, with a fresh cgroup made
        per launch (mkdir) and the child entering it through a helper before it execs
        (``helper``: procfound's spawn helper; ``sh``: a ``/bin/sh`` one-liner, the cheapest
        exec there is, but not a faithful one). The rmdir comes after the clock, as shutdown."""
        try:
            import procfound.engine.contain as contain
            from procfound.engine.helper import helper_argv
        except ImportError as exc:
            raise Unavailable(f"procfound has no spawn helper: {exc}") from exc
        root = contain.cgroup_root()
        if root is None:
            raise Unavailable("no writable cgroup v2 with cgroup.kill here")
        total = 0.0
        for index in range(n):
            box = os.path.join(root, f"procfound-bench-{os.getpid()}-{index}")
            start = time.perf_counter()
            os.mkdir(box)
            procs = os.path.join(box, "cgroup.procs")
            report_read, report_write = os.pipe()
            if how == "sh":
                argv = [cmd[0], "-c", 'echo 0 >"$0" || exit 125; exec "$@"', procs, *cmd]
            else:
                argv = helper_argv(
                    sys.executable,
                    report_write,
                    join=procs,
                    credentials=None,
                    parent=None,
                    default_signals=(signal.SIGPIPE, signal.SIGXFSZ),
                    lc_ctype=os.environ.get("LC_CTYPE"),
                    paths=[cmd[0]],
                    argv=cmd,
                )
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                pass_fds=(report_write,) if how == "helper" else (),
            )
            os.close(report_write)
            try:
                failed = os.read(report_read, 100)  # EOF at the command's exec
                elapsed = time_first_line(proc, start, expected)  # kills and reaps it
                if failed:
                    raise AssertionError(f"the helper failed: {failed!r}")
                total += elapsed
            finally:
                os.close(report_read)
                os.rmdir(box)
        return total

    async def anyio_peer() -> float:
        total = 0.0
        for _ in range(n):
            start = time.perf_counter()
            proc = await anyio.open_process(
                cmd, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                assert proc.stdout is not None
                seen = b""
                with anyio.fail_after(READ_TIMEOUT):
                    while expected not in seen:
                        seen += await proc.stdout.receive()
                total += time.perf_counter() - start
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.aclose()
        return total

    def procfound_async(how: Any, *, alaunch: bool = False, contain: str | None = None) -> float:
        managed_process = procfound_attr("ManagedProcess")
        wait_for_output = procfound_attr("wait_for_process_output")

        async def work() -> float:
            total = 0.0
            for _ in range(n):
                start = time.perf_counter()
                proc = (
                    managed_process(cmd)
                    if contain is None
                    else managed_process(cmd, contain=contain)
                )
                try:
                    if alaunch:
                        await proc.alaunch()
                    else:
                        proc.launch()
                    seen = await wait_for_output(proc, [HANDSHAKE], timeout=READ_TIMEOUT)
                    total += time.perf_counter() - start
                    if HANDSHAKE not in seen:
                        raise AssertionError(f"handshake not in {seen!r}")
                finally:
                    if alaunch:
                        await proc.acleanup()
                    else:
                        try:
                            proc.terminate_gracefully(timeout=2.0)
                        finally:
                            proc.cleanup()
            return total

        return in_loop_self_timed(how, work)

    return Workload(
        name="handshake",
        title=f"handshake: launch until the handshake line is seen ({n} per sample), time each",
        unit="op",
        work=n,
        contenders=[
            Contender("subprocess.Popen + readline in a thread", "stdlib", stdlib, "baseline"),
            Contender(
                "anyio.open_process + receive",
                "anyio[asyncio]",
                lambda: in_loop_self_timed("anyio[asyncio]", anyio_peer),
            ),
            Contender(
                "anyio.open_process + receive",
                "anyio[trio]",
                lambda: in_loop_self_timed("anyio[trio]", anyio_peer),
            ),
            Contender(
                "ManagedProcess.launch + wait_for_process_output",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]"),
            ),
            Contender(
                "ManagedProcess.launch + wait_for_process_output",
                "procfound[trio]",
                lambda: procfound_async("anyio[trio]"),
            ),
            Contender(
                "ManagedProcess.alaunch + wait_for_process_output",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]", alaunch=True),
            ),
            Contender(
                "ManagedProcess.alaunch + wait_for_process_output",
                "procfound[trio]",
                lambda: procfound_async("anyio[trio]", alaunch=True),
            ),
            Contender(
                "ManagedProcess(contain='group').alaunch + wait_for_process_output",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]", alaunch=True, contain="group"),
            ),
            Contender(
                "ManagedProcess(contain='group').launch + wait_for_process_output",
                "procfound[asyncio]",
                lambda: procfound_async("anyio[asyncio]", contain="group"),
            ),
            Contender(
                "floor: Popen + readline, child joins a new cgroup via procfound's spawn helper",
                "reference",
                lambda: joined("helper"),
                "reference",
            ),
            Contender(
                "floor: Popen + readline, child joins a new cgroup via a /bin/sh one-liner",
                "reference",
                lambda: joined("sh"),
                "reference",
            ),
        ],
        note="Shutdown (kill and reap) happens after the clock stops. The child is "
        f'`sh -c "{SCRIPT}"`. ManagedProcess contains the whole tree by default '
        "(`contain='tree'`: a cgroup per launch where one is writable, which the child joins "
        "before it execs: through a `/bin/sh` one-liner where that runs the command exactly as "
        "a direct spawn, as here, through procfound's Python spawn helper otherwise); the "
        "`contain='group'` rows show the launch without it. The floor rows are the stdlib way "
        "plus a cgroup made per launch and joined before exec, through each of the two.",
    )
