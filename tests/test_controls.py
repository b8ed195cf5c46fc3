"""The seed's subprocess controls (issue #17): stdio targets, pass_fds, session and group,
user/group/umask, restore_signals, pipesize, executable, process_title, print_output, ignored
keywords and the Windows-only arguments.

Every control is proven from sync code (``sync_call``: plain, inside asyncio, inside trio) and
from async code under asyncio and trio (``anyio_backend``), on real children.
"""

from __future__ import annotations

import contextlib
import grp
import io
import os
import pwd
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import pytest
from conftest import SyncCall, python

from procfound import (
    CompletedProcess,
    IgnoredArgumentWarning,
    ManagedProcess,
    ProcessTimeoutError,
    ValidationError,
    async_run,
    async_shell,
    async_stream,
    async_stream_batches,
    run,
    shell,
    stream,
    stream_batches,
)

MERGED = ["sh", "-c", "echo 1; echo 2 >&2; echo 3"]
BOTH = ["sh", "-c", "echo out; echo err >&2"]
SLEEP = ["sleep", "30"]
SHORT = 0.3  # the deadline of the timeout tests
PROMPT = 10.0  # "promptly": a generous bound, never a speed claim
# What a child's /proc/self/status says about ignored signals; SIGPIPE is signal 13.
SIGIGN = ["grep", "SigIgn", "/proc/self/status"]
SIGPIPE_BIT = 1 << (signal.SIGPIPE - 1)
F_GETPIPE_SZ = 1032  # Linux fcntl; Python 3.11's fcntl module lacks the name on some builds
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing user or group needs root")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def fd_open_in_child(fd: int) -> list[str]:
    """A child that prints whether ``fd`` is open in it."""
    return python(
        f"""
        import os
        try:
            os.fstat({fd})
            print("open")
        except OSError:
            print("closed")
        """
    )


@contextlib.contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe of ours, both ends closed afterwards (the leak check watches pipes)."""
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


def sigpipe_ignored(status_line: str) -> bool:
    """Whether a child's ``SigIgn:`` line has SIGPIPE in its mask."""
    return bool(int(status_line.split()[1], 16) & SIGPIPE_BIT)


# --------------------------------------------------------------------------------------------
# Standard-stream targets on run/shell
# --------------------------------------------------------------------------------------------

Case = tuple[list[str] | str, dict[str, Any], Callable[[CompletedProcess[Any]], None]]


@dataclass(frozen=True)
class Targets:
    """Things a child's stream can be sent to: a file to write, a file to read, a pipe."""

    out_file: BinaryIO
    in_file: BinaryIO
    r: int
    w: int


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[Targets]:
    (tmp_path / "in.txt").write_text("from a file\n")
    with (
        open(tmp_path / "out.txt", "w+b") as out_file,
        open(tmp_path / "in.txt", "rb") as in_file,
        pipe() as (r, w),
    ):
        yield Targets(out_file, in_file, r, w)


def stdio_cases(targets: Targets) -> list[Case]:
    """(command, keywords, check of the result) for every kind of target."""
    out_file, stdin_file, r, w = targets.out_file, targets.in_file, targets.r, targets.w

    def merged(result: CompletedProcess[Any]) -> None:
        assert (result.stdout, result.stderr) == ("1\n2\n3\n", "")

    def devnull_out(result: CompletedProcess[Any]) -> None:
        assert (result.stdout, result.stderr) == ("", "err\n")

    def devnull_bytes(result: CompletedProcess[Any]) -> None:
        assert (result.stdout, result.stderr) == (b"", b"err\n")

    def piped_without_capture(result: CompletedProcess[Any]) -> None:
        assert result.stdout == "out\n"
        assert result.stderr == ""  # not captured: it went to our stderr

    def to_file(result: CompletedProcess[Any]) -> None:
        assert (result.stdout, result.stderr) == ("", "err\n")
        out_file.seek(0)
        assert out_file.read() == b"out\n"
        out_file.truncate(0)

    def to_fd(result: CompletedProcess[Any]) -> None:
        assert (result.stdout, result.stderr) == ("", "err\n")
        assert os.read(r, 100) == b"out\n"

    def read_stdin(result: CompletedProcess[Any]) -> None:
        assert result.stdout == "from a file\n"
        stdin_file.seek(0)

    return [
        (MERGED, {"stderr": subprocess.STDOUT}, merged),
        ("echo 1; echo 2 >&2; echo 3", {"shell": True, "stderr": subprocess.STDOUT}, merged),
        (BOTH, {"stdout": subprocess.DEVNULL}, devnull_out),
        (BOTH, {"stdout": subprocess.DEVNULL, "text": False}, devnull_bytes),
        (BOTH, {"stdout": subprocess.PIPE, "capture_output": False}, piped_without_capture),
        (BOTH, {"stdout": out_file}, to_file),
        (BOTH, {"stdout": w}, to_fd),
        (["cat"], {"stdin": stdin_file}, read_stdin),
        (["cat"], {"stdin": stdin_file.fileno()}, read_stdin),
    ]


def test_stdio_targets_route_each_stream(sync_call: SyncCall, targets: Targets) -> None:
    for cmd, kwargs, check in stdio_cases(targets):
        check(sync_call(run, cmd, **kwargs))


@pytest.mark.anyio
async def test_stdio_targets_route_each_stream_async(targets: Targets) -> None:
    for cmd, kwargs, check in stdio_cases(targets):
        check(await async_run(cmd, **kwargs))


def test_shell_takes_stdio_targets(sync_call: SyncCall) -> None:
    result = sync_call(shell, "echo out", stdout=subprocess.DEVNULL)
    assert (result.stdout, result.stderr) == ("", "")


@pytest.mark.anyio
async def test_async_shell_takes_stdio_targets() -> None:
    result = await async_shell(
        "echo 1; echo 2 >&2", allow_shell_features=True, stderr=subprocess.STDOUT
    )
    assert (result.stdout, result.stderr) == ("1\n2\n", "")


def test_input_with_stdin_none_is_written_as_in_subprocess_run(sync_call: SyncCall) -> None:
    # subprocess.run(input=..., stdin=None) is allowed (None is its default); stdin=PIPE is not.
    assert sync_call(run, ["cat"], input="fed", stdin=None).stdout == "fed"
    with pytest.raises(ValidationError, match="stdin and input"):
        sync_call(run, ["cat"], input="fed", stdin=subprocess.PIPE)


def test_subprocess_defaults_passed_explicitly_are_accepted(sync_call: SyncCall) -> None:
    defaults: dict[str, Any] = {
        "encoding": None,
        "errors": None,
        "pass_fds": (),
        "start_new_session": False,
        "process_group": None,
        "user": None,
        "group": None,
        "extra_groups": None,
        "umask": -1,
        "restore_signals": True,
        "pipesize": -1,
        "executable": None,
        "startupinfo": None,
        "creationflags": 0,
        "universal_newlines": None,
    }
    assert sync_call(run, ["printf", "\\303\\251\\377"], **defaults).stdout == "\u00e9\ufffd"


def test_close_fds_true_and_bufsize_are_accepted_and_close_fds_false_warns(
    sync_call: SyncCall,
) -> None:
    # What CPython's own tests pass: close_fds=True is what always happens, bufsize is moot.
    r, w = os.pipe()
    try:
        result = sync_call(run, ["true"], close_fds=True, bufsize=0, pass_fds=(w,))
        assert result.returncode == 0
        with pytest.warns(IgnoredArgumentWarning, match=r"run\(\) ignored 'close_fds=False'"):
            assert sync_call(run, ["true"], close_fds=False).returncode == 0
    finally:
        os.close(r)
        os.close(w)


def test_none_target_inherits_our_streams(capfd: pytest.CaptureFixture[str]) -> None:
    result = run(BOTH, stdout=None, stderr=None)
    assert (result.stdout, result.stderr) == ("", "")
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("out\n", "err\n")


def timeout_targets(targets: Targets) -> dict[str, dict[str, Any]]:
    """One set of keywords per kind of target, for a child that must still be stopped."""
    return {
        "PIPE": {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE},
        "DEVNULL": {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL},
        "None": {"stdin": None, "stdout": None, "stderr": None},
        "fd": {"stdout": targets.w, "stderr": targets.w},
        "file": {"stdin": targets.in_file, "stdout": targets.out_file},
        "STDOUT": {"stderr": subprocess.STDOUT},
    }


def test_timeout_stops_the_child_whatever_the_targets(
    sync_call: SyncCall, targets: Targets
) -> None:
    for name, kwargs in timeout_targets(targets).items():
        started = time.monotonic()
        with pytest.raises(ProcessTimeoutError) as caught:
            sync_call(run, SLEEP, timeout=SHORT, **kwargs)
        assert time.monotonic() - started < PROMPT, name
        assert caught.value.return_code == -signal.SIGTERM, name


@pytest.mark.anyio
async def test_timeout_and_cancellation_stop_the_child_whatever_the_targets(
    targets: Targets,
) -> None:
    ended: dict[str, str] = {}

    async def timed_out(name: str, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ProcessTimeoutError):
            await async_run(SLEEP, timeout=SHORT, **kwargs)
        ended[f"timeout {name}"] = "raised"

    async def cancelled(name: str, kwargs: dict[str, Any]) -> None:
        with anyio.move_on_after(SHORT) as scope:
            await async_shell("sleep 30", **kwargs)
        ended[f"cancel {name}"] = "cancelled" if scope.cancelled_caught else "returned"

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for name, kwargs in timeout_targets(targets).items():
            tg.start_soon(timed_out, name, kwargs)
            tg.start_soon(cancelled, name, kwargs)
    assert time.monotonic() - started < PROMPT
    assert len(ended) == 12
    assert set(ended.values()) == {"raised", "cancelled"}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"stdin": subprocess.STDOUT}, "stdin=subprocess.STDOUT"),
        ({"stdout": subprocess.STDOUT}, "stdout=subprocess.STDOUT"),
        ({"stdout": io.StringIO()}, "StringIO"),
        ({"stdin": io.BytesIO(b"x")}, "BytesIO"),
        ({"stdout": "out.txt"}, "str"),
        ({"stdin": subprocess.DEVNULL, "input": "data"}, "stdin and input"),
        ({"foreground": True, "start_new_session": True}, "foreground"),
        ({"foreground": True, "process_group": 0}, "foreground"),
        ({"start_new_session": True, "process_group": 1}, "start_new_session"),
        ({"user": "no-such-user-procfound"}, "no user named"),
        ({"group": "no-such-group-procfound"}, "no group named"),
        ({"extra_groups": ["no-such-group-procfound"]}, "no group named"),
        ({"extra_groups": "root"}, "list of groups"),
        ({"pass_fds": 5}, "sequence of fds"),
        ({"umask": "077"}, "umask"),
        ({"pipesize": -5}, "pipesize"),
        ({"executable": ""}, "executable"),
        ({"process_title": 7}, "process_title"),
        ({"restore_signals": "yes"}, "restore_signals"),
    ],
)
def test_invalid_controls_are_refused_before_anything_runs(
    sync_call: SyncCall, tmp_path: Path, kwargs: dict[str, Any], words: str
) -> None:
    marker = tmp_path / "started"
    with pytest.raises(ValidationError, match=words):
        sync_call(run, ["touch", str(marker)], **kwargs)
    assert not marker.exists()


@pytest.mark.anyio
async def test_closed_fds_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pipe() as (r, _):
        closed = r
    marker = tmp_path / "started"
    for kwargs in ({"stdout": closed}, {"stdin": closed}, {"pass_fds": (closed,)}):
        with pytest.raises(ValidationError, match="not an open file descriptor"):
            await async_run(["touch", str(marker)], **kwargs)
        with pytest.raises(ValidationError, match="not an open file descriptor"):
            await async_shell(f"touch {marker}", **kwargs)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# Streams: where stdout and stderr may go
# --------------------------------------------------------------------------------------------

REFUSED_STREAM_CONTROLS: list[dict[str, Any]] = [
    {"stdout": subprocess.DEVNULL},
    {"stdout": None},
    {"stdout": 1},
    {"stream_stderr": True, "stderr": subprocess.DEVNULL},
    {"stream_stderr": True, "stderr": subprocess.PIPE},
    {"text": False},
    {"universal_newlines": False},
]


def test_sync_streams_refuse_other_stdout_targets_when_iteration_starts(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    marker = tmp_path / "started"

    def attempt() -> list[str]:
        refused = []
        for function in (stream, stream_batches):
            for kwargs in REFUSED_STREAM_CONTROLS:
                lines = function(["touch", str(marker)], **kwargs)  # nothing raised yet
                try:
                    next(iter(lines))
                except ValidationError:
                    refused.append(function.__name__)
        return refused

    assert len(sync_call(attempt)) == 2 * len(REFUSED_STREAM_CONTROLS)
    assert not marker.exists()


@pytest.mark.anyio
async def test_async_streams_refuse_other_stdout_targets_when_iteration_starts(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "started"
    for kwargs in REFUSED_STREAM_CONTROLS:
        lines = async_stream(["touch", str(marker)], **kwargs)
        with pytest.raises(ValidationError):
            await lines.__anext__()
        batches = async_stream_batches(["touch", str(marker)], **kwargs)
        with pytest.raises(ValidationError):
            await batches.__anext__()
    assert not marker.exists()


def test_streams_accept_stderr_devnull_and_stdout_pipe(sync_call: SyncCall) -> None:
    def both() -> tuple[list[str], list[str]]:
        quiet = list(stream(BOTH, stderr=subprocess.DEVNULL, stdout=subprocess.PIPE))
        merged = list(stream(MERGED, stream_stderr=True, stderr=subprocess.STDOUT))
        return quiet, merged

    assert sync_call(both) == (["out"], ["1", "2", "3"])


@pytest.mark.anyio
async def test_async_streams_accept_stderr_devnull_and_stdout_pipe() -> None:
    assert [line async for line in async_stream(BOTH, stderr=subprocess.DEVNULL)] == ["out"]
    batches = [b async for b in async_stream_batches(BOTH, stdout=subprocess.PIPE)]
    assert batches == [["out"]]


# --------------------------------------------------------------------------------------------
# pass_fds
# --------------------------------------------------------------------------------------------


def test_pass_fds_keeps_that_fd_under_its_number(sync_call: SyncCall) -> None:
    with pipe() as (r, w):
        assert not os.get_inheritable(w)
        assert sync_call(run, fd_open_in_child(w), pass_fds=(w,)).stdout == "open\n"
        assert sync_call(run, fd_open_in_child(w), pass_fds=[r]).stdout == "closed\n"
        # The child writes through the fd it was given: it is our pipe, not another file.
        sync_call(run, python(f"import os; os.write({w}, b'through')"), pass_fds=(w,))
        assert os.read(r, 100) == b"through"


@pytest.mark.anyio
async def test_pass_fds_keeps_that_fd_under_its_number_async() -> None:
    with pipe() as (r, w):
        result = await async_run(fd_open_in_child(w), pass_fds=(w,))
        assert result.stdout == "open\n"
        await async_run(python(f"import os; os.write({w}, b'through')"), pass_fds=(w,))
        assert os.read(r, 100) == b"through"
        assert (await async_run(fd_open_in_child(w))).stdout == "closed\n"


# --------------------------------------------------------------------------------------------
# Session and process group
# --------------------------------------------------------------------------------------------

IDS = python(
    """
    import os
    print(os.getpid(), os.getsid(0), os.getpgid(0))
    """
)


def ids(result: CompletedProcess[Any]) -> tuple[int, int, int]:
    pid, sid, pgid = map(int, result.stdout.split())
    return pid, sid, pgid


@contextlib.contextmanager
def our_group_must_not_be_signalled() -> Iterator[list[int]]:
    """Record a SIGTERM to this process (to our group), instead of dying of it."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: received.append(sig))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [], "the timeout signalled our process group"


def test_session_and_group_controls(sync_call: SyncCall) -> None:
    pid, sid, pgid = ids(sync_call(run, IDS, start_new_session=True))
    assert sid == pid == pgid
    pid, sid, pgid = ids(sync_call(run, IDS, process_group=0))
    assert pgid == pid
    assert sid == os.getsid(0)
    _, _, pgid = ids(sync_call(run, IDS, process_group=os.getpgrp()))
    assert pgid == os.getpgrp()


@pytest.mark.anyio
async def test_session_and_group_controls_async() -> None:
    pid, sid, pgid = ids(await async_run(IDS, start_new_session=True))
    assert sid == pid == pgid
    pid, _, pgid = ids(await async_run(IDS, process_group=0))
    assert pgid == pid
    _, _, pgid = ids(await async_run(IDS, process_group=os.getpgrp()))
    assert pgid == os.getpgrp()


def test_timeout_stops_a_child_in_a_new_session_or_in_our_group(sync_call: SyncCall) -> None:
    with our_group_must_not_be_signalled():
        for kwargs in ({"start_new_session": True}, {"process_group": os.getpgrp()}):
            started = time.monotonic()
            with pytest.raises(ProcessTimeoutError) as caught:
                sync_call(run, SLEEP, timeout=SHORT, **kwargs)
            assert time.monotonic() - started < PROMPT
            assert caught.value.return_code == -signal.SIGTERM


@pytest.mark.anyio
async def test_timeout_stops_a_child_in_a_new_session_or_in_our_group_async() -> None:
    with our_group_must_not_be_signalled():
        for kwargs in ({"start_new_session": True}, {"process_group": os.getpgrp()}):
            with pytest.raises(ProcessTimeoutError) as caught:
                await async_run(SLEEP, timeout=SHORT, **kwargs)
            assert caught.value.return_code == -signal.SIGTERM
        with anyio.move_on_after(SHORT) as scope:
            await async_run(SLEEP, process_group=os.getpgrp())
        assert scope.cancelled_caught


# --------------------------------------------------------------------------------------------
# user, group, extra_groups, umask
# --------------------------------------------------------------------------------------------


def nobody() -> tuple[int, int]:
    """nobody's uid and a group for it (Debian's nogroup, else nobody's primary group)."""
    user = pwd.getpwnam("nobody")
    try:
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        gid = user.pw_gid
    return user.pw_uid, gid


@needs_root
def test_user_group_and_extra_groups(sync_call: SyncCall) -> None:
    uid, gid = nobody()
    assert sync_call(run, ["id", "-u"], user="nobody").stdout == f"{uid}\n"
    assert sync_call(run, ["id", "-u"], user=uid).stdout == f"{uid}\n"
    assert sync_call(run, ["id", "-g"], group=gid).stdout == f"{gid}\n"
    name = grp.getgrgid(gid).gr_name
    assert sync_call(run, ["id", "-g"], group=name).stdout == f"{gid}\n"
    extra = sync_call(run, ["id", "-G"], user=uid, group=gid, extra_groups=[gid, 100])
    assert set(extra.stdout.split()) == {str(gid), "100"}


@needs_root
@pytest.mark.anyio
async def test_user_group_and_extra_groups_async() -> None:
    uid, gid = nobody()
    assert (await async_run(["id", "-u"], user="nobody")).stdout == f"{uid}\n"
    name = grp.getgrgid(gid).gr_name
    assert (await async_run(["id", "-g"], user=uid, group=name)).stdout == f"{gid}\n"
    result = await async_run(["id", "-G"], user=uid, group=gid, extra_groups=[])
    assert result.stdout == f"{gid}\n"


def test_umask_applies_to_files_the_child_creates(sync_call: SyncCall, tmp_path: Path) -> None:
    sync_call(run, ["touch", str(tmp_path / "private")], umask=0o077)
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600
    assert sync_call(run, ["sh", "-c", "umask"], umask=0o027).stdout == "0027\n"


@pytest.mark.anyio
async def test_umask_applies_to_files_the_child_creates_async(tmp_path: Path) -> None:
    await async_run(["touch", str(tmp_path / "private")], umask=0o077)
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------------------------
# restore_signals, pipesize
# --------------------------------------------------------------------------------------------


def test_restore_signals(sync_call: SyncCall) -> None:
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python's own default
    assert not sigpipe_ignored(sync_call(run, SIGIGN).stdout)
    assert sigpipe_ignored(sync_call(run, SIGIGN, restore_signals=False).stdout)


@pytest.mark.anyio
async def test_restore_signals_async() -> None:
    assert not sigpipe_ignored((await async_run(SIGIGN, restore_signals=True)).stdout)
    assert sigpipe_ignored((await async_run(SIGIGN, restore_signals=False)).stdout)


PIPE_SIZE = python(
    f"""
    import fcntl
    print(fcntl.fcntl(1, {F_GETPIPE_SZ}))
    """
)


@linux_only
def test_pipesize_sets_the_stdout_pipe_size(sync_call: SyncCall) -> None:
    assert sync_call(run, PIPE_SIZE, pipesize=1 << 20).stdout == f"{1 << 20}\n"
    assert sync_call(run, PIPE_SIZE, pipesize=-1).stdout != f"{1 << 20}\n"


@linux_only
@pytest.mark.anyio
async def test_pipesize_sets_the_stdout_pipe_size_async() -> None:
    assert (await async_run(PIPE_SIZE, pipesize=1 << 20)).stdout == f"{1 << 20}\n"


# --------------------------------------------------------------------------------------------
# executable, process_title
# --------------------------------------------------------------------------------------------

SHELL_EXE = "readlink /proc/$$/exe; true"  # not last: no exec of readlink in its place


def test_executable_runs_another_program_under_argv0(sync_call: SyncCall) -> None:
    result = sync_call(run, ["myname", "-c", "echo $0"], executable="/bin/sh")
    assert result.stdout == "myname\n"
    bash = os.path.realpath("/bin/bash")
    replaced = sync_call(run, SHELL_EXE, shell=True, executable=bash)
    assert replaced.stdout == f"{bash}\n"


@pytest.mark.anyio
async def test_executable_runs_another_program_under_argv0_async() -> None:
    result = await async_run(["myname", "-c", "echo $0"], executable="/bin/sh")
    assert result.stdout == "myname\n"
    bash = os.path.realpath("/bin/bash")
    replaced = await async_shell(SHELL_EXE, allow_shell_features=True, executable=bash)
    assert replaced.stdout == f"{bash}\n"
    default = await async_shell(SHELL_EXE, allow_shell_features=True)
    assert default.stdout == f"{os.path.realpath('/bin/sh')}\n"


# sh is found in PATH; it prints its own argv as the kernel holds it.
SHOW_ARGV = ["sh", "-c", "tr '\\0' ' ' < /proc/$$/cmdline"]
TITLE_VARIANTS: list[dict[str, Any]] = [{}, {"contain": "tree"}, {"kill_on_parent_death": True}]


def argv0(line: str) -> str:
    return line.split(" ", 1)[0]


def test_process_title_is_the_childs_argv0(sync_call: SyncCall) -> None:
    def titles() -> list[str]:
        shown = [
            argv0(run(SHOW_ARGV, process_title="custom-title", **kwargs).stdout)
            for kwargs in TITLE_VARIANTS
        ]
        shown += [argv0(line) for line in stream(SHOW_ARGV, process_title="custom-title")]
        return shown

    assert sync_call(titles) == ["custom-title"] * 4


@pytest.mark.anyio
async def test_process_title_is_the_childs_argv0_async() -> None:
    for kwargs in [*TITLE_VARIANTS, {"contain": "tree", "kill_on_parent_death": True}]:
        result = await async_run(SHOW_ARGV, process_title="custom-title", **kwargs)
        assert argv0(result.stdout) == "custom-title", kwargs
    lines = [line async for line in async_stream(SHOW_ARGV, process_title="custom-title")]
    assert [argv0(line) for line in lines] == ["custom-title"]
    async with ManagedProcess(SHOW_ARGV, process_title="custom-title") as proc:
        assert argv0(await proc.read_line_async(timeout=5)) == "custom-title"


# --------------------------------------------------------------------------------------------
# print_output
# --------------------------------------------------------------------------------------------


def test_print_output_echoes_and_still_captures(
    sync_call: SyncCall, capsys: pytest.CaptureFixture[str]
) -> None:
    result = sync_call(run, ["sh", "-c", "echo seen; echo oops >&2"], print_output=True)
    assert (result.stdout, result.stderr) == ("seen\n", "oops\n")
    echoed = capsys.readouterr().out
    assert sorted(echoed.splitlines()) == ["oops", "seen"]
    assert sync_call(lambda: list(stream(["echo", "line"], print_output=True))) == ["line"]
    assert capsys.readouterr().out == "line\n"
    quiet = sync_call(run, ["echo", "quiet"])
    assert quiet.stdout == "quiet\n"
    assert capsys.readouterr().out == ""


@pytest.mark.anyio
async def test_print_output_echoes_and_still_captures_async(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = await async_run(["printf", "a\\nb\\n"], print_output=True)
    assert result.stdout == "a\nb\n"
    assert capsys.readouterr().out == "a\nb\n"
    lines = [line async for line in async_stream(["echo", "line"], print_output=True)]
    assert lines == ["line"]
    assert capsys.readouterr().out == "line\n"


# --------------------------------------------------------------------------------------------
# Unknown keywords, Windows-only arguments
# --------------------------------------------------------------------------------------------


def test_unknown_keyword_warns_and_the_call_proceeds(sync_call: SyncCall) -> None:
    assert issubclass(IgnoredArgumentWarning, UserWarning)
    with pytest.warns(IgnoredArgumentWarning, match=r"run\(\) .*'bogus'"):
        assert sync_call(run, ["echo", "ran"], bogus=1).stdout == "ran\n"
    with pytest.warns(IgnoredArgumentWarning, match=r"stream\(\) .*'preexec_fn'"):
        assert sync_call(lambda: list(stream(["echo", "ran"], preexec_fn=None))) == ["ran"]
    with pytest.warns(IgnoredArgumentWarning, match=r"shell\(\) .*'bogus'"):
        assert sync_call(shell, "echo ran", bogus=1).stdout == "ran\n"


@pytest.mark.anyio
async def test_unknown_keyword_warns_and_the_call_proceeds_async() -> None:
    with pytest.warns(IgnoredArgumentWarning, match=r"run\(\) .*'bogus'"):
        assert (await async_run(["echo", "ran"], bogus=1)).stdout == "ran\n"
    with pytest.warns(IgnoredArgumentWarning, match=r"async_stream\(\) .*'bogus'"):
        assert [line async for line in async_stream(["echo", "ran"], bogus=1)] == ["ran"]
    with pytest.warns(IgnoredArgumentWarning, match=r"shell\(\) .*'bogus'"):
        assert (await async_shell("echo ran", bogus=1)).stdout == "ran\n"
    with pytest.warns(IgnoredArgumentWarning, match=r"run\(\) .*'bogus'"):  # not shell()'s name
        assert (await async_run(["echo", "ran"], bogus=1)).stdout == "ran\n"
    with pytest.warns(IgnoredArgumentWarning, match=r"ManagedProcess\(\) .*'bogus'"):
        proc = ManagedProcess(["echo", "ran"], bogus=1)
    async with proc:
        assert await proc.read_line_async(timeout=5) == "ran"


def test_unknown_keyword_as_an_error_starts_nothing(sync_call: SyncCall, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    touch = ["touch", str(marker)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredArgumentWarning)
        with pytest.raises(IgnoredArgumentWarning):
            sync_call(run, touch, bogus=1)
        with pytest.raises(IgnoredArgumentWarning):
            sync_call(lambda: list(stream(touch, bogus=1)))
        with pytest.raises(IgnoredArgumentWarning):
            ManagedProcess(touch, bogus=1)
    assert not marker.exists()


@pytest.mark.anyio
async def test_unknown_keyword_as_an_error_starts_nothing_async(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredArgumentWarning)
        with pytest.raises(IgnoredArgumentWarning):
            await async_run(["touch", str(marker)], bogus=1)
        with pytest.raises(IgnoredArgumentWarning):
            await async_stream(["touch", str(marker)], bogus=1).__anext__()
    assert not marker.exists()


def test_windows_only_arguments(sync_call: SyncCall) -> None:
    for kwargs in ({"startupinfo": object()}, {"creationflags": 0x08000000}):
        with pytest.raises(ValidationError) as caught:
            sync_call(run, ["true"], **kwargs)
        assert caught.value.code == "PLATFORM_NOT_SUPPORTED"
    assert sync_call(run, ["true"], startupinfo=None, creationflags=0).returncode == 0


@pytest.mark.anyio
async def test_windows_only_arguments_async() -> None:
    with pytest.raises(ValidationError) as caught:
        await async_run(["true"], creationflags=1)
    assert caught.value.code == "PLATFORM_NOT_SUPPORTED"
    lines = async_stream(["true"], startupinfo=object())
    with pytest.raises(ValidationError) as caught:
        await lines.__anext__()
    assert caught.value.code == "PLATFORM_NOT_SUPPORTED"
    assert (await async_run(["true"], startupinfo=None, creationflags=0)).returncode == 0
