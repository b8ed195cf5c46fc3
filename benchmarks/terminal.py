"""Workloads ``terminal-*``: a child on a pseudo-terminal (``pty=True``) against pexpect.

``python -m benchmarks --only terminal`` runs the three of them:

* ``terminal-spawn``: spawn-to-exit of ``true`` under a pty (reaped, fds closed), per run.
* ``terminal-capture``: 64 MiB of ``head -c`` output read through a pty, as throughput, with
  procfound's pipe capture of the same output as the baseline (the pty's goal: within 1.5x).
* ``terminal-talk``: 1,000 ``write`` + ``expect`` round trips with ``cat`` on a pty.

pexpect (and ptyprocess, its engine) is installed for the benchmarks only. pexpect's defaults
sleep (``delaybeforesend`` 50 ms before each send, ``delayafterclose`` 100 ms in ``close()``);
its rows come with the defaults where they finish in reasonable time, and with those delays
set to 0 (its documented tuning) so that what is compared is the work, not the sleeps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any, Final

from benchmarks.harness import MIB, Contender, Unavailable, Workload, in_loop, procfound_attr, timed

# What a pty hands over per read is a few KiB: read as much as the kernel gives.
_READ: Final = MIB


def _pexpect() -> Any:
    try:
        import pexpect
    except ImportError as exc:  # pragma: no cover - installed for the benchmarks
        raise Unavailable("pexpect is not installed (pip install pexpect)") from exc
    return pexpect


def _ptyprocess() -> Any:
    try:
        import ptyprocess
    except ImportError as exc:  # pragma: no cover
        raise Unavailable("ptyprocess is not installed (pip install pexpect)") from exc
    return ptyprocess


def _on_a_pty(cmd: list[str], ctty: bool = False) -> tuple[int, subprocess.Popen[bytes]]:
    """The physical floor: ``cmd`` on a new pty (new session), our master and the child.

    ``ctty``: make the pty its controlling terminal as procfound does (a ``/bin/sh`` line that
    opens it after the setsid), which costs one exec more.
    """
    master, slave = os.openpty()
    try:
        if ctty:
            cmd = ["/bin/sh", "-c", ': <>"$0"; exec "$@"', os.ttyname(slave), *cmd]
        child = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return master, child


def _read_to_eio(master: int) -> int:
    total = 0
    try:
        while True:
            try:
                data = os.read(master, _READ)
            except OSError:  # EIO: the child let go of the terminal
                return total
            if not data:
                return total
            total += len(data)
    finally:
        os.close(master)


# -- spawn-to-exit -------------------------------------------------------------------------------


def workload(quick: bool) -> Workload:
    """``terminal-spawn``: ``true`` on a pty, spawned, waited for, reaped, closed."""
    true = shutil.which("true") or "/bin/true"
    n = 20 if quick else 50

    def pexpect_spawn(delays: bool) -> float:
        pexpect = _pexpect()

        def work() -> None:
            for _ in range(n):
                child = pexpect.spawn(true, [])
                if not delays:
                    child.delayafterclose = child.ptyproc.delayafterclose = 0
                child.expect(pexpect.EOF)
                child.close()
                assert child.exitstatus == 0

        return timed(work)

    def pexpect_run() -> float:
        pexpect = _pexpect()

        def work() -> None:
            for _ in range(n):
                _, status = pexpect.run(true, withexitstatus=True)
                assert status == 0

        return timed(work)

    def ptyprocess_spawn() -> float:
        ptyprocess = _ptyprocess()

        def work() -> None:
            for _ in range(n):
                child = ptyprocess.PtyProcess.spawn([true])
                child.delayafterclose = 0
                try:
                    while True:
                        child.read(_READ)
                except EOFError:
                    pass
                child.wait()
                child.close()

        return timed(work)

    def floor(ctty: bool) -> float:
        def work() -> None:
            for _ in range(n):
                master, child = _on_a_pty([true], ctty)
                _read_to_eio(master)
                assert child.wait() == 0

        return timed(work)

    def procfound_sync(pty: bool) -> float:
        run = procfound_attr("run")

        def work() -> None:
            for _ in range(n):
                run([true], pty=pty) if pty else run([true])

        return timed(work)

    def procfound_async(how: Any) -> float:
        async_run = procfound_attr("async_run")

        async def work() -> None:
            for _ in range(n):
                await async_run([true], pty=True)

        return in_loop(how, work)

    return Workload(
        name="terminal-spawn",
        title=f"terminal: `true` on a pty, spawn to exit, {n} runs per sample, time per run",
        unit="op",
        work=n,
        contenders=[
            Contender(
                "pexpect.spawn + expect(EOF) + close, delays 0",
                "pexpect",
                lambda: pexpect_spawn(False),
                "baseline",
            ),
            Contender(
                "pexpect.spawn + expect(EOF) + close (defaults: sleeps 0.1 s in close)",
                "pexpect",
                lambda: pexpect_spawn(True),
            ),
            Contender("pexpect.run (defaults)", "pexpect", pexpect_run),
            Contender(
                "ptyprocess.PtyProcess.spawn + read to EOF + wait + close, delays 0",
                "pexpect",
                ptyprocess_spawn,
            ),
            Contender(
                "openpty + Popen(start_new_session) + read to EIO + wait, no ctty (physical)",
                "reference",
                lambda: floor(False),
                "reference",
            ),
            Contender(
                "same, with a /bin/sh line that takes the pty as ctty (physical)",
                "reference",
                lambda: floor(True),
                "reference",
            ),
            Contender(
                "procfound.run([true]) on pipes, for scale",
                "reference",
                lambda: procfound_sync(False),
                "reference",
            ),
            Contender("procfound.run(pty=True)", "procfound", lambda: procfound_sync(True)),
            Contender(
                "procfound.async_run(pty=True) on asyncio",
                "procfound",
                lambda: procfound_async("asyncio"),
            ),
            Contender(
                "procfound.async_run(pty=True) on trio",
                "procfound",
                lambda: procfound_async("trio"),
            ),
        ],
        note="pexpect and ptyprocess fork in Python and exec from the child (no vfork).",
    )


# -- capture -------------------------------------------------------------------------------------


def capture_workload(quick: bool) -> Workload:
    """``terminal-capture``: 64 MiB through a pty, bytes kept, as throughput."""
    size = 64 * MIB
    cmd = [shutil.which("head") or "head", "-c", str(size), "/dev/zero"]

    def check(data: bytes, what: str) -> None:
        if len(data) != size:
            raise AssertionError(f"{what}: captured {len(data)} bytes, expected {size}")

    def procfound_sync(pty: bool) -> float:
        run = procfound_attr("run")
        return timed(lambda: check(run(cmd, text=False, pty=pty).stdout, "procfound"))

    def procfound_async(how: Any) -> float:
        async_run = procfound_attr("async_run")

        async def work() -> None:
            check((await async_run(cmd, text=False, pty=True)).stdout, "procfound")

        return in_loop(how, work)

    def pexpect_read(maxread: int) -> float:
        pexpect = _pexpect()

        def work() -> None:
            child = pexpect.spawn(cmd[0], cmd[1:], maxread=maxread, timeout=120)
            child.delayafterclose = child.ptyproc.delayafterclose = 0
            try:
                check(child.read(), "pexpect")
            finally:
                child.close()

        return timed(work)

    def ptyprocess_read() -> float:
        ptyprocess = _ptyprocess()

        def work() -> None:
            child = ptyprocess.PtyProcess.spawn(cmd)
            child.delayafterclose = 0
            chunks = []
            try:
                while True:
                    chunks.append(child.read(_READ))
            except EOFError:
                pass
            finally:
                child.wait()
                child.close()
            check(b"".join(chunks), "ptyprocess")

        return timed(work)

    def floor() -> float:
        def work() -> None:
            master, child = _on_a_pty(cmd)
            total = _read_to_eio(master)
            child.wait()
            if total != size:
                raise AssertionError(f"read {total} bytes, expected {size}")

        return timed(work)

    return Workload(
        name="terminal-capture",
        title=f"terminal: {size // MIB} MiB of `head -c` output through a pty, throughput",
        unit="MB/s",
        work=size,
        contenders=[
            Contender(
                "procfound.run(text=False) on a pipe",
                "procfound",
                lambda: procfound_sync(False),
                "baseline",
            ),
            Contender(
                "blocking os.read of the pty master to EIO, discarded, no event loop (physical)",
                "reference",
                floor,
                "reference",
            ),
            Contender(
                "procfound.run(text=False, pty=True)", "procfound", lambda: procfound_sync(True)
            ),
            Contender(
                "procfound.async_run(text=False, pty=True) on asyncio",
                "procfound",
                lambda: procfound_async("asyncio"),
            ),
            Contender(
                "procfound.async_run(text=False, pty=True) on trio",
                "procfound",
                lambda: procfound_async("trio"),
            ),
            Contender(
                "pexpect.spawn(maxread=1 MiB).read() to EOF", "pexpect", lambda: pexpect_read(MIB)
            ),
            Contender(
                "ptyprocess.PtyProcess.read(1 MiB) to EOF, joined", "pexpect", ptyprocess_read
            ),
        ],
        note="A pty hands over at most a few KiB per read (the line discipline's buffer), each "
        "piece passed on by a kernel worker: the physical row is the ceiling of any pty reader. "
        "pexpect with its default maxread=2000 is not run: its read() to EOF grows "
        "quadratically (4 MiB took 0.96 s, 8 MiB 4.5 s here).",
    )


# -- ping-pong -----------------------------------------------------------------------------------


def talk_workload(quick: bool) -> Workload:
    """``terminal-talk``: write a line to ``cat`` on a pty and expect it back, N times."""
    cat = shutil.which("cat") or "/bin/cat"
    n = 200 if quick else 1000

    def pexpect_pingpong() -> float:
        pexpect = _pexpect()

        def work() -> None:
            child = pexpect.spawn(cat, [], timeout=30)
            child.delaybeforesend = None
            child.delayafterclose = child.ptyproc.delayafterclose = 0
            child.setecho(False)
            try:
                for i in range(n):
                    child.send(f"ping {i}\n")
                    child.expect_exact(f"ping {i}\r\n")
            finally:
                child.sendeof()
                child.expect(pexpect.EOF)
                child.close()

        return timed(work)

    def managed(how: str) -> float:
        process_class = procfound_attr("ManagedProcess")
        if not hasattr(process_class, "expect"):
            raise Unavailable("ManagedProcess.write/expect do not exist yet (helper `talk`)")

        if how == "sync":

            def work() -> None:
                with process_class([cat], pty=True) as process:
                    for i in range(n):
                        process.write(f"ping {i}\n")
                        process.expect(f"ping {i}\r\n")
                    process.close_stdin()

            return timed(work)

        async def async_work() -> None:
            async with process_class([cat], pty=True) as process:
                for i in range(n):
                    await process.awrite(f"ping {i}\n")
                    await process.aexpect(f"ping {i}\r\n")
                await process.aclose_stdin()

        return in_loop(how, async_work)  # type: ignore[arg-type]

    def floor() -> float:
        """Blocking write + read of the master until the line is back, no library."""

        def work() -> None:
            master, child = _on_a_pty([cat])
            import termios

            attrs = termios.tcgetattr(master)
            attrs[3] &= ~termios.ECHO
            termios.tcsetattr(master, termios.TCSANOW, attrs)
            try:
                for i in range(n):
                    line = f"ping {i}\n".encode()
                    os.write(master, line)
                    want, got = line.replace(b"\n", b"\r\n"), b""
                    while not got.endswith(want):
                        got += os.read(master, _READ)
                os.write(master, b"\x04")
                _read_to_eio(master)
            finally:
                child.kill()
                child.wait()

        return timed(work)

    return Workload(
        name="terminal-talk",
        title=f"terminal: {n} write + expect round trips with `cat` on a pty, time per trip",
        unit="op",
        work=n,
        contenders=[
            Contender(
                "pexpect send + expect_exact, delaybeforesend=None",
                "pexpect",
                pexpect_pingpong,
                "baseline",
            ),
            Contender(
                "blocking os.write + os.read of the master, no library (physical)",
                "reference",
                floor,
                "reference",
            ),
            Contender(
                "procfound ManagedProcess(pty=True) write + expect",
                "procfound",
                lambda: managed("sync"),
            ),
            Contender(
                "procfound ManagedProcess(pty=True) awrite + aexpect on asyncio",
                "procfound",
                lambda: managed("asyncio"),
            ),
            Contender(
                "procfound ManagedProcess(pty=True) awrite + aexpect on trio",
                "procfound",
                lambda: managed("trio"),
            ),
        ],
        note="pexpect's default delaybeforesend (50 ms a send) would make its row 1,000x "
        "slower; it is set to None here.",
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run: python -m benchmarks --only terminal")
