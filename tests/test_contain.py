"""contain="tree"/"cgroup": descendants that left the process group never outlive their call;
stop_signal and kill_grace are the caller's.

Each escapee writes its own pid to a file once it has escaped (new session, new group, double
fork, job control). Every scenario runs with both tree mechanisms where the machine has them:
the cgroup (skipped, with the reason, where none is writable) and the environment marker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from conftest import PY, SyncCall, pid_alive, python, wait_gone

import procfound
import procfound.engine.contain as contain_module
from procfound import (
    ManagedProcess,
    PlatformError,
    ProcessTimeoutError,
    ValidationError,
    async_run,
    async_stream,
    run,
    stream,
)
from procfound.engine.contain import MARKER_NAME, signal_if_marked

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# Each escapee: a shell snippet that starts one and lets it write its pid to "$D/esc" once it
# has escaped, then (for a normal end) waits long enough for that to have happened.
ESCAPES: dict[str, str] = {
    "setsid-grandchild": 'setsid sh -c \'echo $$ > "$D/esc.tmp"; mv "$D/esc.tmp" "$D/esc"; '
    "exec sleep 300' &",
    "setsid-command": "",  # built by escapee_command
    "double-fork-daemon": (
        f'{PY} -c "import os, sys, time\n'
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): os._exit(0)\n"
        "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n"
        "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
        'time.sleep(300)" "$D/esc" &'
    ),
    "job-control": 'bash -c \'set -m; sleep 300 & echo $! > "$D/esc.tmp"; '
    'mv "$D/esc.tmp" "$D/esc"\' &',
}


NORMAL_END = "sleep 0.3"


def escapee_command(directory: Path, kind: str, then: str = NORMAL_END) -> list[str]:
    """A command that starts the escapee, then runs ``then`` (its own lifetime)."""
    if kind == "setsid-command":
        # setsid(1) as the command itself: it leads our new group, so it forks, and its child
        # starts a session and waits (-w) for it. For a normal end the session leaves a
        # "sleep 300" behind; otherwise the session leader itself is the escapee.
        if then == NORMAL_END:
            script = f'sleep 300 & echo $! > "$0/esc.tmp"; mv "$0/esc.tmp" "$0/esc"; {then}'
        else:
            script = f'echo $$ > "$0/esc.tmp"; mv "$0/esc.tmp" "$0/esc"; {then}'
        return ["setsid", "-w", "sh", "-c", script, str(directory)]
    return ["sh", "-c", f'export D="$0"; {ESCAPES[kind]} {then}', str(directory)]


def escapee_pid(directory: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    path = directory / "esc"
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError("the escapee never wrote its pid")
        time.sleep(0.01)
    return int(path.read_text())


def assert_stopped(pid: int) -> None:
    if not wait_gone(pid, 3.0):
        os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"the escapee {pid} outlived its call")


def assert_escaped_and_kill(pid: int) -> None:
    """contain="group": the escapee is out of reach (the documented limit); clean it up."""
    try:
        assert pid_alive(pid), "the group kill reached an escapee: update the docs"
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(params=["cgroup", "marker"])
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the cgroup (where writable) and with the environment marker."""
    if request.param == "cgroup":
        if contain_module.cgroup_root() is None:
            pytest.skip("no writable cgroup v2 with cgroup.kill on this machine")
    else:
        monkeypatch.setattr(contain_module, "_cgroup_root", None)
    return str(request.param)


KINDS = list(ESCAPES)


# --------------------------------------------------------------------------------------------
# Every escape, every way a call ends
# --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("mechanism")
@pytest.mark.parametrize("kind", KINDS)
def test_tree_run_leaves_no_escapee_at_its_normal_end(tmp_path: Path, kind: str) -> None:
    result = run(escapee_command(tmp_path, kind), contain="tree")
    assert result.returncode == 0
    assert_stopped(escapee_pid(tmp_path))


@pytest.mark.usefixtures("mechanism")
def test_tree_sync_calls_work_from_plain_code_and_inside_event_loops(
    sync_call: SyncCall, tmp_path: Path
) -> None:
    # The sync twins run the same engine through the portal whatever the caller's context.
    sync_call(run, escapee_command(tmp_path, "double-fork-daemon"), contain="tree")
    assert_stopped(escapee_pid(tmp_path))
    (tmp_path / "esc").unlink()
    cmd = escapee_command(tmp_path, "job-control", then="echo one; sleep 0.3; echo two")
    assert sync_call(lambda: list(stream(cmd, contain="tree"))) == ["one", "two"]
    assert_stopped(escapee_pid(tmp_path))


@pytest.mark.anyio
@pytest.mark.usefixtures("mechanism")
@pytest.mark.parametrize("kind", KINDS)
async def test_tree_async_run_leaves_no_escapee_after_a_timeout(tmp_path: Path, kind: str) -> None:
    started = anyio.current_time()
    with pytest.raises(ProcessTimeoutError):
        await async_run(escapee_command(tmp_path, kind, then="sleep 30"), contain="tree", timeout=1)
    assert anyio.current_time() - started < 6
    assert_stopped(escapee_pid(tmp_path))


@pytest.mark.anyio
@pytest.mark.usefixtures("mechanism")
@pytest.mark.parametrize("kind", KINDS)
async def test_tree_async_run_leaves_no_escapee_when_cancelled(tmp_path: Path, kind: str) -> None:
    with anyio.move_on_after(1):
        await async_run(escapee_command(tmp_path, kind, then="sleep 30"), contain="tree")
    assert_stopped(escapee_pid(tmp_path))


@pytest.mark.usefixtures("mechanism")
@pytest.mark.parametrize("kind", KINDS)
def test_tree_stream_left_early_leaves_no_escapee(tmp_path: Path, kind: str) -> None:
    cmd = escapee_command(tmp_path, kind, then="while :; do echo tick; sleep 0.05; done")

    def first_lines() -> list[str]:
        lines = []
        with stream(cmd, contain="tree") as ticks:
            for line in ticks:
                lines.append(line)
                if (tmp_path / "esc").exists():
                    break
        return lines

    assert first_lines()
    assert_stopped(escapee_pid(tmp_path))


@pytest.mark.anyio
@pytest.mark.usefixtures("mechanism")
@pytest.mark.parametrize("kind", KINDS)
async def test_tree_async_stream_left_early_leaves_no_escapee(tmp_path: Path, kind: str) -> None:
    cmd = escapee_command(tmp_path, kind, then="while :; do echo tick; sleep 0.05; done")
    lines = async_stream(cmd, contain="tree")
    try:
        async for _ in lines:
            if (tmp_path / "esc").exists():
                break
    finally:
        await lines.aclose()
    assert_stopped(escapee_pid(tmp_path))


@pytest.mark.usefixtures("mechanism")
@pytest.mark.parametrize("kind", KINDS)
def test_managed_process_termination_leaves_no_escapee(tmp_path: Path, kind: str) -> None:
    # "tree" is ManagedProcess's default: no option needed.
    with ManagedProcess(escapee_command(tmp_path, kind, then="exec sleep 60")) as proc:
        pid = escapee_pid(tmp_path)
        assert proc.is_running()
    assert_stopped(pid)


@pytest.mark.anyio
@pytest.mark.usefixtures("mechanism")
async def test_async_managed_process_termination_leaves_no_escapee(tmp_path: Path) -> None:
    async with ManagedProcess(escapee_command(tmp_path, "double-fork-daemon", "exec sleep 60")):
        pid = await anyio.to_thread.run_sync(escapee_pid, tmp_path)
    assert_stopped(pid)


@pytest.mark.usefixtures("mechanism")
def test_foreground_descendants_are_stopped_with_tree(sync_call: SyncCall, tmp_path: Path) -> None:
    cmd = ["sh", "-c", 'sleep 300 & echo $! > "$0/esc"; sleep 0.3', str(tmp_path)]
    sync_call(run, cmd, foreground=True, contain="tree")
    assert_stopped(escapee_pid(tmp_path))


# --------------------------------------------------------------------------------------------
# Defaults, the environment default, and what "group" does not catch
# --------------------------------------------------------------------------------------------


def test_run_defaults_to_the_group_which_an_escapee_leaves(tmp_path: Path) -> None:
    run(escapee_command(tmp_path, "setsid-grandchild"))
    assert_escaped_and_kill(escapee_pid(tmp_path))


@pytest.mark.usefixtures("mechanism")
def test_procfound_contain_sets_the_default_for_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_CONTAIN", "tree")
    run(escapee_command(tmp_path, "setsid-grandchild"))
    assert_stopped(escapee_pid(tmp_path))


def test_an_explicit_contain_beats_the_environment_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCFOUND_CONTAIN", "tree")
    run(escapee_command(tmp_path, "setsid-grandchild"), contain="group")
    assert_escaped_and_kill(escapee_pid(tmp_path))


def test_managed_process_with_contain_group_keeps_the_old_limit(tmp_path: Path) -> None:
    with ManagedProcess(
        escapee_command(tmp_path, "setsid-grandchild", "exec sleep 60"), contain="group"
    ):
        pid = escapee_pid(tmp_path)
    assert_escaped_and_kill(pid)


@pytest.mark.parametrize("value", ["forest", "", 3, "TREE "])
def test_unknown_contain_values_are_validation_errors(value: object) -> None:
    if value == "TREE ":  # case and spaces are forgiven
        assert run(["true"], contain=value).returncode == 0
        return
    with pytest.raises(ValidationError, match="contain"):
        run(["true"], contain=value)


def test_an_unknown_procfound_contain_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROCFOUND_CONTAIN", "forest")
    with pytest.raises(ValidationError, match="PROCFOUND_CONTAIN"):
        run(["true"])


def test_contain_cgroup_without_a_cgroup_is_a_platform_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(contain_module, "_cgroup_root", None)
    marker = tmp_path / "ran"
    with pytest.raises(PlatformError, match="cgroup v2"):
        run(["touch", str(marker)], contain="cgroup")
    assert not marker.exists()  # refused before anything ran


def test_contain_cgroup_catches_a_descendant_that_clears_its_environment(
    tmp_path: Path,
) -> None:
    if contain_module.cgroup_root() is None:
        pytest.skip("no writable cgroup v2 with cgroup.kill on this machine")
    cmd = [
        "sh",
        "-c",
        'env -i setsid sh -c \'echo $$ > "$0/esc"; exec sleep 300\' "$0" & sleep 0.5',
        str(tmp_path),
    ]
    run(cmd, contain="cgroup")
    assert_stopped(escapee_pid(tmp_path))


# --------------------------------------------------------------------------------------------
# The sweep's identity check
# --------------------------------------------------------------------------------------------


def test_the_sweep_never_signals_a_pid_whose_process_lacks_the_marker() -> None:
    # As if the scan had found this pid, and the marked process had died and the pid been reused
    # by an unrelated process: the pinned re-check must refuse it.
    unrelated = subprocess.Popen(["sleep", "30"])
    try:
        entry = f"{MARKER_NAME}=not-this-one".encode()
        assert signal_if_marked(unrelated.pid, entry, signal.SIGKILL) is False
        time.sleep(0.1)
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()


def test_the_sweep_signals_a_marked_process() -> None:
    entry_value = "a-unique-call"
    env = {**os.environ, MARKER_NAME: entry_value}
    marked = subprocess.Popen(["sleep", "30"], env=env)
    try:
        time.sleep(0.05)  # let exec finish, so /proc/<pid>/environ is the new image's
        entry = f"{MARKER_NAME}={entry_value}".encode()
        assert signal_if_marked(marked.pid, entry, signal.SIGKILL) is True
        assert marked.wait(5) == -signal.SIGKILL
    finally:
        if marked.poll() is None:
            marked.kill()
            marked.wait()


def test_the_sweep_of_a_gone_pid_does_nothing() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert signal_if_marked(gone.pid, f"{MARKER_NAME}=x".encode(), signal.SIGKILL) is False


# --------------------------------------------------------------------------------------------
# stop_signal and kill_grace
# --------------------------------------------------------------------------------------------

REPORTS_SIGNALS = """
import signal, sys, time
out = open(sys.argv[1], "a")
def report(sig, frame):
    out.write(signal.Signals(sig).name + "\\n"); out.flush()
    if sig != signal.SIGTERM or "--deaf" not in sys.argv:
        sys.exit(0)
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, report)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def reports(tmp_path: Path, *extra: str) -> tuple[list[str], Path]:
    log = tmp_path / "signals"
    return [*python(REPORTS_SIGNALS), str(log), *extra], log


@pytest.mark.parametrize("stop_signal", ["SIGINT", signal.SIGHUP, "INT", 15])
def test_stop_signal_is_delivered_first_on_timeout(
    sync_call: SyncCall, tmp_path: Path, stop_signal: object
) -> None:
    cmd, log = reports(tmp_path)
    with pytest.raises(ProcessTimeoutError):
        sync_call(run, cmd, timeout=1, stop_signal=stop_signal)
    expected = signal.Signals(
        stop_signal
        if isinstance(stop_signal, int)
        else getattr(signal, "SIG" + str(stop_signal).removeprefix("SIG"))
    ).name
    assert log.read_text().split() == [expected]


@pytest.mark.anyio
async def test_stop_signal_reaches_escapees_too(tmp_path: Path) -> None:
    log = tmp_path / "signals"
    code = REPORTS_SIGNALS.replace('print("ready", flush=True)', "os.setsid()").replace(
        "import signal", "import os, signal"
    )
    cmd = ["sh", "-c", '"$0" -c "$1" "$2" & sleep 30', PY, code, str(log)]
    with pytest.raises(ProcessTimeoutError):
        await async_run(cmd, timeout=1, contain="tree", stop_signal="SIGHUP")
    assert log.read_text().split() == ["SIGHUP"]


@pytest.mark.anyio
async def test_stop_signal_is_used_by_terminate_gracefully(tmp_path: Path) -> None:
    cmd, log = reports(tmp_path)
    async with ManagedProcess(cmd, stop_signal="SIGINT") as proc:
        assert await proc.read_line_async(10) == "ready"
        assert await proc.aterminate_gracefully(5) is True
    assert log.read_text().split() == ["SIGINT"]


@pytest.mark.parametrize("grace", [1.5, 0.0])
def test_kill_grace_is_honoured(sync_call: SyncCall, tmp_path: Path, grace: float) -> None:
    cmd, log = reports(tmp_path, "--deaf")  # reports SIGTERM, then goes on
    started = time.monotonic()
    with pytest.raises(ProcessTimeoutError):
        sync_call(run, cmd, timeout=1, kill_grace=grace)
    elapsed = time.monotonic() - started
    if grace:
        assert 1 + grace - 0.2 <= elapsed < 1 + grace + 3
        assert log.read_text().split() == ["SIGTERM"]
    else:  # SIGKILL at once: no SIGTERM at all
        assert elapsed < 3
        assert not log.exists() or log.read_text() == ""


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("stop_signal", "SIGNOPE"),
        ("stop_signal", 0),
        ("stop_signal", 99999),
        ("stop_signal", 1.5),
        ("stop_signal", True),
        ("kill_grace", -1),
        ("kill_grace", float("nan")),
        ("kill_grace", float("inf")),
        ("kill_grace", "1"),
    ],
)
def test_bad_stop_signal_and_kill_grace_are_validation_errors(option: str, value: object) -> None:
    with pytest.raises(ValidationError, match=option):
        run(["true"], **{option: value})
    with pytest.raises(ValidationError, match=option):
        ManagedProcess(["true"], **{option: value})


# --------------------------------------------------------------------------------------------
# Interpreter exit and garbage collection
# --------------------------------------------------------------------------------------------

ROOT = str(Path(procfound.__file__).resolve().parent.parent)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("held", ["stream", "managed"])
def test_tree_escapees_are_stopped_at_interpreter_exit(
    tmp_path: Path, backend: str, held: str
) -> None:
    cmd = escapee_command(tmp_path, "setsid-grandchild", then="echo started; exec sleep 60")
    opener = {
        "stream": f"kept = procfound.stream({cmd!r}, contain='tree'); next(kept)",
        "managed": f"kept = procfound.ManagedProcess({cmd!r}); kept.launch()",
    }[held]
    code = (
        f"import pathlib, time, procfound\n{opener}\n"
        f"while not pathlib.Path({str(tmp_path / 'esc')!r}).exists():\n    time.sleep(0.01)\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT, "PROCFOUND_BACKEND": backend}
    done = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_stopped(escapee_pid(tmp_path))


def test_empty_cgroups_left_by_a_killed_procfound_are_removed_on_the_next_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = contain_module.cgroup_root()
    if root is None:
        pytest.skip("no writable cgroup v2 with cgroup.kill on this machine")
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = Path(root) / f"procfound-{gone.pid}-0"
    live = Path(root) / f"procfound-{os.getpid()}-999999"
    stale.mkdir()
    live.mkdir()
    try:
        monkeypatch.setattr(contain_module, "_cgroup_root", False)  # look it up again
        assert contain_module.cgroup_root() == root
        assert not stale.exists()
        assert live.exists()  # its process is alive: not ours to remove
    finally:
        for path in (stale, live):
            if path.exists():
                path.rmdir()
