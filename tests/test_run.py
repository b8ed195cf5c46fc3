"""The run family (`run`, `async_run`, `run_simple`), proven black-box against the SPEC.

Every async test runs under asyncio and trio (``anyio_backend``); every sync test runs from plain
code and from inside a running asyncio loop and trio loop (``sync_call``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shlex
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from conftest import CHILDREN_OF_ME, PY, SyncCall, children_of, pid_alive, python, wait_gone

import procfound
from procfound import (
    CompletedProcess,
    ProcessError,
    ProcessTimeoutError,
    ValidationError,
    async_run,
    run,
    run_simple,
)

# --------------------------------------------------------------------------------------------
# Shared probes and helpers
# --------------------------------------------------------------------------------------------

TRICKY_ARGS = [
    "",
    " ",
    "two words",
    "  leading and trailing  ",
    "'single quoted'",
    '"double quoted"',
    "it's",
    "$HOME",
    "${HOME}",
    "`id`",
    "$(id)",
    "ünïcødé ☃ 日本語 😀",
    "back\\slash",
    "trailing backslash\\",
    "\\\\double",
    "*",
    "?",
    "~",
    "a;b&&c||d|e>f<g",
    "tab\there",
    "new\nline",
    "--",
    "-c",
    "--flag=value",
    "",
]

ARGV_PROBE = python(
    """
    import json, os, sys
    print(json.dumps({"argv": sys.argv[1:], "hex": [os.fsencode(a).hex() for a in sys.argv[1:]]}))
    """
)

ENV_KEYS = ["PROCFOUND_T_INHERITED", "PROCFOUND_T_REPLACED", "PROCFOUND_T_ADDED", "PATH"]
ENV_PROBE = python(
    f"""
    import json, os
    print(json.dumps({{key: os.environ.get(key) for key in {ENV_KEYS!r}}}))
    """
)

INPUT_TEXT = "héllo\nwörld\n"
CWD_PROBE = python("import os; print(os.getcwd())")
STDIN_ECHO = python(
    """
    import shutil, sys
    shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer, 1 << 16)
    """
)
STDIN_PROBE = python(
    """
    import os, sys
    print(os.readlink("/proc/self/fd/0"))
    print(repr(sys.stdin.read()))
    """
)
INVALID_UTF8 = python(
    r"""
    import sys
    sys.stdout.buffer.write(b"ok \xff\xfe bad\n")
    sys.stderr.buffer.write(b"err \xc3\x28 bad\n")
    """
)
FAILS_WITH_OUTPUT = python(
    """
    import sys
    print("some out")
    print("some err", file=sys.stderr)
    sys.exit(3)
    """
)
KILLS_ITSELF = python("import os; os.kill(os.getpid(), 9)")

LINE_COUNT = 200_000
BOTH_STREAMS_AT_ONCE = python(
    f"""
    import os
    N, BATCH = {LINE_COUNT}, 1000

    def write_all(fd, data):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    for start in range(0, N, BATCH):
        write_all(1, "".join(f"out {{i}}\\n" for i in range(start, start + BATCH)).encode())
        write_all(2, "".join(f"err {{i}}\\n" for i in range(start, start + BATCH)).encode())
    """
)
EXPECTED_OUT = "".join(f"out {i}\n" for i in range(LINE_COUNT))
EXPECTED_ERR = "".join(f"err {i}\n" for i in range(LINE_COUNT))

# The child prints its output, then starts a grandchild that inherits (and so holds) both pipes,
# then blocks. Its own pid and the grandchild's pid are in the partial output.
TREE_HOLDING_PIPES = [
    "sh",
    "-c",
    'echo partial; echo perr >&2; sleep 30 & echo "grandchild=$!"; echo "child=$$"; sleep 30',
]
# Same tree, but every process in it ignores SIGTERM (ignored dispositions survive exec).
TREE_IGNORING_SIGTERM = [
    "sh",
    "-c",
    'trap "" TERM; sleep 30 & echo "grandchild=$!"; echo "child=$$"; sleep 30',
]

SYNC_CODES = {"failed": "PROCESS_COMMAND_FAILED", "timeout": "PROCESS_TIMEOUT"}
ASYNC_CODES = {"failed": "PROCESS_ASYNC_FAILED", "timeout": "PROCESS_ASYNC_TIMEOUT"}

PROCFOUND_ROOT = str(Path(procfound.__file__).resolve().parent.parent)


def subprocess_env() -> dict[str, str]:
    """Environment for a fresh interpreter that must import this procfound."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROCFOUND_ROOT, env.get("PYTHONPATH")]))
    return env


def pids_from(output: str) -> dict[str, int]:
    """Parse ``name=pid`` lines printed by a probe."""
    return {name: int(pid) for name, pid in re.findall(r"^(\w+)=(\d+)$", output, re.M)}


def tree_writing_pidfiles(directory: Path) -> list[str]:
    """A shell whose background grandchild and itself record their pids in ``directory``."""
    d = shlex.quote(str(directory))
    return [
        "sh",
        "-c",
        f"sleep 30 & echo $! > {d}/gc.tmp && mv {d}/gc.tmp {d}/gc; "
        f"echo $$ > {d}/pid.tmp && mv {d}/pid.tmp {d}/pid; sleep 30",
    ]


def read_pidfile(path: Path, timeout: float = 15.0) -> int:
    """Wait until ``path`` exists (it is written atomically) and return the pid in it."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {timeout}s")
        time.sleep(0.01)
    return int(path.read_text())


async def read_pidfile_async(path: Path, timeout: float = 15.0) -> int:
    with anyio.fail_after(timeout):
        while not path.exists():
            await anyio.sleep(0.01)
    return int(path.read_text())


def fd_kinds() -> Counter[str]:
    """Count this process's open fds by kind (pipe, socket, pidfd, file ...), ignoring inodes."""
    kinds: Counter[str] = Counter()
    for entry in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        kinds[re.sub(r"\[\d+\]$", "", target)] += 1
    return kinds


def child_states() -> dict[int, str]:
    """The direct children of this process (zombies included) and their states."""
    return children_of(os.getpid())


def assert_timeout_error(
    error: ProcessTimeoutError, elapsed: float, timeout: float, code: str
) -> None:
    assert isinstance(error, TimeoutError)
    assert isinstance(error, ProcessError)
    assert error.timeout is True
    assert error.timeout_seconds == timeout
    assert error.code == code
    assert elapsed < timeout + 2.5, f"took {elapsed:.2f}s for a {timeout}s timeout"


# --------------------------------------------------------------------------------------------
# Arguments and validation
# --------------------------------------------------------------------------------------------


def check_argv_result(result: CompletedProcess) -> None:
    seen = json.loads(result.stdout)
    assert seen["argv"] == TRICKY_ARGS
    assert seen["hex"] == [arg.encode("utf-8").hex() for arg in TRICKY_ARGS]
    assert result.args == [*ARGV_PROBE, *TRICKY_ARGS]
    assert result.returncode == 0


def test_argv_reaches_child_byte_exact(sync_call: SyncCall) -> None:
    check_argv_result(sync_call(run, [*ARGV_PROBE, *TRICKY_ARGS]))


@pytest.mark.anyio
async def test_async_argv_reaches_child_byte_exact() -> None:
    check_argv_result(await async_run([*ARGV_PROBE, *TRICKY_ARGS]))


def test_str_cmd_without_shell_raises_validation_error_mentioning_shell(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError, match="shell"):
        sync_call(run, f"touch {marker}")
    assert not marker.exists()


@pytest.mark.anyio
async def test_async_str_cmd_without_shell_raises_validation_error_mentioning_shell(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ValidationError, match="shell"):
        await async_run(f"touch {marker}")
    assert not marker.exists()


def test_str_cmd_with_shell_true_runs_through_the_shell(sync_call: SyncCall) -> None:
    result = sync_call(run, "echo hi | tr a-z A-Z", shell=True)
    assert result.stdout == "HI\n"
    assert result.args == ["echo hi | tr a-z A-Z"]


@pytest.mark.anyio
async def test_async_str_cmd_with_shell_true_runs_through_the_shell() -> None:
    result = await async_run("echo hi | tr a-z A-Z", shell=True)
    assert result.stdout == "HI\n"
    assert result.args == ["echo hi | tr a-z A-Z"]


def test_path_argument_runs_or_raises_validation_error_never_type_error(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    # subprocess.run accepts PathLike arguments; procfound may accept them or refuse them as a
    # bad argument, but an internal TypeError must not leak out.
    try:
        result = sync_call(run, [Path("/bin/echo"), tmp_path / "x"])
    except ValidationError:
        return
    assert result.stdout == f"{tmp_path / 'x'}\n"


@pytest.mark.anyio
async def test_async_path_argument_runs_or_raises_validation_error_never_type_error(
    tmp_path: Path,
) -> None:
    try:
        result = await async_run([Path("/bin/echo"), tmp_path / "x"])
    except ValidationError:
        return
    assert result.stdout == f"{tmp_path / 'x'}\n"


# --------------------------------------------------------------------------------------------
# Environment and working directory
# --------------------------------------------------------------------------------------------


def check_env_result(result: CompletedProcess, overrides: dict[str, str]) -> None:
    assert json.loads(result.stdout) == {
        "PROCFOUND_T_INHERITED": "from parent",
        "PROCFOUND_T_REPLACED": "replaced",
        "PROCFOUND_T_ADDED": "added value",
        "PATH": os.environ["PATH"],
    }
    # Only the caller's overrides, never the merged environment.
    assert result.env == overrides
    assert "PATH" not in (result.env or {})
    # Neither the caller's dict nor os.environ was changed.
    assert overrides == {"PROCFOUND_T_REPLACED": "replaced", "PROCFOUND_T_ADDED": "added value"}
    assert os.environ["PROCFOUND_T_REPLACED"] == "old"
    assert "PROCFOUND_T_ADDED" not in os.environ


def test_env_overrides_merge_onto_os_environ(
    sync_call: SyncCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_T_INHERITED", "from parent")
    monkeypatch.setenv("PROCFOUND_T_REPLACED", "old")
    overrides = {"PROCFOUND_T_REPLACED": "replaced", "PROCFOUND_T_ADDED": "added value"}
    check_env_result(sync_call(run, ENV_PROBE, env=overrides), overrides)


@pytest.mark.anyio
async def test_async_env_overrides_merge_onto_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCFOUND_T_INHERITED", "from parent")
    monkeypatch.setenv("PROCFOUND_T_REPLACED", "old")
    overrides = {"PROCFOUND_T_REPLACED": "replaced", "PROCFOUND_T_ADDED": "added value"}
    check_env_result(await async_run(ENV_PROBE, env=overrides), overrides)


def test_env_is_none_without_overrides_and_child_inherits_environ(
    sync_call: SyncCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_T_INHERITED", "from parent")
    result = sync_call(run, ENV_PROBE)
    assert result.env is None
    assert json.loads(result.stdout)["PROCFOUND_T_INHERITED"] == "from parent"


@pytest.mark.anyio
async def test_async_env_is_none_without_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCFOUND_T_INHERITED", "from parent")
    result = await async_run(ENV_PROBE)
    assert result.env is None
    assert json.loads(result.stdout)["PROCFOUND_T_INHERITED"] == "from parent"


@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "Path"])
def test_cwd_accepts_str_and_path(
    sync_call: SyncCall, tmp_path: Path, as_type: Callable[[Path], str | Path]
) -> None:
    result = sync_call(run, CWD_PROBE, cwd=as_type(tmp_path))
    assert result.stdout.strip() == str(tmp_path)
    assert result.cwd == str(tmp_path)


@pytest.mark.anyio
@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "Path"])
async def test_async_cwd_accepts_str_and_path(
    tmp_path: Path, as_type: Callable[[Path], str | Path]
) -> None:
    result = await async_run(CWD_PROBE, cwd=as_type(tmp_path))
    assert result.stdout.strip() == str(tmp_path)
    assert result.cwd == str(tmp_path)


def test_missing_cwd_raises_process_error_naming_the_path(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ProcessError) as info:
        sync_call(run, ["true"], cwd=missing)
    assert str(missing) in str(info.value)


@pytest.mark.anyio
async def test_async_missing_cwd_raises_process_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ProcessError) as info:
        await async_run(["true"], cwd=missing)
    assert str(missing) in str(info.value)


def missing_programs(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "no-such-program"), "procfound-no-such-program-on-path"]


def test_missing_executable_raises_process_error_naming_the_path(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    for program in missing_programs(tmp_path):
        with pytest.raises(ProcessError) as info:
            sync_call(run, [program, "arg"])
        assert program in str(info.value)


@pytest.mark.anyio
async def test_async_missing_executable_raises_process_error_naming_the_path(
    tmp_path: Path,
) -> None:
    for program in missing_programs(tmp_path):
        with pytest.raises(ProcessError) as info:
            await async_run([program, "arg"])
        assert program in str(info.value)


def test_non_executable_file_raises_process_error_naming_the_path(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    with pytest.raises(ProcessError) as info:
        sync_call(run, [str(script)])
    assert str(script) in str(info.value)


# --------------------------------------------------------------------------------------------
# Input and output
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [INPUT_TEXT, INPUT_TEXT.encode()], ids=["str", "bytes"])
def test_input_str_or_bytes_reaches_stdin(sync_call: SyncCall, data: str | bytes) -> None:
    assert sync_call(run, STDIN_ECHO, input=data).stdout == INPUT_TEXT


@pytest.mark.anyio
@pytest.mark.parametrize("data", [INPUT_TEXT, INPUT_TEXT.encode()], ids=["str", "bytes"])
async def test_async_input_str_or_bytes_reaches_stdin(data: str | bytes) -> None:
    assert (await async_run(STDIN_ECHO, input=data)).stdout == INPUT_TEXT


def test_stdin_is_dev_null_without_input(sync_call: SyncCall) -> None:
    result = sync_call(run, STDIN_PROBE, timeout=20)
    assert result.stdout.splitlines() == ["/dev/null", "''"]


@pytest.mark.anyio
async def test_async_stdin_is_dev_null_without_input() -> None:
    result = await async_run(STDIN_PROBE, timeout=20)
    assert result.stdout.splitlines() == ["/dev/null", "''"]


def test_text_false_returns_bytes(sync_call: SyncCall) -> None:
    result = sync_call(run, INVALID_UTF8, text=False)
    assert result.stdout == b"ok \xff\xfe bad\n"
    assert result.stderr == b"err \xc3\x28 bad\n"


@pytest.mark.anyio
async def test_async_text_false_returns_bytes() -> None:
    result = await async_run(INVALID_UTF8, text=False)
    assert result.stdout == b"ok \xff\xfe bad\n"
    assert result.stderr == b"err \xc3\x28 bad\n"


def test_invalid_utf8_becomes_replacement_characters(sync_call: SyncCall) -> None:
    result = sync_call(run, INVALID_UTF8)
    assert result.stdout == "ok \ufffd\ufffd bad\n"
    assert result.stderr == "err \ufffd( bad\n"


@pytest.mark.anyio
async def test_async_invalid_utf8_becomes_replacement_characters() -> None:
    result = await async_run(INVALID_UTF8)
    assert result.stdout == "ok \ufffd\ufffd bad\n"
    assert result.stderr == "err \ufffd( bad\n"


def test_capture_output_false_lets_output_through(
    sync_call: SyncCall, capfd: pytest.CaptureFixture[str]
) -> None:
    cmd = ["sh", "-c", "echo visible; echo visible-err >&2"]
    result = sync_call(run, cmd, capture_output=False)
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == ""
    captured = capfd.readouterr()
    assert "visible\n" in captured.out
    assert "visible-err\n" in captured.err


def test_input_the_child_never_reads_is_not_an_error(sync_call: SyncCall) -> None:
    result = sync_call(run, ["true"], input=b"x" * (4 << 20))
    assert result.returncode == 0


def test_timeout_fires_while_child_ignores_its_input(sync_call: SyncCall) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(run, ["sleep", "30"], input=b"x" * (4 << 20), timeout=1.0)
    assert time.monotonic() - started < 4.0


# --------------------------------------------------------------------------------------------
# Exit status
# --------------------------------------------------------------------------------------------


def check_failure(error: ProcessError, code: str) -> None:
    assert error.return_code == 3
    assert error.stdout == "some out"
    assert error.stderr == "some err"
    assert error.timeout is False
    assert error.code == code
    assert str(error).startswith("Command failed with exit code 3: ")


def test_check_true_raises_process_error_with_code_and_output(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError) as info:
        sync_call(run, FAILS_WITH_OUTPUT)
    assert not isinstance(info.value, ProcessTimeoutError)
    check_failure(info.value, SYNC_CODES["failed"])


@pytest.mark.anyio
async def test_async_check_true_raises_process_error_with_code_and_output() -> None:
    with pytest.raises(ProcessError) as info:
        await async_run(FAILS_WITH_OUTPUT)
    assert not isinstance(info.value, ProcessTimeoutError)
    check_failure(info.value, ASYNC_CODES["failed"])


def test_check_false_returns_nonzero_returncode(sync_call: SyncCall) -> None:
    result = sync_call(run, FAILS_WITH_OUTPUT, check=False)
    assert result.returncode == 3
    assert result.stdout == "some out\n"
    assert result.stderr == "some err\n"


@pytest.mark.anyio
async def test_async_check_false_returns_nonzero_returncode() -> None:
    result = await async_run(FAILS_WITH_OUTPUT, check=False)
    assert result.returncode == 3
    assert result.stdout == "some out\n"
    assert result.stderr == "some err\n"


def test_child_killed_by_signal_has_negative_returncode_and_error_names_signal(
    sync_call: SyncCall,
) -> None:
    assert sync_call(run, KILLS_ITSELF, check=False).returncode == -9
    with pytest.raises(ProcessError) as info:
        sync_call(run, KILLS_ITSELF)
    assert info.value.return_code == -9
    assert "SIGKILL" in str(info.value)


@pytest.mark.anyio
async def test_async_child_killed_by_signal_has_negative_returncode_and_error_names_signal() -> (
    None
):
    assert (await async_run(KILLS_ITSELF, check=False)).returncode == -9
    with pytest.raises(ProcessError) as info:
        await async_run(KILLS_ITSELF)
    assert info.value.return_code == -9
    assert "SIGKILL" in str(info.value)


# --------------------------------------------------------------------------------------------
# Timeouts and cancellation
# --------------------------------------------------------------------------------------------


def check_tree_timeout(error: ProcessTimeoutError, elapsed: float, code: str) -> None:
    assert_timeout_error(error, elapsed, 1.5, code)
    assert elapsed < 4.0
    assert error.stdout is not None
    assert "partial" in error.stdout
    assert error.stderr == "perr"
    pids = pids_from(error.stdout)
    assert set(pids) == {"child", "grandchild"}, error.stdout
    assert wait_gone(pids["child"], 1.0), "the direct child survived the timeout"
    assert wait_gone(pids["grandchild"], 1.0), "the grandchild survived the timeout"


def test_timeout_kills_grandchild_and_keeps_partial_output(sync_call: SyncCall) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        sync_call(run, TREE_HOLDING_PIPES, timeout=1.5)
    check_tree_timeout(info.value, time.monotonic() - started, SYNC_CODES["timeout"])


@pytest.mark.anyio
async def test_async_timeout_kills_grandchild_and_keeps_partial_output() -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        await async_run(TREE_HOLDING_PIPES, timeout=1.5)
    check_tree_timeout(info.value, time.monotonic() - started, ASYNC_CODES["timeout"])


def test_timeout_is_caught_by_except_timeout_error(sync_call: SyncCall) -> None:
    with pytest.raises(TimeoutError):
        sync_call(run, ["sleep", "30"], timeout=0.5)


def check_sigterm_ignored(error: ProcessTimeoutError, elapsed: float) -> None:
    assert elapsed < 5.0, f"took {elapsed:.2f}s: SIGKILL must follow a short grace"
    pids = pids_from(error.stdout or "")
    assert set(pids) == {"child", "grandchild"}, error.stdout
    assert wait_gone(pids["child"], 1.0)
    assert wait_gone(pids["grandchild"], 1.0)


def test_timeout_escalates_to_sigkill_when_tree_ignores_sigterm(sync_call: SyncCall) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        sync_call(run, TREE_IGNORING_SIGTERM, timeout=1.0)
    check_sigterm_ignored(info.value, time.monotonic() - started)


@pytest.mark.anyio
async def test_async_timeout_escalates_to_sigkill_when_tree_ignores_sigterm() -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        await async_run(TREE_IGNORING_SIGTERM, timeout=1.0)
    check_sigterm_ignored(info.value, time.monotonic() - started)


def test_timeout_kills_a_stopped_child(sync_call: SyncCall) -> None:
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError) as info:
        sync_call(run, ["sh", "-c", 'echo "child=$$"; kill -STOP $$'], timeout=0.5)
    assert time.monotonic() - started < 3.0
    assert wait_gone(pids_from(info.value.stdout or "")["child"], 1.0)


def test_timeout_not_reached_returns_normally(sync_call: SyncCall) -> None:
    result = sync_call(run, ["echo", "fast"], timeout=10)
    assert result.stdout == "fast\n"


@pytest.mark.anyio
async def test_cancelling_async_run_from_outer_scope_kills_tree_within_a_second(
    tmp_path: Path,
) -> None:
    scope = anyio.CancelScope()

    async def run_in_scope() -> None:
        with scope:
            await async_run(tree_writing_pidfiles(tmp_path))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_in_scope)
            pid = await read_pidfile_async(tmp_path / "pid")
            grandchild = int((tmp_path / "gc").read_text())
            assert pid_alive(pid)
            assert pid_alive(grandchild)
            cancelled_at = time.monotonic()
            scope.cancel()
        elapsed = time.monotonic() - cancelled_at
    assert scope.cancelled_caught, "the cancellation did not propagate as a cancellation"
    assert elapsed < 1.5, f"async_run took {elapsed:.2f}s to honour the cancellation"
    assert wait_gone(pid, 1.0), "the child survived the cancellation"
    assert wait_gone(grandchild, 1.0), "the grandchild survived the cancellation"


@pytest.mark.anyio
async def test_move_on_after_around_async_run_kills_tree(tmp_path: Path) -> None:
    started = time.monotonic()
    with anyio.move_on_after(1.0) as scope:
        await async_run(tree_writing_pidfiles(tmp_path))
    elapsed = time.monotonic() - started
    assert scope.cancelled_caught
    assert elapsed < 2.5
    assert wait_gone(int((tmp_path / "pid").read_text()), 1.0)
    assert wait_gone(int((tmp_path / "gc").read_text()), 1.0)


# --------------------------------------------------------------------------------------------
# Ctrl-C in the sync form (a fresh interpreter, so SIGINT hits only it)
# --------------------------------------------------------------------------------------------

CTRL_C_SCRIPT = (
    """
import asyncio, json, os, sys
import procfound

context, pidfile = sys.argv[1], sys.argv[2]
CHILD = [
    sys.executable, "-c",
    "import os, sys, time\\n"
    "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\\n"
    "time.sleep(30)\\n",
    pidfile,
]
"""
    + CHILDREN_OF_ME
    + """
def call():
    try:
        procfound.run(CHILD)
    except KeyboardInterrupt:
        print("CHILDREN", json.dumps(children()), flush=True)
        raise
    print("RETURNED", flush=True)

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
)


def wait_for_text(path: Path, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.01)
    return False


def ctrl_c_during_run(tmp_path: Path, context: str) -> tuple[int, str, str, float]:
    """Run CTRL_C_SCRIPT, Ctrl-C it once its child is up; return (child pid, out, err, secs)."""
    pidfile, out_path, err_path = tmp_path / "pid", tmp_path / "out", tmp_path / "err"
    with (
        out_path.open("w") as out,
        err_path.open("w") as err,
        subprocess.Popen(
            [PY, "-c", CTRL_C_SCRIPT, context, str(pidfile)],
            stdout=out,
            stderr=err,
            env=subprocess_env(),
        ) as script,
    ):
        try:
            child = read_pidfile(pidfile, timeout=20)
            interrupted_at = time.monotonic()
            script.send_signal(signal.SIGINT)
            # asyncio.Runner turns the first SIGINT into a cancellation of the main task, which a
            # blocking call cannot notice; its second SIGINT raises KeyboardInterrupt.
            if context == "in-asyncio-loop" and not wait_for_text(out_path, "CHILDREN", 1.0):
                script.send_signal(signal.SIGINT)
            script.wait(timeout=15)
            elapsed = time.monotonic() - interrupted_at
        finally:
            if script.poll() is None:
                script.kill()
                script.wait()
    return child, out_path.read_text(), err_path.read_text(), elapsed


@pytest.mark.parametrize("context", ["plain", "in-asyncio-loop", "in-trio-loop"])
def test_ctrl_c_during_sync_run_kills_child_before_keyboard_interrupt(
    tmp_path: Path, context: str
) -> None:
    child, out, err, elapsed = ctrl_c_during_run(tmp_path, context)
    assert "CHILDREN []" in out, f"children alive when KeyboardInterrupt arrived:\n{out}\n{err}"
    assert "KI" in out.splitlines(), f"no KeyboardInterrupt reached the caller:\n{out}\n{err}"
    assert elapsed < 5.0
    assert not pid_alive(child)


def test_run_works_again_after_ctrl_c(tmp_path: Path) -> None:
    _, out, err, _ = ctrl_c_during_run(tmp_path, "plain")
    assert "AFTER still works" in out, f"{out}\n{err}"


RACE_SCRIPT = (
    """
import faulthandler, json, os, signal, sys, traceback
import procfound
faulthandler.register(signal.SIGUSR1, all_threads=True)
"""
    + CHILDREN_OF_ME
    + """
try:
    procfound.run(["true"])
    print("ready", flush=True)
    while True:
        procfound.run(["true"])
except BaseException as exc:
    traceback.print_exc()
    print("RAISED", type(exc).__name__, flush=True)
    print("CHILDREN", json.dumps(children()), flush=True)
    sys.exit(0)
"""
)


def test_ctrl_c_while_spawning_leaves_no_child_under_cpu_load(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    problems: list[str] = []
    burners = [subprocess.Popen([PY, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for attempt in range(30):
            out_path, err_path = tmp_path / f"out{attempt}", tmp_path / f"err{attempt}"
            with (
                out_path.open("w") as out,
                err_path.open("w") as err,
                subprocess.Popen(
                    [PY, "-c", RACE_SCRIPT], stdout=out, stderr=err, env=subprocess_env()
                ) as script,
            ):
                hung: dict[int, str] | None = None
                try:
                    assert wait_for_text(out_path, "ready", 30), err_path.read_text()
                    time.sleep(rng.uniform(0.0, 0.05))
                    interrupted_at = time.monotonic()
                    script.send_signal(signal.SIGINT)
                    try:
                        script.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        script.send_signal(signal.SIGUSR1)  # faulthandler dumps every thread
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            script.wait(timeout=20)
                    delay = time.monotonic() - interrupted_at
                    if script.poll() is None:
                        hung = children_of(script.pid)
                finally:
                    if script.poll() is None:
                        script.kill()
                        script.wait()
                    for orphan in hung or {}:
                        with contextlib.suppress(OSError):
                            os.kill(orphan, signal.SIGKILL)
            out_text = out_path.read_text()
            report = f"attempt {attempt}:\n{out_text}\n{err_path.read_text()}"
            if hung is not None:
                problems.append(f"HUNG after SIGINT (its children: {hung}); {report}")
            elif delay > 5:
                problems.append(f"KeyboardInterrupt took {delay:.1f}s to arrive; {report}")
            elif "RAISED KeyboardInterrupt" not in out_text or "CHILDREN []" not in out_text:
                problems.append(report)
            if len(problems) >= 2 or delay > 5:
                break  # enough evidence; a hang costs seconds per attempt
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    summary = f"{len(problems)} of {attempt + 1} attempts went wrong:\n"
    assert not problems, summary + "\n".join(problems)


# --------------------------------------------------------------------------------------------
# No hang, no deadlock, nothing lost
# --------------------------------------------------------------------------------------------

BACKGROUND_GRANDCHILD = ["sh", "-c", "sleep 30 & echo hi; echo $! >&2"]


def check_background_grandchild(result: CompletedProcess, elapsed: float) -> None:
    try:
        assert result.stdout == "hi\n"
        assert elapsed < 2.0, f"took {elapsed:.2f}s: the background grandchild made it wait"
    finally:
        grandchild = int(result.stderr.strip())
        if pid_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_background_grandchild_holding_stdout_does_not_hang(sync_call: SyncCall) -> None:
    started = time.monotonic()
    result = sync_call(run, BACKGROUND_GRANDCHILD)
    check_background_grandchild(result, time.monotonic() - started)


@pytest.mark.anyio
async def test_async_background_grandchild_holding_stdout_does_not_hang() -> None:
    started = time.monotonic()
    result = await async_run(BACKGROUND_GRANDCHILD)
    check_background_grandchild(result, time.monotonic() - started)


def test_200k_lines_on_stdout_and_stderr_at_once_lose_nothing(sync_call: SyncCall) -> None:
    result = sync_call(run, BOTH_STREAMS_AT_ONCE, timeout=40)
    assert result.stdout == EXPECTED_OUT
    assert result.stderr == EXPECTED_ERR


@pytest.mark.anyio
async def test_async_200k_lines_on_stdout_and_stderr_at_once_lose_nothing() -> None:
    result = await async_run(BOTH_STREAMS_AT_ONCE, timeout=40)
    assert result.stdout == EXPECTED_OUT
    assert result.stderr == EXPECTED_ERR


@pytest.fixture(scope="module")
def payload_64mib() -> bytes:
    return os.urandom(64 << 20)


def check_echo(result: CompletedProcess, payload: bytes) -> None:
    assert isinstance(result.stdout, bytes)
    assert len(result.stdout) == len(payload)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()


def test_64mib_of_input_echoed_back_without_deadlock(
    sync_call: SyncCall, payload_64mib: bytes
) -> None:
    result = sync_call(run, STDIN_ECHO, input=payload_64mib, text=False, timeout=40)
    check_echo(result, payload_64mib)


@pytest.mark.anyio
async def test_async_64mib_of_input_echoed_back_without_deadlock(payload_64mib: bytes) -> None:
    result = await async_run(STDIN_ECHO, input=payload_64mib, text=False, timeout=40)
    check_echo(result, payload_64mib)


# --------------------------------------------------------------------------------------------
# Many runs: sequential, concurrent, threaded
# --------------------------------------------------------------------------------------------


def test_300_sequential_runs_leave_no_fd_and_no_zombie(sync_call: SyncCall) -> None:
    sync_call(run, ["true"])  # the first call may start shared machinery (the portal)
    fds_before = fd_kinds()

    def many() -> None:
        for _ in range(300):
            run(["true"])

    sync_call(many)
    assert fd_kinds() == fds_before
    assert child_states() == {}


@pytest.mark.anyio
async def test_300_sequential_async_runs_leave_no_fd_and_no_zombie() -> None:
    await async_run(["true"])
    fds_before = fd_kinds()
    for _ in range(300):
        await async_run(["true"])
    assert fd_kinds() == fds_before
    assert child_states() == {}


@pytest.mark.anyio
async def test_200_concurrent_async_runs_all_complete() -> None:
    results: dict[int, str] = {}

    async def one(i: int) -> None:
        results[i] = (await async_run(["sh", "-c", 'sleep 0.5; echo "$0"', str(i)])).stdout

    started = time.monotonic()
    with anyio.fail_after(40):
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    assert results == {i: f"{i}\n" for i in range(200)}
    assert time.monotonic() - started < 20.0
    assert child_states() == {}


def test_16_threads_calling_run_at_once_all_complete(sync_call: SyncCall) -> None:
    def burst() -> tuple[list[str], float]:
        barrier = threading.Barrier(16)

        def worker(i: int) -> str:
            barrier.wait(timeout=10)
            return str(run(["sh", "-c", 'sleep 0.3; echo "$0"', str(i)], timeout=30).stdout)

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            outputs = list(pool.map(worker, range(16)))
        return outputs, time.monotonic() - started

    outputs, elapsed = sync_call(burst)
    assert outputs == [f"{i}\n" for i in range(16)]
    # One after another would take 16 * 0.3 s: the calls must overlap.
    assert elapsed < 4.0


# --------------------------------------------------------------------------------------------
# run_simple
# --------------------------------------------------------------------------------------------


def test_run_simple_returns_stripped_stdout(sync_call: SyncCall, tmp_path: Path) -> None:
    assert sync_call(run_simple, ["printf", "  hello world \n\n"]) == "hello world"
    assert sync_call(run_simple, CWD_PROBE, cwd=tmp_path) == str(tmp_path)


def test_run_simple_raises_process_error_on_failure(sync_call: SyncCall) -> None:
    with pytest.raises(ProcessError) as info:
        sync_call(run_simple, ["sh", "-c", "exit 5"])
    assert info.value.return_code == 5
