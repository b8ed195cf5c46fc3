"""Fault injection (issue 8): hostile children, exhaustion, signals, threads, forks, exit, secrets.

Each case ends with the same post-condition: the call returned or raised a clear procfound error
in bounded time (the elapsed time is asserted), no process of the run is alive (children and
grandchildren write their pids to files, read by :func:`recorded`), nothing written before the
end was lost, and no fd or zombie is left (the autouse ``no_leaks`` fixture). Async tests run
under asyncio and trio (``anyio_backend``); sync tests run from plain code and from inside a
running asyncio and trio loop (``sync_call``). Cases that need a whole interpreter (fd limits,
fork, Ctrl-C, interpreter exit) run a fresh one, with the portal on asyncio and on trio.

Ctrl-C during a sync ``run`` and timeouts of trees holding the pipes are in test_run.py; here
they are extended to ``stream`` and ``terminate_gracefully``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
from conftest import CHILDREN_OF_ME, PY, SyncCall, pid_alive, python, wait_gone

import procfound
import procfound.engine.handoff as handoff_module
from procfound import (
    ManagedProcess,
    ProcessError,
    ProcessTimeoutError,
    StateError,
    ValidationError,
    async_run,
    async_shell,
    async_stream,
    run,
    shell,
    stream,
    wait_for_process_output,
)
from procfound.bridge.portal import get_portal
from procfound.engine.kill import DEFAULT_GRACE, KILL_WAIT, KillSchedule, StopPolicy
from procfound.engine.session import ChildSession

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc checks")

PROCFOUND_ROOT = str(Path(procfound.__file__).resolve().parent.parent)
BACKENDS = ["asyncio", "trio"]

# --------------------------------------------------------------------------------------------
# Process trees that record their pids
# --------------------------------------------------------------------------------------------


def record(directory: Path, name: str, pid: str = "$$") -> str:
    """Shell text writing ``pid`` to ``directory/name`` atomically."""
    path = shlex.quote(str(directory / name))
    return f"echo {pid} > {path}.tmp && mv {path}.tmp {path}"


def sh_tree(
    directory: Path, body: str, *, ignore_term: bool = False, grandchild: bool = True
) -> list[str]:
    """``sh -c`` recording its pid as ``child`` (and a ``sleep 30`` grandchild's), then ``body``.

    With ``ignore_term`` the shell ignores SIGTERM before starting anything, and the ignored
    disposition is inherited by everything it starts, so only SIGKILL ends the tree.
    """
    script = "trap '' TERM; " if ignore_term else ""
    if grandchild:
        script += f"sleep 30 & {record(directory, 'grandchild', '$!')}; "
    script += f"{record(directory, 'child')}; {body}"
    return ["sh", "-c", script]


def recorded(directory: Path) -> dict[str, int]:
    """The pids recorded in ``directory`` so far, by name."""
    found: dict[str, int] = {}
    for path in directory.iterdir():
        if path.suffix != ".tmp" and path.is_file() and path.read_text().strip().isdigit():
            found[path.name] = int(path.read_text())
    return found


def wait_recorded(directory: Path, names: list[str], timeout: float = 15.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while not set(names) <= set(recorded(directory)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{names} not recorded within {timeout}s: {recorded(directory)}")
        time.sleep(0.01)
    return recorded(directory)


async def wait_recorded_async(
    directory: Path, names: list[str], timeout: float = 15.0
) -> dict[str, int]:
    with anyio.fail_after(timeout):
        while not set(names) <= set(recorded(directory)):
            await anyio.sleep(0.01)
    return recorded(directory)


def assert_gone(pids: dict[str, int], within: float = 2.0) -> None:
    """Every recorded process is gone within ``within`` seconds (survivors are then killed)."""
    assert pids, "nothing was recorded: the tree never started?"
    survivors = {name: pid for name, pid in pids.items() if not wait_gone(pid, within)}
    for pid in survivors.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not survivors, f"still alive: {survivors}"


@pytest.fixture
def tree_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for pid files; whatever is recorded there and still alive is killed after."""
    directory = tmp_path / "pids"
    directory.mkdir()
    yield directory
    for pid in recorded(directory).values():
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def elapsed_since(started: float) -> float:
    return time.monotonic() - started


async def collect_async(cmd: list[str], lines: list[str], **kwargs: Any) -> None:
    """Append each streamed line to ``lines`` (kept when the stream then raises)."""
    async with aclosing(async_stream(cmd, **kwargs)) as agen:
        async for line in agen:
            lines.append(line)


def collect(cmd: list[str], lines: list[str], **kwargs: Any) -> None:
    for line in stream(cmd, **kwargs):
        lines.append(line)


# --------------------------------------------------------------------------------------------
# Fresh interpreters
# --------------------------------------------------------------------------------------------


class Interpreter:
    """A fresh Python running ``code``, in its own session, output going to files.

    Files, not pipes: a process it leaves behind cannot then hold our read of its output open
    (the very bug this suite hunts). Leaving the ``with`` block SIGKILLs its process group
    (a forked copy included) if it is still running.
    """

    def __init__(self, tmp_path: Path, code: str, *args: str, backend: str = "asyncio"):
        self.out_path = tmp_path / "script.out"
        self.err_path = tmp_path / "script.err"
        self.argv = [PY, "-c", textwrap.dedent(code), *args]
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [PROCFOUND_ROOT, os.environ.get("PYTHONPATH")])
            ),
            "PROCFOUND_BACKEND": backend,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Interpreter:
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=err, env=self.env, start_new_session=True
            )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds; the exit code, or None if it is still running."""
        assert self.proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout=timeout)
        return None

    def wait_for_text(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.out:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return text in self.out
            time.sleep(0.01)
        return False

    def result(self, tag: str = "RESULT") -> Any:
        """The JSON the script printed after ``tag``."""
        for line in self.out.splitlines():
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])
        raise AssertionError(f"no {tag} line:\n{self.out}\n{self.err}")

    def report(self) -> str:
        return f"--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"


def run_interpreter(
    tmp_path: Path, code: str, *args: str, backend: str = "asyncio", timeout: float = 30.0
) -> tuple[Interpreter, int | None, float]:
    """Run a fresh interpreter to its end (or ``timeout``): (it, exit code or None, seconds)."""
    started = time.monotonic()
    with Interpreter(tmp_path, code, *args, backend=backend) as script:
        code_ = script.wait(timeout)
    return script, code_, elapsed_since(started)


# --------------------------------------------------------------------------------------------
# A child that closes stdout early but keeps running
# --------------------------------------------------------------------------------------------


def closes_stdout_early(directory: Path, exit_code: int = 0) -> list[str]:
    return sh_tree(
        directory,
        f"echo early; exec >&-; sleep 0.6; echo done >&2; exit {exit_code}",
        grandchild=False,
    )


def test_child_closing_stdout_early_is_waited_for_and_its_stderr_kept(
    sync_call: SyncCall, tree_dir: Path
) -> None:
    started = time.monotonic()
    result = sync_call(run, closes_stdout_early(tree_dir))
    elapsed = elapsed_since(started)
    assert result.stdout == "early\n"
    assert result.stderr == "done\n"
    assert 0.55 <= elapsed < 3.0, f"{elapsed:.2f}s: stdout's EOF must not end the run"
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_async_child_closing_stdout_early_is_waited_for_and_its_stderr_kept(
    tree_dir: Path,
) -> None:
    started = time.monotonic()
    result = await async_run(closes_stdout_early(tree_dir))
    elapsed = elapsed_since(started)
    assert (result.stdout, result.stderr) == ("early\n", "done\n")
    assert 0.55 <= elapsed < 3.0
    assert_gone(recorded(tree_dir))


def check_stream_of_early_closer(lines: list[str], error: ProcessError, elapsed: float) -> None:
    assert lines == ["early"]
    assert error.return_code == 3
    assert error.stderr == "done"
    assert 0.55 <= elapsed < 3.0


def test_stream_of_child_closing_stdout_early_waits_for_exit_and_keeps_stderr(
    sync_call: SyncCall, tree_dir: Path
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(ProcessError) as info:
        sync_call(collect, closes_stdout_early(tree_dir, exit_code=3), lines)
    check_stream_of_early_closer(lines, info.value, elapsed_since(started))
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_async_stream_of_child_closing_stdout_early_waits_for_exit_and_keeps_stderr(
    tree_dir: Path,
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(ProcessError) as info:
        await collect_async(closes_stdout_early(tree_dir, exit_code=3), lines)
    check_stream_of_early_closer(lines, info.value, elapsed_since(started))
    assert_gone(recorded(tree_dir))


# --------------------------------------------------------------------------------------------
# A child that never reads the 64 MiB we send
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def input_64mib() -> bytes:
    return bytes(64 << 20)


def never_reads(directory: Path) -> list[str]:
    return sh_tree(directory, "echo partial; sleep 30")


def check_unread_input_timeout(error: ProcessTimeoutError, elapsed: float) -> None:
    assert elapsed < 3.0, f"{elapsed:.2f}s for a 1 s timeout: the stdin write blocked the timer"
    assert error.timeout_seconds == 1.0
    assert error.stdout == "partial", "output written before the timeout was lost"


def test_timeout_fires_while_the_child_never_reads_64_mib_of_input(
    sync_call: SyncCall, tree_dir: Path, input_64mib: bytes
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        sync_call(run, never_reads(tree_dir), input=input_64mib, timeout=1)
    check_unread_input_timeout(info.value, elapsed_since(started))
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_async_timeout_fires_while_the_child_never_reads_64_mib_of_input(
    tree_dir: Path, input_64mib: bytes
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        await async_run(never_reads(tree_dir), input=input_64mib, timeout=1)
    check_unread_input_timeout(info.value, elapsed_since(started))
    assert_gone(recorded(tree_dir))


# --------------------------------------------------------------------------------------------
# SIGPIPE
# --------------------------------------------------------------------------------------------

# `yes` dies of SIGPIPE once `head` has its line. Had it inherited SIGPIPE ignored (Python
# ignores it), it would see EPIPE instead and complain on stderr ("write error").
YES_HEAD = ["sh", "-c", "yes | head -n 1"]

# The direct child dies of SIGPIPE (writing to a pipe nobody reads) after some output.
KILLED_BY_SIGPIPE = python(
    """
    import os, signal, sys
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.stdout.write("before\\n")
    sys.stdout.flush()
    r, w = os.pipe()
    os.close(r)
    os.write(w, b"x")
    sys.exit(0)
    """
)


def test_sigpipe_in_a_pipeline_is_the_default_action_and_the_run_succeeds(
    sync_call: SyncCall,
) -> None:
    started = time.monotonic()
    result = sync_call(run, YES_HEAD)
    assert elapsed_since(started) < 3.0
    assert (result.returncode, result.stdout, result.stderr) == (0, "y\n", "")


@pytest.mark.anyio
async def test_async_sigpipe_in_a_pipeline_is_the_default_action_and_the_run_succeeds() -> None:
    started = time.monotonic()
    result = await async_run(YES_HEAD)
    assert elapsed_since(started) < 3.0
    assert (result.returncode, result.stdout, result.stderr) == (0, "y\n", "")


def test_stream_of_a_pipeline_ended_by_sigpipe(sync_call: SyncCall) -> None:
    lines: list[str] = []
    sync_call(collect, YES_HEAD, lines)
    assert lines == ["y"]


def check_sigpipe_error(error: ProcessError) -> None:
    assert error.return_code == -signal.SIGPIPE
    assert "SIGPIPE" in str(error)
    assert error.stdout == "before"


def test_child_killed_by_sigpipe_returns_minus_13_and_keeps_its_output(
    sync_call: SyncCall,
) -> None:
    result = sync_call(run, KILLED_BY_SIGPIPE, check=False)
    assert (result.returncode, result.stdout) == (-signal.SIGPIPE, "before\n")
    with pytest.raises(ProcessError) as info:
        sync_call(run, KILLED_BY_SIGPIPE)
    check_sigpipe_error(info.value)


@pytest.mark.anyio
async def test_async_child_killed_by_sigpipe_returns_minus_13_and_keeps_its_output() -> None:
    result = await async_run(KILLED_BY_SIGPIPE, check=False)
    assert (result.returncode, result.stdout) == (-signal.SIGPIPE, "before\n")
    with pytest.raises(ProcessError) as info:
        await async_run(KILLED_BY_SIGPIPE)
    check_sigpipe_error(info.value)


def test_stream_of_child_killed_by_sigpipe_yields_its_lines_then_raises(
    sync_call: SyncCall,
) -> None:
    lines: list[str] = []
    with pytest.raises(ProcessError) as info:
        sync_call(collect, KILLED_BY_SIGPIPE, lines)
    assert lines == ["before"]
    assert info.value.return_code == -signal.SIGPIPE


@pytest.mark.anyio
async def test_async_stream_of_child_killed_by_sigpipe_yields_its_lines_then_raises() -> None:
    lines: list[str] = []
    with pytest.raises(ProcessError) as info:
        await collect_async(KILLED_BY_SIGPIPE, lines)
    assert lines == ["before"]
    assert info.value.return_code == -signal.SIGPIPE


# --------------------------------------------------------------------------------------------
# A tree that ignores SIGTERM: stream timeouts, cancellation, terminate_gracefully
# --------------------------------------------------------------------------------------------


def ticking_tree_ignoring_term(directory: Path) -> list[str]:
    return sh_tree(directory, "while :; do echo tick; sleep 0.1; done", ignore_term=True)


def check_ticks_then_timeout(lines: list[str], elapsed: float) -> None:
    # 1 s timeout, 0.5 s SIGTERM grace, then SIGKILL.
    assert elapsed < 3.5, f"{elapsed:.2f}s: SIGKILL must follow the grace"
    assert len(lines) >= 3, lines
    assert set(lines) == {"tick"}


def test_stream_timeout_kills_a_tree_ignoring_sigterm(sync_call: SyncCall, tree_dir: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(collect, ticking_tree_ignoring_term(tree_dir), lines, timeout=1)
    check_ticks_then_timeout(lines, elapsed_since(started))
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_async_stream_timeout_kills_a_tree_ignoring_sigterm(tree_dir: Path) -> None:
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        await collect_async(ticking_tree_ignoring_term(tree_dir), lines, timeout=1)
    check_ticks_then_timeout(lines, elapsed_since(started))
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_cancelling_async_run_of_a_tree_ignoring_sigterm_kills_it_after_the_grace(
    tree_dir: Path,
) -> None:
    started = time.monotonic()
    with anyio.move_on_after(1.0) as scope:
        await async_run(sh_tree(tree_dir, "sleep 30", ignore_term=True))
    elapsed = elapsed_since(started)
    assert scope.cancelled_caught
    assert elapsed < 3.0, f"{elapsed:.2f}s to honour a cancellation"
    assert_gone(recorded(tree_dir))


def test_terminate_gracefully_kills_a_tree_ignoring_sigterm_after_its_timeout(
    sync_call: SyncCall, tree_dir: Path
) -> None:
    proc = ManagedProcess(sh_tree(tree_dir, "sleep 30", ignore_term=True), stderr_relay=False)

    def lifecycle() -> tuple[bool, float]:
        proc.launch()
        try:
            wait_recorded(tree_dir, ["child", "grandchild"])
            started = time.monotonic()
            return proc.terminate_gracefully(timeout=0.5), elapsed_since(started)
        finally:
            proc.cleanup()

    stopped, elapsed = sync_call(lifecycle)
    assert stopped is False, "SIGKILL was needed, so terminate_gracefully must say False"
    assert 0.4 <= elapsed < 2.5
    assert proc.returncode == -signal.SIGKILL
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_aterminate_gracefully_kills_a_tree_ignoring_sigterm_after_its_timeout(
    tree_dir: Path,
) -> None:
    proc = ManagedProcess(sh_tree(tree_dir, "sleep 30", ignore_term=True), stderr_relay=False)
    await proc.alaunch()
    try:
        await wait_recorded_async(tree_dir, ["child", "grandchild"])
        started = time.monotonic()
        stopped = await proc.aterminate_gracefully(timeout=0.5)
        elapsed = elapsed_since(started)
    finally:
        await proc.acleanup()
    assert stopped is False
    assert 0.4 <= elapsed < 2.5
    assert_gone(recorded(tree_dir))


# --------------------------------------------------------------------------------------------
# The post-kill wait is bounded
#
# A child in uninterruptible sleep (D state: stuck in a syscall on a dead NFS server or a
# failing disk) does not die on SIGKILL until the kernel lets go, and cannot be produced
# portably from a test without root, a FUSE filesystem or a kernel module. A SIGSTOPped child
# is *not* that: SIGKILL ends a stopped process at once. So the bound is proven twice instead:
# KillSchedule.bound is unit-tested, and a child that "survives" SIGKILL is simulated by making
# the engine's group signal drop SIGKILL (the one kill path then waits out its bound and must
# raise a clear error rather than wait for ever, the anyio #757 bug).
# --------------------------------------------------------------------------------------------


def test_kill_schedule_bound_is_the_sum_of_its_waits() -> None:
    assert KillSchedule(grace=1.5, kill_wait=2.0).bound == pytest.approx(3.5)
    assert KillSchedule(grace=0, kill_wait=2.0).bound == pytest.approx(2.0)
    assert KillSchedule().bound == pytest.approx(DEFAULT_GRACE + KILL_WAIT)
    schedule = KillSchedule(grace=7.0, kill_wait=5.0)
    assert schedule.bound == pytest.approx(sum(step.wait for step in schedule.steps()))
    assert schedule.steps()[-1].signals == (signal.SIGKILL,)
    # The default bound stays below the time a sync twin waits for the kill path after Ctrl-C.
    from procfound.bridge.sync import _CLEANUP_WAIT

    assert KillSchedule().bound < _CLEANUP_WAIT


@pytest.mark.parametrize(("grace", "kill_wait"), [(-1.0, 1.0), (0.0, 0.0), (1.0, -1.0)])
def test_kill_schedule_refuses_an_unbounded_or_negative_schedule(
    grace: float, kill_wait: float
) -> None:
    with pytest.raises(ValueError, match="grace"):
        KillSchedule(grace=grace, kill_wait=kill_wait)


def stopped_tree(directory: Path) -> list[str]:
    """Ignores SIGTERM, then stops itself and its grandchild: only SIGCONT+SIGKILL end it."""
    return sh_tree(directory, "kill -STOP $!; kill -STOP $$; sleep 30", ignore_term=True)


def test_timeout_kills_a_stopped_tree_ignoring_sigterm(sync_call: SyncCall, tree_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(run, stopped_tree(tree_dir), timeout=0.5)
    assert elapsed_since(started) < 3.0
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_async_timeout_kills_a_stopped_tree_ignoring_sigterm(tree_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        await async_run(stopped_tree(tree_dir), timeout=0.5)
    assert elapsed_since(started) < 3.0
    assert_gone(recorded(tree_dir))


def test_stream_timeout_kills_a_stopped_tree(sync_call: SyncCall, tree_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(collect, stopped_tree(tree_dir), [], timeout=0.5)
    assert elapsed_since(started) < 3.0
    assert_gone(recorded(tree_dir))


@pytest.mark.anyio
async def test_async_stream_timeout_kills_a_stopped_tree(tree_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        await collect_async(stopped_tree(tree_dir), [], timeout=0.5)
    assert elapsed_since(started) < 3.0
    assert_gone(recorded(tree_dir))


def test_terminate_gracefully_kills_a_stopped_tree(sync_call: SyncCall, tree_dir: Path) -> None:
    proc = ManagedProcess(stopped_tree(tree_dir), stderr_relay=False)

    def lifecycle() -> tuple[bool, float]:
        proc.launch()
        try:
            pids = wait_recorded(tree_dir, ["child", "grandchild"])
            deadline = time.monotonic() + 5
            while process_state(pids["child"]) != "T" and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            return proc.terminate_gracefully(timeout=0.5), elapsed_since(started)
        finally:
            proc.cleanup()

    stopped, elapsed = sync_call(lifecycle)
    assert stopped is False
    assert elapsed < 2.5
    assert_gone(recorded(tree_dir))


def process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# The simulated unkillable child: the group signal drops SIGKILL, and the schedule is cut short
# (0.2 s of grace, 0.3 s of waiting after SIGKILL) so the test is quick.
SIMULATED_GRACE = 0.2
SIMULATED_KILL_WAIT = 0.3


@pytest.fixture
def sigkill_ignored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Make every child "survive" SIGKILL; yields a list the test appends the child's pid to.

    Afterwards each such child is really killed and reaped, and forgotten by the engine.
    """
    original = ChildSession._signal_group

    def drop_sigkill(self: ChildSession, sig: int) -> None:
        if sig != signal.SIGKILL:
            original(self, sig)

    monkeypatch.setattr(ChildSession, "_signal_group", drop_sigkill)

    def short_schedule(policy: StopPolicy) -> KillSchedule:
        # Every session's own schedule (run, stream, and ManagedProcess, whose terminate keeps
        # the session's kill_wait with its own grace) waits briefly for the "unkillable" child.
        return KillSchedule(SIMULATED_GRACE, SIMULATED_KILL_WAIT, policy.stop_signal)

    monkeypatch.setattr(StopPolicy, "schedule", property(short_schedule))
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        handoff_module.unreaped.discard(pid)


def check_unkillable_error(
    error: ProcessError, elapsed: float, code: str, pids: list[int], tree_dir: Path
) -> None:
    pid = error.context.get("pid")
    assert isinstance(pid, int)
    pids.append(pid)
    assert pid == recorded(tree_dir)["child"]
    assert not isinstance(error, ProcessTimeoutError)
    assert error.code == code
    assert "did not exit within" in str(error)
    # The timeout, the grace, the SIGKILL wait, and slack.
    assert elapsed < 0.2 + SIMULATED_GRACE + SIMULATED_KILL_WAIT + 1.5, f"{elapsed:.2f}s"


UNKILLABLE_BODY = "exec sleep 30"


def test_a_child_surviving_sigkill_makes_run_raise_not_hang(
    sync_call: SyncCall, tree_dir: Path, sigkill_ignored: list[int]
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessError) as info:
        sync_call(
            run,
            sh_tree(tree_dir, UNKILLABLE_BODY, ignore_term=True, grandchild=False),
            timeout=0.2,
        )
    check_unkillable_error(
        info.value,
        elapsed_since(started),
        "PROCESS_EXECUTION_FAILED",
        sigkill_ignored,
        tree_dir,
    )


@pytest.mark.anyio
async def test_async_a_child_surviving_sigkill_makes_run_raise_not_hang(
    tree_dir: Path, sigkill_ignored: list[int]
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessError) as info:
        await async_run(
            sh_tree(tree_dir, UNKILLABLE_BODY, ignore_term=True, grandchild=False), timeout=0.2
        )
    check_unkillable_error(
        info.value,
        elapsed_since(started),
        "PROCESS_ASYNC_EXECUTION_FAILED",
        sigkill_ignored,
        tree_dir,
    )


def test_a_child_surviving_sigkill_makes_stream_raise_not_hang(
    sync_call: SyncCall, tree_dir: Path, sigkill_ignored: list[int]
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessError) as info:
        sync_call(
            collect,
            sh_tree(tree_dir, UNKILLABLE_BODY, ignore_term=True, grandchild=False),
            [],
            timeout=0.2,
        )
    check_unkillable_error(
        info.value, elapsed_since(started), "PROCESS_STREAM_ERROR", sigkill_ignored, tree_dir
    )


@pytest.mark.anyio
async def test_async_a_child_surviving_sigkill_makes_stream_raise_not_hang(
    tree_dir: Path, sigkill_ignored: list[int]
) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessError) as info:
        await collect_async(
            sh_tree(tree_dir, UNKILLABLE_BODY, ignore_term=True, grandchild=False),
            [],
            timeout=0.2,
        )
    check_unkillable_error(
        info.value,
        elapsed_since(started),
        "PROCESS_ASYNC_STREAM_ERROR",
        sigkill_ignored,
        tree_dir,
    )


def test_a_child_surviving_sigkill_makes_terminate_gracefully_return_false_in_bounded_time(
    sync_call: SyncCall, tree_dir: Path, sigkill_ignored: list[int]
) -> None:
    proc = ManagedProcess(
        sh_tree(tree_dir, UNKILLABLE_BODY, ignore_term=True, grandchild=False),
        stderr_relay=False,
    )

    def lifecycle() -> tuple[bool, float]:
        proc.launch()
        assert proc.pid is not None
        sigkill_ignored.append(proc.pid)
        wait_recorded(tree_dir, ["child"])
        started = time.monotonic()
        return proc.terminate_gracefully(timeout=0.2), elapsed_since(started)

    stopped, elapsed = sync_call(lifecycle)
    assert stopped is False
    assert elapsed < 0.2 + SIMULATED_KILL_WAIT + 1.5


# --------------------------------------------------------------------------------------------
# A grandchild that escapes the process group with setsid while holding stdout and stderr
#
# Limit (documented, asserted): procfound kills the run's process *group*; a process that made
# its own session is outside it and survives. procfound does not wait for it (the call returns
# once the direct child has exited and EXIT_DRAIN_GRACE has passed) and closes its ends of the
# pipes (the escapee's next write gets SIGPIPE), but it does not kill it: reaching it would need
# a child subreaper or a cgroup per run. The test kills it itself.
# --------------------------------------------------------------------------------------------


ESCAPING_CHILD = python(
    """
    import os, subprocess, sys
    d = sys.argv[1]
    def record(name, pid):
        with open(f"{d}/{name}.tmp", "w") as f:
            f.write(str(pid))
        os.rename(f"{d}/{name}.tmp", f"{d}/{name}")
    # A new session: outside our process group. It inherits stdout and stderr (the pipes).
    escapee = subprocess.Popen(["sleep", "30"], start_new_session=True)
    record("escapee", escapee.pid)
    record("child", os.getpid())
    sys.stdout.write("before\\n")
    sys.stdout.flush()
    sys.stderr.write("before-err\\n")
    sys.stderr.flush()
    os._exit(0)
        """
)


def escaping_child(directory: Path) -> list[str]:
    return [*ESCAPING_CHILD, str(directory)]


def check_escapee(directory: Path, elapsed: float, *, contained: bool = False) -> None:
    pids = recorded(directory)
    assert elapsed < 2.0, f"{elapsed:.2f}s: the escapee holding the pipes made the call wait"
    assert wait_gone(pids["child"], 1.0)
    escapee = pids["escapee"]
    if contained:  # contain="tree" (ManagedProcess's default) stops it too
        assert wait_gone(escapee, 2.0), "the escapee outlived a contain='tree' call"
        return
    # The documented limit of contain="group" (run's default): the escapee is in its own
    # session, out of reach of the group kill.
    assert pid_alive(escapee), "the escapee was killed: update the documented limit"
    assert os.getsid(escapee) == escapee


def test_setsid_escapee_holding_the_pipes_does_not_delay_run(
    sync_call: SyncCall, tree_dir: Path
) -> None:
    started = time.monotonic()
    result = sync_call(run, escaping_child(tree_dir))
    check_escapee(tree_dir, elapsed_since(started))
    assert (result.stdout, result.stderr) == ("before\n", "before-err\n")


@pytest.mark.anyio
async def test_async_setsid_escapee_holding_the_pipes_does_not_delay_run(tree_dir: Path) -> None:
    started = time.monotonic()
    result = await async_run(escaping_child(tree_dir))
    check_escapee(tree_dir, elapsed_since(started))
    assert (result.stdout, result.stderr) == ("before\n", "before-err\n")


def test_setsid_escapee_holding_the_pipes_does_not_delay_stream(
    sync_call: SyncCall, tree_dir: Path
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    sync_call(collect, escaping_child(tree_dir), lines)
    check_escapee(tree_dir, elapsed_since(started))
    assert lines == ["before"]


@pytest.mark.anyio
async def test_async_setsid_escapee_holding_the_pipes_does_not_delay_stream(
    tree_dir: Path,
) -> None:
    lines: list[str] = []
    started = time.monotonic()
    await collect_async(escaping_child(tree_dir), lines)
    check_escapee(tree_dir, elapsed_since(started))
    assert lines == ["before"]


def test_setsid_escapee_does_not_delay_terminate_gracefully(tree_dir: Path) -> None:
    proc = ManagedProcess(escaping_child(tree_dir), stderr_relay=False)
    proc.launch()
    try:
        assert anyio.run(proc.read_line_async, 10.0) == "before"
        started = time.monotonic()
        assert proc.terminate_gracefully(timeout=5) is True
        elapsed = elapsed_since(started)
    finally:
        proc.cleanup()
    check_escapee(tree_dir, elapsed, contained=True)
    # The child exits by itself right after its last write; on a loaded machine the SIGTERM
    # may still reach it first.
    assert proc.returncode in (0, -signal.SIGTERM)


# --------------------------------------------------------------------------------------------
# fd exhaustion (a fresh interpreter with a lowered RLIMIT_NOFILE)
# --------------------------------------------------------------------------------------------

FD_SCRIPT = (
    """
import asyncio, fcntl, gc, json, os, resource, sys
import procfound

mode, form = sys.argv[1], sys.argv[2]

def open_fds():
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            fcntl.fcntl(int(name), fcntl.F_GETFD)
        except OSError:
            continue  # the fd listdir itself used
        found.add(int(name))
    return found

def limit_leaving(free):
    # fds are allocated lowest first: the limit that leaves exactly `free` of them usable.
    taken, fd = open_fds(), 0
    while True:
        if fd not in taken:
            if free == 0:
                return fd
            free -= 1
        fd += 1

def sync_managed():
    with procfound.ManagedProcess(["true"], stderr_relay=False):
        pass

SYNC = {
    "run": lambda: procfound.run(["true"]),
    "run-no-capture": lambda: procfound.run(["true"], capture_output=False),
    "run-input": lambda: procfound.run(["cat"], input="x"),
    "stream": lambda: list(procfound.stream(["echo", "x"])),
    "stream-merged": lambda: list(procfound.stream(["echo", "x"], stream_stderr=True)),
    "managed": sync_managed,
}

async def collect(agen):
    return [line async for line in agen]

async def async_managed():
    async with procfound.ManagedProcess(["true"], stderr_relay=False):
        pass

ASYNC = {
    "run": lambda: procfound.async_run(["true"]),
    "run-no-capture": lambda: procfound.async_run(["true"], capture_output=False),
    "run-input": lambda: procfound.async_run(["cat"], input="x"),
    "stream": lambda: collect(procfound.async_stream(["echo", "x"])),
    "stream-merged": lambda: collect(procfound.async_stream(["echo", "x"], stream_stderr=True)),
    "managed": async_managed,
}

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

def outcome(exc):
    if exc is None:
        return "ok"
    if isinstance(exc, procfound.ProcessError):
        return "ProcessError"
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"

def attempt_sync(call, free):
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit_leaving(free), hard))
    try:
        call()
        return None
    except Exception as exc:
        return exc
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

async def attempt_async(call, free):
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit_leaving(free), hard))
    try:
        await call()
        return None
    except Exception as exc:
        return exc
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

def sweep_sync():
    call = SYNC[form]
    call()  # warm up: the portal, thread pools...
    gc.collect()
    before = open_fds()
    steps = []
    for free in range(10):
        exc = attempt_sync(call, free)
        gc.collect()
        steps.append([free, outcome(exc), sorted(open_fds() - before)])
    call()
    return steps

async def sweep_async():
    call = ASYNC[form]
    await call()
    gc.collect()
    before = open_fds()
    steps = []
    for free in range(10):
        exc = await attempt_async(call, free)
        gc.collect()
        steps.append([free, outcome(exc), sorted(open_fds() - before)])
    await call()
    return steps
"""
    + CHILDREN_OF_ME
    + """
if mode == "sync":
    steps = sweep_sync()
elif mode == "asyncio":
    steps = asyncio.run(sweep_async())
else:
    import trio
    steps = trio.run(sweep_async)
print("RESULT", json.dumps({"steps": steps, "children": children()}), flush=True)
"""
)

FD_MODES = [
    ("sync", "asyncio"),  # the sync twin, portal on asyncio
    ("sync", "trio"),  # the sync twin, portal on trio
    ("asyncio", "asyncio"),  # the async form inside asyncio.run
    ("trio", "asyncio"),  # the async form inside trio.run
]
FD_FORMS = ["run", "run-no-capture", "run-input", "stream", "stream-merged", "managed"]


def fd_params() -> list[Any]:
    return [
        pytest.param(form, mode, backend, id=f"{form}-{mode}-{backend}")
        for form in FD_FORMS
        for mode, backend in FD_MODES
    ]


@pytest.mark.parametrize(("form", "mode", "backend"), fd_params())
def test_fd_exhaustion_raises_process_error_leaks_nothing_and_recovers(
    tmp_path: Path, form: str, mode: str, backend: str
) -> None:
    script, code, elapsed = run_interpreter(tmp_path, FD_SCRIPT, mode, form, backend=backend)
    assert code == 0, script.report()
    assert elapsed < 20
    result = script.result()
    table = "\n".join(map(str, result["steps"]))
    outcomes = [outcome for _, outcome, _ in result["steps"]]
    assert set(outcomes) <= {"ok", "ProcessError"}, f"not a ProcessError:\n{table}"
    if form != "run-no-capture":  # with no pipe to make, it may always find a way
        assert "ProcessError" in outcomes, f"no step ran out of fds:\n{table}"
    assert outcomes[-1] == "ok", f"even 9 free fds were not enough:\n{table}"
    assert all(not leaked for _, _, leaked in result["steps"]), f"fds leaked:\n{table}"
    assert result["children"] == []


FD_COLD_SCRIPT = (
    """
import json, os, resource, sys
import procfound
free = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
fds = {int(name) for name in os.listdir("/proc/self/fd")}
limit = 0
while free >= 0:
    if limit not in fds:
        free -= 1
    limit += 1
resource.setrlimit(resource.RLIMIT_NOFILE, (limit - 1, hard))
try:
    procfound.run(["true"])
    outcome = "ok"
except procfound.ProcessError:
    outcome = "ProcessError"
except Exception as exc:
    outcome = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
after = procfound.run(["echo", "works"]).stdout.strip()
"""
    + CHILDREN_OF_ME
    + """
print("RESULT", json.dumps({"outcome": outcome, "after": after, "children": children()}))
"""
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fd_exhaustion_before_the_portal_starts_raises_process_error(
    tmp_path: Path, backend: str
) -> None:
    outcomes = []
    for free in (0, 1):
        script, code, _ = run_interpreter(tmp_path, FD_COLD_SCRIPT, str(free), backend=backend)
        assert code == 0, script.report()
        result = script.result()
        assert result["after"] == "works"
        assert result["children"] == []
        outcomes.append(result["outcome"])
    assert set(outcomes) <= {"ok", "ProcessError"}, outcomes


# --------------------------------------------------------------------------------------------
# fork
# --------------------------------------------------------------------------------------------

FORK_SCRIPT = (
    """
import json, os, sys, threading, time
import procfound
variant = sys.argv[1]
"""
    + CHILDREN_OF_ME
    + """
procfound.run(["true"])  # the portal is running
busy = None
if variant == "busy":  # another thread is inside a sync call when we fork
    busy = threading.Thread(target=procfound.run, args=(["sleep", "0.5"],))
    busy.start()
    time.sleep(0.2)
pid = os.fork()
if pid == 0:
    ok = False
    try:
        ok = procfound.run(["echo", "hi"], timeout=10).stdout == "hi\\n"
        ok = ok and list(procfound.stream(["echo", "x"], timeout=10)) == ["x"]
    finally:
        os._exit(0 if ok else 1)
deadline = time.monotonic() + 15
status = None
while time.monotonic() < deadline:
    done, raw = os.waitpid(pid, os.WNOHANG)
    if done:
        status = os.waitstatus_to_exitcode(raw)
        break
    time.sleep(0.01)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
if busy is not None:
    busy.join(10)
after = procfound.run(["echo", "parent"]).stdout.strip()
print("RESULT", json.dumps({"status": status, "after": after, "children": children()}))
"""
)


@pytest.mark.parametrize("variant", ["idle", "busy"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sync_call_in_a_forked_child_works_with_a_fresh_portal(
    tmp_path: Path, backend: str, variant: str
) -> None:
    script, code, elapsed = run_interpreter(tmp_path, FORK_SCRIPT, variant, backend=backend)
    assert code == 0, script.report()
    result = script.result()
    assert result["status"] is not None, "the forked child hung"
    assert result["status"] == 0, script.report()
    assert result["after"] == "parent"
    assert result["children"] == []
    assert elapsed < 15


FORK_EXIT_SCRIPT = (
    """
import json, os, sys, time
import procfound
"""
    + CHILDREN_OF_ME
    + """
proc = procfound.ManagedProcess(["sleep", "30"], stderr_relay=False)
proc.launch()
pid = os.fork()
if pid == 0:
    procfound.run(["true"])
    sys.exit(0)  # a normal exit: atexit hooks run in the forked child
deadline = time.monotonic() + 10
status = None
while time.monotonic() < deadline:
    done, raw = os.waitpid(pid, os.WNOHANG)
    if done:
        status = os.waitstatus_to_exitcode(raw)
        break
    time.sleep(0.01)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
running = proc.is_running()
proc.terminate_gracefully(timeout=1)
print("RESULT", json.dumps({"status": status, "running": running, "children": children()}))
"""
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forked_child_exiting_normally_neither_hangs_nor_touches_the_parents_processes(
    tmp_path: Path, backend: str
) -> None:
    script, code, _ = run_interpreter(tmp_path, FORK_EXIT_SCRIPT, backend=backend, timeout=20)
    assert code == 0, script.report()
    result = script.result()
    assert result["status"] == 0, f"the forked child hung or failed at exit: {result}"
    assert result["running"] is True, "the forked child's exit stopped the parent's process"
    assert result["children"] == []


# --------------------------------------------------------------------------------------------
# Threads, loops and the portal, all at once
# --------------------------------------------------------------------------------------------


def test_16_threads_two_event_loops_and_a_portal_callback_all_at_once() -> None:
    parties = 16 + 2 + 1
    barrier = threading.Barrier(parties)
    results: dict[str, Any] = {}

    def command(tag: str) -> list[str]:
        return ["sh", "-c", 'sleep 0.3; echo "$0"', tag]

    def in_thread(i: int) -> None:
        barrier.wait(10)
        tag = f"thread-{i}"
        if i % 4 == 0:
            results[tag] = "".join(line + "\n" for line in stream(command(tag), timeout=30))
        elif i % 4 == 1:
            with ManagedProcess(command(tag), stderr_relay=False) as proc:
                results[tag] = anyio.run(proc.read_line_async, 20.0) + "\n"
        else:
            results[tag] = run(command(tag), timeout=30).stdout

    def in_asyncio_loop() -> None:
        async def main() -> str:
            barrier.wait(10)
            return str(run(command("asyncio"), timeout=30).stdout)

        results["asyncio"] = asyncio.run(main())

    def in_trio_loop() -> None:
        async def main() -> str:
            barrier.wait(10)
            return str(run(command("trio"), timeout=30).stdout)

        results["trio"] = trio.run(main)

    def from_portal_callbacks() -> None:
        barrier.wait(10)
        calls: dict[str, Callable[[], object]] = {
            "portal-run": lambda: run(["true"]),
            "portal-stream": lambda: list(stream(["true"])),
            "portal-launch": lambda: ManagedProcess(["true"]).launch(),
        }
        for name, call in calls.items():
            started = time.monotonic()
            try:
                get_portal().call(call)
                results[name] = "returned"
            except StateError as exc:
                results[name] = (exc, elapsed_since(started))
            except BaseExceptionGroup as group:
                matched, _ = group.split(StateError)
                results[name] = (matched or group, elapsed_since(started))

    workers = [threading.Thread(target=in_thread, args=(i,)) for i in range(16)]
    workers += [
        threading.Thread(target=in_asyncio_loop),
        threading.Thread(target=in_trio_loop),
        threading.Thread(target=from_portal_callbacks),
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    elapsed = elapsed_since(started)
    assert not [w for w in workers if w.is_alive()], "a caller deadlocked"
    for tag in [f"thread-{i}" for i in range(16)] + ["asyncio", "trio"]:
        assert results.get(tag) == f"{tag}\n", (tag, results.get(tag))
    for name in ("portal-run", "portal-stream", "portal-launch"):
        error, seconds = results[name]
        assert isinstance(error, StateError), (name, error)
        assert error.code == "SYNC_CALL_IN_PORTAL"
        assert seconds < 5
    # One after another would take 18 * 0.3 s and more.
    assert elapsed < 10


# --------------------------------------------------------------------------------------------
# Concurrent stops of one ManagedProcess
# --------------------------------------------------------------------------------------------


def test_two_threads_terminating_one_process_at_once_both_succeed(tree_dir: Path) -> None:
    proc = ManagedProcess(sh_tree(tree_dir, "sleep 30", ignore_term=True), stderr_relay=False)
    proc.launch()
    outcomes: dict[int, object] = {}
    try:
        wait_recorded(tree_dir, ["child", "grandchild"])

        def stop(i: int) -> None:
            try:
                outcomes[i] = proc.terminate_gracefully(timeout=0.5)
            except BaseException as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=stop, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert not [t for t in threads if t.is_alive()]
        # One stop runs the kill path; the other waits for it and reports the same verdict.
        assert outcomes == {0: False, 1: False}, outcomes
        assert proc.returncode == -signal.SIGKILL
        assert_gone(recorded(tree_dir))
    finally:
        proc.cleanup()


# --------------------------------------------------------------------------------------------
# Ctrl-C during stream and terminate_gracefully (sync; a fresh interpreter)
# --------------------------------------------------------------------------------------------

CTRL_C_PROLOGUE = (
    """
import asyncio, json, os, sys, time
import procfound
context, d = sys.argv[1], sys.argv[2]
def record(name, pid="$$"):
    return f"echo {pid} > {d}/{name}.tmp && mv {d}/{name}.tmp {d}/{name}"
TREE = ["sh", "-c",
    "trap '' TERM; sleep 30 & " + record("grandchild", "$!") + "; " + record("child")
    + "; while :; do echo tick; sleep 0.05; done"]
"""
    + CHILDREN_OF_ME
    + """
def report_children():
    print("CHILDREN", json.dumps(children()), flush=True)
"""
)

CTRL_C_EPILOGUE = """
async def in_loop():
    call()

try:
    if context == "plain":
        call()
    elif context == "in-asyncio-loop":
        asyncio.run(in_loop())
    else:
        import trio
        trio.run(in_loop)
except KeyboardInterrupt:
    print("KI", flush=True)
    print("AFTER", procfound.run(["echo", "still works"]).stdout.strip(), flush=True)
    sys.exit(0)
sys.exit(1)
"""

CTRL_C_STREAM_SCRIPT = (
    CTRL_C_PROLOGUE
    + """
def call():
    try:
        for line in procfound.stream(TREE):
            pass
    except KeyboardInterrupt:
        report_children()
        raise
    print("RETURNED", flush=True)
"""
    + CTRL_C_EPILOGUE
)

CTRL_C_TERMINATE_SCRIPT = (
    CTRL_C_PROLOGUE
    + """
def call():
    proc = procfound.ManagedProcess(TREE, stderr_relay=False)
    proc.launch()
    while not (os.path.exists(f"{d}/child") and os.path.exists(f"{d}/grandchild")):
        time.sleep(0.01)
    print("TERMINATING", flush=True)
    try:
        proc.terminate_gracefully(timeout=30)
    except KeyboardInterrupt:
        report_children()
        raise
    print("RETURNED", flush=True)
"""
    + CTRL_C_EPILOGUE
)

CTRL_C_CONTEXTS = [
    ("plain", "asyncio"),
    ("plain", "trio"),
    ("in-asyncio-loop", "asyncio"),
    ("in-trio-loop", "asyncio"),
]


def ctrl_c(
    tmp_path: Path, tree_dir: Path, code: str, context: str, backend: str, ready: str
) -> tuple[Interpreter, int | None, float]:
    """Run ``code``; once ``ready`` is printed (and the tree is up), SIGINT it; wait up to 4.5 s."""
    with Interpreter(tmp_path, code, context, str(tree_dir), backend=backend) as script:
        assert script.proc is not None
        wait_recorded(tree_dir, ["child", "grandchild"], timeout=20)
        assert script.wait_for_text(ready, 20), script.report()
        time.sleep(0.3)
        interrupted_at = time.monotonic()
        script.proc.send_signal(signal.SIGINT)
        # asyncio.Runner turns the first SIGINT into a cancellation of the main task, which a
        # blocking call cannot notice; its second SIGINT raises KeyboardInterrupt.
        if context == "in-asyncio-loop" and not script.wait_for_text("CHILDREN", 1.0):
            script.proc.send_signal(signal.SIGINT)
        exit_code = script.wait(4.5)
        elapsed = elapsed_since(interrupted_at)
    return script, exit_code, elapsed


def check_ctrl_c(script: Interpreter, exit_code: int | None, elapsed: float, tree: Path) -> None:
    assert exit_code is not None, f"still running 4.5 s after SIGINT\n{script.report()}"
    assert "CHILDREN []" in script.out, f"children alive at KeyboardInterrupt\n{script.report()}"
    assert "KI" in script.out.splitlines(), script.report()
    assert "AFTER still works" in script.out, script.report()
    assert exit_code == 0, script.report()
    assert elapsed < 4.0, f"{elapsed:.2f}s from SIGINT to exit"
    assert_gone(recorded(tree), within=1.0)


@pytest.mark.parametrize(("context", "backend"), CTRL_C_CONTEXTS)
def test_ctrl_c_during_sync_stream_kills_the_tree_before_keyboard_interrupt(
    tmp_path: Path, tree_dir: Path, context: str, backend: str
) -> None:
    script, exit_code, elapsed = ctrl_c(
        tmp_path, tree_dir, CTRL_C_STREAM_SCRIPT, context, backend, ready=""
    )
    check_ctrl_c(script, exit_code, elapsed, tree_dir)


@pytest.mark.parametrize(("context", "backend"), CTRL_C_CONTEXTS)
def test_ctrl_c_during_terminate_gracefully_kills_the_tree_before_keyboard_interrupt(
    tmp_path: Path, tree_dir: Path, context: str, backend: str
) -> None:
    script, exit_code, elapsed = ctrl_c(
        tmp_path, tree_dir, CTRL_C_TERMINATE_SCRIPT, context, backend, ready="TERMINATING"
    )
    check_ctrl_c(script, exit_code, elapsed, tree_dir)


@pytest.mark.anyio
async def test_cancelling_aterminate_gracefully_kills_the_tree_promptly(tree_dir: Path) -> None:
    proc = ManagedProcess(sh_tree(tree_dir, "sleep 30", ignore_term=True), stderr_relay=False)
    await proc.alaunch()
    try:
        await wait_recorded_async(tree_dir, ["child", "grandchild"])
        started = time.monotonic()
        with anyio.move_on_after(0.5):
            await proc.aterminate_gracefully(timeout=2.5)
        elapsed = elapsed_since(started)
    finally:
        await proc.acleanup()
    assert elapsed < 1.8, f"{elapsed:.2f}s: the cancellation waited for the whole grace"
    assert_gone(recorded(tree_dir))


# --------------------------------------------------------------------------------------------
# Interpreter exit with ManagedProcesses (and a sync run) still running
# --------------------------------------------------------------------------------------------

EXIT_SCRIPT = """
import json, os, sys, threading, time
import procfound
how, d = sys.argv[1], sys.argv[2]

def tree(name, ignore_term):
    def record(what, pid):
        return f"echo {pid} > {d}/{what}.tmp && mv {d}/{what}.tmp {d}/{what}"
    trap = "trap '' TERM; " if ignore_term else ""
    return ["sh", "-c", trap + "sleep 60 & " + record(name + "-gc", "$!") + "; "
            + record(name, "$$") + "; sleep 60"]

names = ["m0", "m1", "m2"]
procs = [procfound.ManagedProcess(tree(n, ignore_term=(n == "m0")), stderr_relay=False)
         for n in names]
for proc in procs:
    proc.launch()
def run_in_daemon_thread():
    try:
        procfound.run(tree("r", True))
    except BaseException:  # the portal stops under it at exit: not this test's subject
        pass
if how == "daemon-thread-run":
    names.append("r")
    threading.Thread(target=run_in_daemon_thread, daemon=True).start()
wanted = names + [n + "-gc" for n in names]
while not all(os.path.exists(f"{d}/{n}") for n in wanted):
    time.sleep(0.01)
print("PIDS", json.dumps([proc.pid for proc in procs]), flush=True)
if how == "exception":
    raise RuntimeError("unhandled on purpose")
"""


@pytest.mark.parametrize("how", ["normal", "exception", "daemon-thread-run"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_interpreter_exit_leaves_no_managed_process_or_run_alive(
    tmp_path: Path, tree_dir: Path, backend: str, how: str
) -> None:
    script, code, elapsed = run_interpreter(
        tmp_path, EXIT_SCRIPT, how, str(tree_dir), backend=backend, timeout=20
    )
    assert code is not None, f"the interpreter did not exit\n{script.report()}"
    pids = recorded(tree_dir)
    assert len(pids) == (8 if how == "daemon-thread-run" else 6), pids
    assert_gone(pids, within=2.0)
    assert elapsed < 10, f"{elapsed:.2f}s to exit"
    if how == "exception":
        assert code == 1
        assert "RuntimeError: unhandled on purpose" in script.err
    else:
        assert code == 0, script.report()
        assert script.err == "", script.report()


# --------------------------------------------------------------------------------------------
# Secrets: env override values never appear in logs, reprs or errors
# --------------------------------------------------------------------------------------------

SECRET = "pf-s3cr3t-7Q2vX9-do-not-print"
SECRET_ENV = {"PF_TOKEN": SECRET}
BAD_ENVS: list[dict[str, Any]] = [
    {"PF_TOKEN": SECRET + "\0tail"},
    {"PF_TOKEN": SECRET.encode()},
]


def error_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error))]
    if isinstance(error, procfound.errors.ProcfoundError):
        texts += [json.dumps(error.to_dict(), default=repr), repr(error.context)]
    return texts


def check_no_secret(texts: list[str], caplog: pytest.LogCaptureFixture) -> None:
    texts = texts + [record.getMessage() for record in caplog.records] + [caplog.text]
    assert any("PF_TOKEN" in text for text in texts), "the exercise logged nothing about env"
    leaks = [text for text in texts if SECRET in text]
    assert not leaks, f"the secret leaked into: {leaks[0][:500]!r}"


def exercise_sync(texts: list[str]) -> None:
    def failing(call: Callable[[], object]) -> None:
        try:
            call()
        except (ProcessError, ValidationError) as exc:
            texts.extend(error_texts(exc))
        else:
            raise AssertionError("expected an error")

    result = run(["true"], env=SECRET_ENV)
    texts += [repr(result), str(result)]
    texts.append(repr(shell("echo hi", env=SECRET_ENV)))
    failing(lambda: run(["sh", "-c", "echo out; echo err >&2; exit 3"], env=SECRET_ENV))
    failing(lambda: run(["sleep", "5"], env=SECRET_ENV, timeout=0.2))
    failing(lambda: run(["/nonexistent/procfound-test"], env=SECRET_ENV))
    failing(lambda: list(stream(["sh", "-c", "echo x; exit 4"], env=SECRET_ENV)))
    failing(lambda: list(stream(["sleep", "5"], env=SECRET_ENV, timeout=0.2)))
    proc = ManagedProcess(["sleep", "5"], env=SECRET_ENV, stderr_relay=False)
    texts.append(repr(proc))
    proc.launch()
    texts.append(repr(proc))
    proc.terminate_gracefully(timeout=1)
    texts.append(repr(proc))
    failing(lambda: ManagedProcess(["/nonexistent/procfound-test"], env=SECRET_ENV).launch())
    for bad in BAD_ENVS:
        failing(lambda bad=bad: run(["true"], env=bad))
        failing(lambda bad=bad: list(stream(["true"], env=bad)))
        failing(lambda bad=bad: ManagedProcess(["true"], env=bad))


def test_env_values_never_appear_in_logs_reprs_or_errors(
    sync_call: SyncCall, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="procfound")
    texts: list[str] = []
    sync_call(exercise_sync, texts)
    check_no_secret(texts, caplog)


@pytest.mark.anyio
async def test_async_env_values_never_appear_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="procfound")
    texts: list[str] = []

    async def failing(call: Callable[[], Any]) -> None:
        try:
            await call()
        except (ProcessError, ValidationError) as exc:
            texts.extend(error_texts(exc))
        else:
            raise AssertionError("expected an error")

    async def lines(cmd: list[str], **kwargs: Any) -> list[str]:
        async with aclosing(async_stream(cmd, **kwargs)) as agen:
            return [line async for line in agen]

    result = await async_run(["true"], env=SECRET_ENV)
    texts += [repr(result), str(result)]
    texts.append(repr(await async_shell("echo hi", env=SECRET_ENV)))
    await failing(lambda: async_run(["sh", "-c", "echo out; exit 3"], env=SECRET_ENV))
    await failing(lambda: async_run(["sleep", "5"], env=SECRET_ENV, timeout=0.2))
    await failing(lambda: async_run(["/nonexistent/procfound-test"], env=SECRET_ENV))
    await failing(lambda: lines(["sh", "-c", "echo x; exit 4"], env=SECRET_ENV))
    async with ManagedProcess(
        ["sh", "-c", "echo ready; exec sleep 5"], env=SECRET_ENV, stderr_relay=False
    ) as proc:
        await wait_for_process_output(proc, ["ready"])
        texts.append(repr(proc))
    texts.append(repr(proc))
    for bad in BAD_ENVS:
        await failing(lambda bad=bad: async_run(["true"], env=bad))
        await failing(lambda bad=bad: lines(["true"], env=bad))
    check_no_secret(texts, caplog)
