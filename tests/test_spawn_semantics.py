"""One spawn semantics: the ``fork_exec`` path and the ``subprocess.Popen`` fallback behave alike.

Every test runs on both paths (the ``spawn_path`` fixture, in conftest.py, takes the fallback
by setting ``procfound.engine.spawn._FORK_EXEC`` to None), with and without ``cwd``: which fds
reach the child, where the program is looked up, the child's signal dispositions, and the
errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import python

import procfound.engine.spawn
from procfound import ManagedProcess, ProcessError, async_run, run, stream

SIGIGN = ["grep", "SigIgn", "/proc/self/status"]
SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)
CWDS = [None, "/"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@contextlib.contextmanager
def inheritable_pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose write end is inheritable: only close_fds keeps it from a child."""
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


def open_fds_of_child() -> list[str]:
    """A child that prints the fds it has open (its own listing fd left out)."""
    return python(
        """
        import os
        fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        print(" ".join(str(fd) for fd in fds if os.path.exists(f"/proc/self/fd/{fd}")))
        """
    )


def child_fds(**kwargs: Any) -> set[int]:
    return set(map(int, run(open_fds_of_child(), **kwargs).stdout.split()))


@pytest.mark.parametrize("cwd", CWDS)
def test_only_stdio_and_pass_fds_reach_the_child(spawn_path: str, cwd: str | None) -> None:
    with inheritable_pipe() as (_, w):
        assert child_fds(cwd=cwd) == {0, 1, 2}
        assert child_fds(cwd=cwd, pass_fds=(w,)) == {0, 1, 2, w}
        lines = list(stream(open_fds_of_child(), cwd=cwd))
        assert set(map(int, lines[0].split())) == {0, 1, 2}


@pytest.mark.anyio
async def test_only_stdio_and_pass_fds_reach_the_child_async(spawn_path: str) -> None:
    with inheritable_pipe() as (r, w):
        result = await async_run(open_fds_of_child(), cwd="/", pass_fds=[r])
        assert set(map(int, result.stdout.split())) == {0, 1, 2, r}
        result = await async_run(open_fds_of_child())
        assert w not in set(map(int, result.stdout.split()))


@pytest.fixture
def script_dir(tmp_path: Path) -> Path:
    """A directory holding an executable ``procfound-probe`` script, in no PATH of ours."""
    script = tmp_path / "bin" / "procfound-probe"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho found in the child PATH\n")
    script.chmod(0o755)
    return script.parent


@pytest.mark.parametrize("cwd", CWDS)
def test_program_is_looked_up_in_the_childs_path(
    spawn_path: str, script_dir: Path, cwd: str | None
) -> None:
    env = {"PATH": str(script_dir)}
    assert run(["procfound-probe"], env=env, cwd=cwd).stdout == "found in the child PATH\n"
    assert list(stream(["procfound-probe"], env=env, cwd=cwd)) == ["found in the child PATH"]
    with pytest.raises(ProcessError, match="executable not found: procfound-probe"):
        run(["procfound-probe"], cwd=cwd)  # our PATH does not have it


def test_managed_process_looks_up_in_the_childs_path(spawn_path: str, script_dir: Path) -> None:
    with ManagedProcess(["procfound-probe"], env={"PATH": str(script_dir)}, cwd="/") as proc:
        assert proc.process is not None
        assert proc.process.wait(timeout=5) == 0
        assert proc.stdout_tail == "found in the child PATH\n"


@pytest.mark.parametrize("cwd", CWDS)
def test_signal_dispositions_are_restored_in_the_child(spawn_path: str, cwd: str | None) -> None:
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python ignores it in us
    status = run(SIGIGN, cwd=cwd).stdout
    assert not int(status.split()[1], 16) & SIGPIPE_BIT
    # A pipeline ends quietly when its reader goes: the writer dies of SIGPIPE.
    done = run(["sh", "-c", "yes | head -1"], cwd=cwd)
    assert (done.stdout, done.stderr) == ("y\n", "")


@pytest.mark.parametrize("cwd", CWDS)
def test_restore_signals_false_keeps_our_ignored_sigpipe(spawn_path: str, cwd: str | None) -> None:
    status = run(SIGIGN, cwd=cwd, restore_signals=False).stdout
    assert int(status.split()[1], 16) & SIGPIPE_BIT
    # The writer gets EPIPE instead of the signal, and says so.
    done = run(["sh", "-c", "yes | head -1"], cwd=cwd, restore_signals=False)
    assert done.stdout == "y\n"
    assert "Broken pipe" in done.stderr


FAILURES = [
    (["procfound-no-such-program"], {}, "executable not found: procfound-no-such-program"),
    (["/procfound/no/such/program"], {}, "executable not found: /procfound/no/such/program"),
    (["true"], {"cwd": "/procfound/no/such/dir"}, "working directory not found"),
    (["/etc/passwd"], {}, "permission denied: /etc/passwd"),
    (["true"], {"cwd": "/etc/passwd"}, "not a directory: /etc/passwd"),
]


def spawn_failure(cmd: list[str], kwargs: dict[str, Any]) -> tuple[str, str, int | None]:
    with pytest.raises(ProcessError) as caught:
        run(cmd, **kwargs)
    cause = caught.value.__cause__
    assert isinstance(cause, OSError)
    return str(caught.value), str(caught.value.code), cause.errno


@pytest.mark.parametrize(("cmd", "kwargs", "words"), FAILURES)
def test_spawn_errors_are_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, cmd: list[str], kwargs: dict[str, Any], words: str
) -> None:
    if procfound.engine.spawn._FORK_EXEC is None:
        pytest.skip("this interpreter's fork_exec is not one procfound knows")
    through_fork_exec = spawn_failure(cmd, kwargs)
    monkeypatch.setattr(procfound.engine.spawn, "_FORK_EXEC", None)
    through_popen = spawn_failure(cmd, kwargs)
    assert through_fork_exec == through_popen
    assert words in through_popen[0]
    assert through_popen[1] == "PROCESS_EXECUTION_FAILED"


def test_managed_process_launch_errors_are_the_same_on_both_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def launch_error(**kwargs: Any) -> tuple[str, int | None]:
        proc = ManagedProcess(["procfound-no-such-program"], **kwargs)
        with pytest.raises(ProcessError) as caught:
            proc.launch()
        assert caught.value.code == "PROCESS_LAUNCH_FAILED"
        assert isinstance(caught.value.__cause__, OSError)
        return str(caught.value), caught.value.__cause__.errno

    first = launch_error(), launch_error(cwd="/")
    monkeypatch.setattr(procfound.engine.spawn, "_FORK_EXEC", None)
    assert (launch_error(), launch_error(cwd="/")) == first
    assert first[0][1] == errno.ENOENT
